"""The front page, sign-up and sign-in: pages, and the JSON API behind them. Thin: parse,
call a service, answer."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts import services
from accounts.models import MAX_DISPLAY_NAME, USERNAME_PATTERN
from accounts.selectors import user_get_active
from devices import schemas
from devices import services as device_services
from devices.auth import request_device, sign_in_device, sign_out, signed_in
from flows import registration
from web import ratelimit
from web import validation as v
from web.api import api, public
from web.errors import NotFound


def home_page(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"device": request_device(request)})


@ensure_csrf_cookie
def signup_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup.html")


@ensure_csrf_cookie
def signin_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signin.html")


def _account(device) -> dict:
    return {
        "account": {"username": device.user.username, "display_name": device.user.display_name},
        "device": {"device_id": device.id, "name": device.name, "is_primary": device.is_primary},
    }


@api(methods=("POST",), access=public)
def register_options(request: HttpRequest) -> dict:
    # Every attempt counts, taken or free: "username taken" must stay too slow to enumerate.
    ratelimit.check("signup", ratelimit.client_address(request))
    data = v.json_body(request)
    username = v.string(
        data, "username", max_length=32, min_length=3, pattern=USERNAME_PATTERN[1:-1]
    )
    display_name = v.string(data, "display_name", max_length=MAX_DISPLAY_NAME)
    challenge, options = services.account_register_begin(
        username=username, display_name=display_name
    )
    return {"challenge_id": challenge.token, "options": options}


@api(methods=("POST",), access=public)
def register(request: HttpRequest) -> dict:
    data = v.json_body(request)
    device = registration.account_register(
        challenge_token=v.string(data, "challenge_id", max_length=64),
        credential=v.obj(data, "credential"),
        new=schemas.new_primary(data),
    )
    sign_in_device(request, device)
    return _account(device)


@api(methods=("POST",), access=public)
def signin_options(request: HttpRequest) -> dict:
    ratelimit.check("sign_in", ratelimit.client_address(request))
    challenge, options = services.primary_sign_in_begin()
    return {"challenge_id": challenge.token, "options": options}


@api(methods=("POST",), access=public)
def signin(request: HttpRequest) -> dict:
    data = v.json_body(request)
    device = device_services.primary_sign_in(
        challenge_token=v.string(data, "challenge_id", max_length=64),
        credential=v.obj(data, "credential"),
        device_id=v.string(data, "device_id", max_length=32, pattern=schemas.DEVICE_ID_PATTERN),
        device_signature=v.binary(data, "device_signature", length=64),
    )
    sign_in_device(request, device)
    return _account(device)


@api(methods=("POST",), access=public)
def device_signin_options(request: HttpRequest) -> dict:
    ratelimit.check("sign_in", ratelimit.client_address(request))
    data = v.json_body(request)
    challenge = device_services.device_sign_in_begin(
        device_id=v.string(data, "device_id", max_length=32, pattern=schemas.DEVICE_ID_PATTERN)
    )
    return {"challenge_id": challenge.token, "nonce": v.b64u(bytes(challenge.challenge))}


@api(methods=("POST",), access=public)
def device_signin(request: HttpRequest) -> dict:
    data = v.json_body(request)
    device = device_services.device_sign_in(
        challenge_token=v.string(data, "challenge_id", max_length=64),
        device_id=v.string(data, "device_id", max_length=32, pattern=schemas.DEVICE_ID_PATTERN),
        signature=v.binary(data, "signature", length=64),
    )
    sign_in_device(request, device)
    return _account(device)


@api(methods=("GET",), access=signed_in)
def me(request: HttpRequest) -> dict:
    return _account(request_device(request))


@api(methods=("POST",), access=signed_in)
def me_display_name(request: HttpRequest) -> dict:
    """The account's display name, set from any of its devices (public: section 19)."""
    data = v.json_body(request)
    user = device_services.account_rename(
        actor=request_device(request),
        display_name=v.string(data, "display_name", max_length=MAX_DISPLAY_NAME),
    )
    return {"username": user.username, "display_name": user.display_name}


@api(methods=("POST",), access=public)
def reregister_options(request: HttpRequest) -> dict:
    """The same anonymous challenge as signin/options: any body (a username too) is ignored."""
    ratelimit.check("sign_in", ratelimit.client_address(request))
    challenge, options = services.primary_sign_in_begin()
    return {"challenge_id": challenge.token, "options": options}


@api(methods=("POST",), access=public)
def reregister_verify(request: HttpRequest) -> dict:
    ratelimit.check("sign_in", ratelimit.client_address(request))
    data = v.json_body(request)
    grant, user, version = registration.account_reregister_verify(
        challenge_token=v.string(data, "challenge_id", max_length=64),
        credential=v.obj(data, "credential"),
    )
    return {
        "reregister_id": grant.token,
        "account": {"username": user.username, "display_name": user.display_name},
        "device_list_version": version,
    }


@api(methods=("POST",), access=public)
def reregister(request: HttpRequest) -> dict:
    data = v.json_body(request)
    device = registration.account_reregister(
        reregister_token=v.string(data, "reregister_id", max_length=64),
        new=schemas.new_primary(data),
    )
    sign_in_device(request, device)
    return _account(device)


@api(methods=("POST",), access=signed_in)
def signout(request: HttpRequest) -> dict:
    """End this browser's session but keep the device: it signs back in with its keys."""
    device_services.device_sign_out(
        device=request_device(request), session_key=request.session.session_key
    )
    sign_out(request)
    return {"signed_out": True}


@api(methods=("GET",), access=signed_in)
def account_profile(request: HttpRequest, username: str) -> dict:
    """What anyone who knows the username may read: the display name the account chose at
    sign-up (not end-to-end encrypted; docs/protocol.md section 19)."""
    user = user_get_active(username=username)
    if user is None:
        raise NotFound(f"No account named {username!r}.", code="account_not_found")
    return {"username": user.username, "display_name": user.display_name}
