"""Which device a request comes from (a Django session bound to one device), and the access
checks of the JSON API built on it (`@api(access=signed_in)`, `@api(access=primary)`)."""

from __future__ import annotations

from django.contrib.auth import login, logout
from django.http import HttpRequest

from devices import services
from devices.models import Device
from devices.selectors import device_for_session
from web.errors import AppError, NotSignedIn

SESSION_DEVICE_KEY = "parley_device_id"


def request_device(request: HttpRequest) -> Device | None:
    """The signed-in, not revoked device of this request, or None."""
    cached = getattr(request, "_parley_device", False)
    if cached is not False:
        return cached
    device = None
    device_id = request.session.get(SESSION_DEVICE_KEY) if hasattr(request, "session") else None
    if device_id and request.user.is_authenticated:
        device = device_for_session(
            user=request.user, device_id=device_id, session_key=request.session.session_key
        )
    request._parley_device = device
    return device


def signed_in(request: HttpRequest) -> None:
    """Access for any signed-in device of the account; records the device's use."""
    device = request_device(request)
    if device is None:
        raise NotSignedIn("Sign in on this device first.")
    services.device_touch(device)


def primary(request: HttpRequest) -> None:
    """Access for the account's primary device only."""
    device = request_device(request)
    if device is None:
        raise NotSignedIn("Sign in on this device first.")
    if not device.is_primary:
        raise AppError("Only the primary device can do this.", code="not_primary", status=403)
    services.device_touch(device)


def sign_in_device(request: HttpRequest, device: Device) -> None:
    login(request, device.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_DEVICE_KEY] = device.id
    request.session.save()
    services.device_bind_session(device=device, session_key=request.session.session_key)
    request._parley_device = device


def sign_out(request: HttpRequest) -> None:
    logout(request)
    request._parley_device = None
