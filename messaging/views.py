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


@api(methods=("POST",), max_body=settings.PARLEY_HISTORY_MAX_BYTES)
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


@api(methods=("GET",))
def history_download(request: HttpRequest, blob_id: str) -> HttpResponse:
    data = services.history_take(device=request_device(request), blob_id=blob_id)
    return HttpResponse(data, content_type="application/octet-stream")
