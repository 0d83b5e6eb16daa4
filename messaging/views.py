"""History bundles over HTTP: opaque encrypted blobs, uploaded once, fetched once."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config import validation as v
from config.api import api
from config.validation import InvalidInput
from devices.auth import request_device
from devices.schemas import DEVICE_ID_PATTERN
from messaging import services


@api(methods=("POST",))
def history_upload(request: HttpRequest) -> dict:
    if request.content_type != "application/octet-stream":
        raise InvalidInput("Send the encrypted bundle as application/octet-stream.")
    length = int(request.headers.get("Content-Length") or 0)
    if not 0 < length <= settings.PARLEY_HISTORY_MAX_BYTES:
        raise InvalidInput(
            f"A history bundle must be 1 to {settings.PARLEY_HISTORY_MAX_BYTES} bytes.",
            code="too_large",
            status=413,
        )
    to_device = v.string(request.GET, "to", max_length=32, min_length=16, pattern=DEVICE_ID_PATTERN)
    blob = services.history_store(
        from_device=request_device(request), to_device_id=to_device, data=request.body
    )
    return {"blob_id": blob.id, "length": len(request.body)}


@api(methods=("GET",))
def history_download(request: HttpRequest, blob_id: str) -> HttpResponse:
    data = services.history_take(device=request_device(request), blob_id=blob_id)
    return HttpResponse(data, content_type="application/octet-stream")
