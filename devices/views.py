"""Devices, key directory and linking: pages and JSON API. Thin: parse, call a service, answer."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.passkeys import authentication_options
from accounts.selectors import user_get_active
from devices import devicelists, linking, prekeys, schemas, selectors, services
from devices.auth import primary, request_device, sign_in_device, sign_out, signed_in
from flows import removal
from web import ratelimit
from web import validation as v
from web.api import api, public
from web.errors import NotFound

LINK_COOKIE = "parley_link"


@ensure_csrf_cookie
def devices_page(request: HttpRequest) -> HttpResponse:
    return render(request, "devices/devices.html")


@ensure_csrf_cookie
def link_page(request: HttpRequest) -> HttpResponse:
    return render(request, "devices/link.html")


@ensure_csrf_cookie
def approve_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "devices/approve.html",
        {"deployment_origins": " ".join(settings.PARLEY_DEPLOYMENT_ORIGINS)},
    )


# ---------------------------------------------------------------- devices


@api(methods=("GET",), access=signed_in)
def device_index(request: HttpRequest) -> dict:
    device = request_device(request)
    return {
        "devices": selectors.device_summaries(user=device.user, current=device),
        "max_companions": settings.PARLEY_MAX_COMPANIONS,
        **(selectors.device_list_document(device.user) or {}),
    }


@api(methods=("POST",), access=signed_in)
def device_revoke(request: HttpRequest, device_id: str) -> dict:
    actor = request_device(request)
    data = v.json_body(request)
    target = selectors.device_get_for_user(user=actor.user, device_id=device_id)
    if target is None:
        raise NotFound("No such device.", code="device_not_found")
    device_list = schemas.device_list(data) if data.get("device_list") is not None else None
    removal.device_revoke(actor=actor, target=target, device_list=device_list)
    if target.pk == actor.pk or target.is_primary:
        sign_out(request)
    return {"revoked": target.pk}


@api(methods=("POST",), access=signed_in)
def device_rename(request: HttpRequest, device_id: str) -> dict:
    data = v.json_body(request)
    device = services.device_rename(
        actor=request_device(request), device_id=device_id, name=schemas.device_name(data)
    )
    return {"device_id": device.id, "name": device.name}


@api(methods=("POST",), access=primary)
def device_list_publish(request: HttpRequest) -> dict:
    data = v.json_body(request)
    stored = devicelists.device_list_publish(
        device=request_device(request), device_list=schemas.device_list(data)
    )
    return {"version": stored.version}


# ---------------------------------------------------------------- key directory


@api(methods=("GET",), access=signed_in)
def account_device_list(request: HttpRequest, username: str) -> dict:
    user = user_get_active(username=username)
    document = selectors.device_list_document(user) if user else None
    if document is None:
        raise NotFound(f"No account named {username!r}.", code="account_not_found")
    return document


@api(methods=("POST",), access=signed_in)
def account_prekey_bundles(request: HttpRequest, username: str) -> dict:
    # Per requester and account, so nobody drains a device's one-time prekeys.
    ratelimit.check("bundles", f"{request_device(request).id}:{username[:32]}")
    user = user_get_active(username=username)
    if user is None:
        raise NotFound(f"No account named {username!r}.", code="account_not_found")
    data = v.json_body(request) if request.body else {}
    device_ids = None
    if data.get("device_ids") is not None:
        device_ids = [
            str(d)[:32]
            for d in v.array(data, "device_ids", max_items=settings.PARLEY_MAX_COMPANIONS + 1)
        ]
    bundles = prekeys.prekey_bundles_take(
        user=user, requester=request_device(request), device_ids=device_ids
    )
    return {"bundles": [b.to_dict() for b in bundles]}


@api(methods=("GET", "POST"), access=signed_in)
def own_prekeys(request: HttpRequest) -> dict:
    device = request_device(request)
    if request.method == "POST":
        data = v.json_body(request)
        prekeys.prekeys_store(
            device=device,
            signed_prekey=schemas.signed_prekey(data)
            if data.get("signed_prekey") is not None
            else None,
            one_time_prekeys=schemas.one_time_prekeys(data)
            if data.get("one_time_prekeys") is not None
            else [],  # an upload of KEM prekeys alone (docs/protocol.md 27.6)
            kem_prekeys=schemas.kem_prekeys(data),
            last_resort_kem_prekey=schemas.last_resort_kem_prekey(data),
        )
    return selectors.prekey_counts(device.id)


# ---------------------------------------------------------------- linking: the new browser


@api(methods=("POST",), access=public)
def link_open(request: HttpRequest) -> HttpResponse:
    ratelimit.check("link", ratelimit.client_address(request))
    data = v.json_body(request)
    link, secret = linking.link_session_open(
        new=schemas.new_device(data), ephemeral_key=v.binary(data, "ephemeral_key", length=32)
    )
    response = JsonResponse(
        {
            "link_id": link.id,
            "expires_at": link.expires_at.isoformat(),
            "ttl_seconds": settings.PARLEY_LINK_TTL_SECONDS,
            "max_companions": settings.PARLEY_MAX_COMPANIONS,
        }
    )
    response.set_cookie(
        LINK_COOKIE,
        secret,
        max_age=3600,
        httponly=True,
        samesite="Strict",
        secure=settings.SESSION_COOKIE_SECURE,
        path="/",
    )
    return response


def _browser_link(request: HttpRequest, link_id: str):
    return selectors.link_session_for_browser(
        link_id=link_id, browser_secret=request.COOKIES.get(LINK_COOKIE)
    )


@api(methods=("GET",), access=public)
def link_status(request: HttpRequest, link_id: str) -> dict:
    return selectors.link_summary_for_browser(_browser_link(request, link_id))


@api(methods=("POST",), access=public)
def link_device_signature(request: HttpRequest, link_id: str) -> dict:
    data = v.json_body(request)
    link = linking.link_device_sign(
        link=_browser_link(request, link_id),
        device_signature=v.binary(data, "device_signature", length=64),
        signed_prekey=schemas.signed_prekey(data),
        one_time_prekeys=schemas.one_time_prekeys(data),
        last_resort_kem_prekey=schemas.last_resort_kem_prekey(data),
        kem_prekeys=schemas.kem_prekeys(data),
    )
    return selectors.link_summary_for_browser(link)


@api(methods=("POST",), access=public)
def link_redeem(request: HttpRequest, link_id: str) -> dict:
    data = v.json_body(request)
    device = linking.link_redeem(
        link=_browser_link(request, link_id), signature=v.binary(data, "signature", length=64)
    )
    sign_in_device(request, device)
    return {
        "device_id": device.id,
        "name": device.name,
        "account": {"username": device.user.username, "display_name": device.user.display_name},
    }


@api(methods=("POST",), access=public)
def link_cancel(request: HttpRequest, link_id: str) -> dict:
    linking.link_cancel(link=_browser_link(request, link_id))
    return {"cancelled": True}


# ---------------------------------------------------------------- linking: the primary


@api(methods=("GET",), access=primary)
def link_detail(request: HttpRequest, link_id: str) -> dict:
    device = request_device(request)
    link = linking.link_session_for_primary(link_id=link_id, device=device)
    return {
        **selectors.link_summary_for_primary(link),
        # Said before the primary names the device and approves (the cap is checked again).
        "account_full": selectors.account_full(device.user),
        "max_companions": settings.PARLEY_MAX_COMPANIONS,
    }


@api(methods=("POST",), access=primary)
def link_approve_options(request: HttpRequest, link_id: str) -> dict:
    challenge, nonce, credential_ids = linking.link_approve_begin(
        link_id=link_id, device=request_device(request)
    )
    return {
        "challenge_id": challenge.token,
        "server_nonce": v.b64u(nonce),
        "options": authentication_options(
            challenge=bytes(challenge.challenge), credential_ids=credential_ids
        ),
    }


@api(methods=("POST",), access=primary)
def link_approve(request: HttpRequest, link_id: str) -> dict:
    data = v.json_body(request)
    link = linking.link_approve(
        link_id=link_id,
        device=request_device(request),
        challenge_token=v.string(data, "challenge_id", max_length=64),
        credential=v.obj(data, "credential"),
        provisioning=v.binary(data, "provisioning", max_length=1024),
        name=schemas.device_name(data),
        send_history=v.boolean(data, "send_history"),
    )
    return selectors.link_summary_for_primary(link)


@api(methods=("POST",), access=primary)
def link_decline(request: HttpRequest, link_id: str) -> dict:
    data = v.json_body(request) if request.body else {}
    linking.link_decline(
        link_id=link_id,
        device=request_device(request),
        account_is_full=v.boolean(data, "account_full"),
    )
    return {"declined": True}


@api(methods=("POST",), access=primary)
def link_complete(request: HttpRequest, link_id: str) -> dict:
    data = v.json_body(request)
    device = linking.link_complete(
        link_id=link_id, device=request_device(request), device_list=schemas.device_list(data)
    )
    return {"device_id": device.id, "name": device.name}
