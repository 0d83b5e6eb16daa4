"""The JSON API's one decorator (method check, the endpoint's access check, the mapping of
every AppError to a 4xx JSON body) and its middleware: every answer under /api/ is JSON and
never cached, a body is refused by its Content-Length before anything reads it, and a crash
is a JSON 500. Views stay thin: parse, call a service, answer.

Who may call an endpoint is a function named at the endpoint (`public` here; `signed_in` and
`primary` in devices.auth, which knows devices): this module imports no app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from web.errors import AppError, error_response
from web.validation import MAX_BODY_BYTES, declared_length, too_large

View = Callable[..., Any]
# Checks who sends the request; refuses with an AppError (e.g. NotSignedIn) or returns.
Access = Callable[[HttpRequest], None]
logger = logging.getLogger("django.request")

# The code of an answer under /api/ that Django (not a view) made: no such path, a refusal
# by a middleware, a crash. docs/protocol.md section 21.
STATUS_CODES = {
    400: ("bad_request", "The request is not valid."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "No such API path."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("too_large", "The body is too large."),
    500: ("server_error", "The server failed; this was logged. Try again later."),
}


def public(request: HttpRequest) -> None:
    """Anyone may call the endpoint, signed in or not."""


def api(
    *, methods: tuple[str, ...], access: Access, max_body: int = MAX_BODY_BYTES
) -> Callable[[View], View]:
    """`access`: who may call (`public`, `devices.auth.signed_in`, `devices.auth.primary`),
    named at every endpoint, never defaulted. `max_body`: the largest body this endpoint
    takes, checked by ApiAnswerMiddleware before reading."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise AppError(
                        f"Use {' or '.join(methods)}.", code="method_not_allowed", status=405
                    )
                access(request)
                result = view(request, *args, **kwargs)
            except AppError as error:
                return error_response(error)
            except RequestDataTooBig:  # a body without Content-Length, over Django's buffer
                return error_response(too_large(f"more than {max_body}", max_body))
            if isinstance(result, HttpResponseBase):  # a streamed answer too
                return result
            return JsonResponse(result, status=200)

        wrapper.max_body = max_body  # type: ignore[attr-defined]
        return wrapper

    return decorate


def is_api(request: HttpRequest) -> bool:
    return request.path_info == "/api" or request.path_info.startswith("/api/")


class ApiAnswerMiddleware:
    """First in MIDDLEWARE after the health checks, so it sees every other answer, Django's own
    pages included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api(request):
            return response
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            # Django's 404 (in DEBUG the list of every URL), a middleware's 400, a 500 page.
            code, message = STATUS_CODES.get(
                response.status_code, (f"http_{response.status_code}", "The request failed.")
            )
            response = error_response(AppError(message, code=code, status=response.status_code))
        response["Cache-Control"] = "no-store"
        return response

    def process_view(
        self, request: HttpRequest, view: View, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if not is_api(request):
            return None
        limit = getattr(view, "max_body", MAX_BODY_BYTES)
        try:
            length = declared_length(request)
        except AppError as error:
            return error_response(error)
        if length > limit:
            return error_response(too_large(length, limit))
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        logger.error("Internal Server Error: %s", request.path, exc_info=exception)
        code, message = STATUS_CODES[500]
        return error_response(AppError(message, code=code, status=500))
