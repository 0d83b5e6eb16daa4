"""The pages of no app: the health and readiness checks, and the JSON answer to a refused CSRF check."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from web.errors import AppError, error_response


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness, for the proxy's health checks: this node can take devices now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ready"})


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF refusals answer in the API's JSON error shape, like every other 4xx."""
    return error_response(
        AppError(
            "Missing or wrong CSRF token; reload the page and try again.",
            code="csrf_failed",
            status=403,
        )
    )
