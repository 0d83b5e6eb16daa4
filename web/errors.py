"""App errors with a stable code, and the one mapping of them to HTTP JSON and WebSocket frames.

Every code is listed in docs/protocol.md.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class AppError(Exception):
    """An error a client can act on: a stable `code`, a human `message`, optional `data`."""

    code = "bad_request"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        data: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.data = data or {}


class BadFrame(AppError):
    code = "bad_frame"


class NotFound(AppError):
    code = "not_found"
    status = 404


class Forbidden(AppError):
    code = "forbidden"
    status = 403


class NotSignedIn(AppError):
    code = "not_signed_in"
    status = 401


class Conflict(AppError):
    code = "conflict"
    status = 409


class RateLimited(AppError):
    code = "rate_limited"
    status = 429


def error_body(error: AppError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "data": error.data}


def error_response(error: AppError) -> JsonResponse:
    return JsonResponse({"error": error_body(error)}, status=error.status)


def error_frame(error: AppError, *, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "v": 1, **error_body(error)}
    if ref is not None:
        frame["ref"] = ref
    return frame
