"""The messenger's page, history bundles (opaque encrypted blobs, uploaded once, fetched
once), attachments (encrypted blobs uploaded in pieces), the account's state log and group
membership logs over HTTP."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from devices.auth import request_device, signed_in
from devices.schemas import DEVICE_ID_PATTERN
from messaging import attachments, group_log, schemas, selectors, services
from web import ratelimit
from web import validation as v
from web.api import api
from web.validation import InvalidInput


@ensure_csrf_cookie
def chats_page(request: HttpRequest, username: str | None = None) -> HttpResponse:
    """The messenger: the conversation list, one conversation, or a contact's safety number.
    Everything in it is decrypted and rendered in the browser (static/js/app/chats.js)."""
    return render(request, "messaging/chats.html", _file_limit())


def _file_limit() -> dict[str, Any]:
    """The largest file, for the composers' attach button and their check before upload."""
    limit = settings.PARLEY_ATTACHMENT_MAX_BYTES
    return {"max_file_bytes": limit, "max_file_mb": f"{limit / 1e6:g} MB"}


@ensure_csrf_cookie
def groups_page(request: HttpRequest, group_id: str | None = None) -> HttpResponse:
    """The groups: their list, one group's conversation and its members, decrypted and
    rendered in the browser (static/js/app/groupspage.js)."""
    return render(request, "messaging/groups.html", _file_limit())


@api(methods=("POST",), access=signed_in, max_body=settings.PARLEY_HISTORY_MAX_BYTES)
def history_upload(request: HttpRequest) -> dict:
    if request.content_type != "application/octet-stream":
        raise InvalidInput("Send the encrypted bundle as application/octet-stream.")
    data = v.raw_body(request, max_bytes=settings.PARLEY_HISTORY_MAX_BYTES)
    if not data:
        raise InvalidInput("A history bundle must not be empty.")
    to_device = v.string(request.GET, "to", max_length=32, min_length=16, pattern=DEVICE_ID_PATTERN)
    blob = services.history_store(
        from_device=request_device(request), to_device_id=to_device, data=data
    )
    return {"blob_id": blob.id, "length": len(data)}


@api(methods=("GET",), access=signed_in)
def history_download(request: HttpRequest, blob_id: str) -> HttpResponse:
    data = services.history_take(device=request_device(request), blob_id=blob_id)
    return HttpResponse(data, content_type="application/octet-stream")


@api(methods=("POST",), access=signed_in)
def attachment_open(request: HttpRequest) -> HttpResponse:
    device = request_device(request)
    ratelimit.check("attachments", device.id)
    size = schemas.parse_attachment_open(v.json_body(request))
    upload = attachments.attachment_open(device=device, size=size)
    return JsonResponse(upload.to_json("blob_id", "piece_bytes", "pieces", "stored"), status=201)


@api(methods=("POST",), access=signed_in)
def attachment_grants(request: HttpRequest) -> dict:
    device_id, blob_ids = schemas.parse_attachment_grants(v.json_body(request))
    shared = attachments.grants_share(
        device=request_device(request), to_device_id=device_id, blob_ids=blob_ids
    )
    return {"granted": shared}


@api(methods=("POST",), access=signed_in)
def attachment_fetched(request: HttpRequest, blob_id: str) -> dict:
    attachments.grant_fetched(device=request_device(request), blob_id=blob_id)
    return {"fetched": True}


@api(methods=("GET",), access=signed_in)
def attachment_upload(request: HttpRequest, blob_id: str) -> dict:
    upload = attachments.upload_get(device=request_device(request), blob_id=blob_id)
    return upload.to_json("stored", "pieces", "complete", "size", "piece_bytes")


@api(methods=("PUT",), access=signed_in, max_body=settings.PARLEY_ATTACHMENT_PIECE_BYTES)
def attachment_piece(request: HttpRequest, blob_id: str, index: int) -> dict:
    if request.content_type != "application/octet-stream":
        raise InvalidInput("Send the piece as application/octet-stream.")
    upload = attachments.piece_store(
        device=request_device(request),
        blob_id=blob_id,
        index=index,
        length=v.declared_length(request),
        body=request,
    )
    return upload.to_json("stored", "pieces", "complete")


@api(methods=("GET",), access=signed_in)
def attachment_download(request: HttpRequest, blob_id: str) -> HttpResponse:
    device = request_device(request)
    start = schemas.parse_range(request.headers.get("Range"))
    download = attachments.download_get(device=device, blob_id=blob_id, start=start or 0)
    response = StreamingHttpResponse(
        download.stream(),
        status=200 if start is None else 206,
        content_type="application/octet-stream",
    )
    response["Content-Length"] = str(download.size - download.start)
    response["Accept-Ranges"] = "bytes"
    if start is not None:
        response["Content-Range"] = f"bytes {start}-{download.size - 1}/{download.size}"
    return response


@api(methods=("GET", "POST"), access=signed_in, max_body=schemas.STATE_MAX_BODY_BYTES)
def state_log(request: HttpRequest) -> dict | HttpResponse:
    device = request_device(request)
    if request.method == "GET":
        after = schemas.parse_state_after(request.GET)
        return selectors.state_page(user_id=device.user_id, after=after).to_json()
    ratelimit.check("state", device.id)
    write = schemas.parse_state_write(v.json_body(request, max_bytes=schemas.STATE_MAX_BODY_BYTES))
    version = services.state_append(
        device=device, version=write.version, kind=write.kind, blob=write.blob
    )
    return JsonResponse({"version": version}, status=201)


@api(methods=("GET",), access=signed_in)
def groups(request: HttpRequest) -> dict:
    return {"groups": selectors.account_groups(account=request.user.get_username())}


@api(methods=("GET", "POST"), access=signed_in, max_body=schemas.GROUP_MAX_BODY_BYTES)
def group_entries(request: HttpRequest, group_id: str) -> dict | HttpResponse:
    device = request_device(request)
    group = schemas.parse_group_id(group_id)
    if request.method == "GET":
        after = schemas.parse_group_after(request.GET)
        account = request.user.get_username()
        return selectors.group_page(group_id=group, account=account, after=after).to_json()
    ratelimit.check("groups", device.id)
    write = schemas.parse_group_write(v.json_body(request, max_bytes=schemas.GROUP_MAX_BODY_BYTES))
    seq = group_log.group_entry_append(
        device=device, group_id=group, seq=write.seq, entry=write.entry
    )
    return JsonResponse({"seq": seq}, status=201)
