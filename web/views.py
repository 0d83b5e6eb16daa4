"""The pages of no app: the health check, and the JSON answer to a refused CSRF check."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from web.errors import AppError, error_response


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF refusals answer in the API's JSON error shape, like every other 4xx."""
    return error_response(
        AppError(
            "Missing or wrong CSRF token; reload the page and try again.",
            code="csrf_failed",
            status=403,
        )
    )
