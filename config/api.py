"""The JSON API's one decorator: method check, device authentication, and the mapping of
every AppError to a 4xx JSON body. Views stay thin: parse, call a service, answer."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from config.errors import AppError, NotSignedIn, error_response
from devices.auth import request_device
from devices.services import device_touch

View = Callable[..., Any]


def api(*, methods: tuple[str, ...], device: str | None = "any") -> Callable[[View], View]:
    """`device`: None (public), "any" (a signed-in device) or "primary"."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise AppError(
                        f"Use {' or '.join(methods)}.", code="method_not_allowed", status=405
                    )
                if device is not None:
                    current = request_device(request)
                    if current is None:
                        raise NotSignedIn("Sign in on this device first.")
                    if device == "primary" and not current.is_primary:
                        raise AppError(
                            "Only the primary device can do this.", code="not_primary", status=403
                        )
                    device_touch(current)
                result = view(request, *args, **kwargs)
            except AppError as error:
                return error_response(error)
            if isinstance(result, HttpResponse):
                return result
            return JsonResponse(result, status=200)

        return wrapper

    return decorate
