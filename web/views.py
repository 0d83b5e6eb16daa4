"""The pages of no app: the health and readiness checks (answered by web.probes, before any
other middleware), and the JSON answer to a refused CSRF check."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from web.errors import AppError, error_response
from web.readiness import node_readiness


async def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness, for the proxy's health checks: 200 when this node can take devices now,
    else 503 with the reason (docs/operations.md)."""
    status = await node_readiness()
    response = JsonResponse({"status": status}, status=200 if status == "ready" else 503)
    # A 503 here is the answer asked for, every few seconds while it holds: not an error
    # for django.request to log each time (Django skips a response marked so).
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF refusals answer in the API's JSON error shape, like every other 4xx."""
    return error_response(
        AppError(
            "Missing or wrong CSRF token; reload the page and try again.",
            code="csrf_failed",
            status=403,
        )
    )
