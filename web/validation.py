"""Validation at the edge: one place that turns untrusted JSON into typed values or a clear
4xx error naming the field. Services receive validated values only."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from protocol.encoding import b64u_decode, b64u_encode
from protocol.exceptions import InvalidJson, ProtocolError
from protocol.strictjson import parse_json
from web.errors import AppError

# Every JSON body; history bundles have their own limit (settings.PARLEY_HISTORY_MAX_BYTES).
# settings.DATA_UPLOAD_MAX_MEMORY_SIZE is the same number, so Django never buffers more.
MAX_BODY_BYTES = 64 * 1024


class InvalidInput(AppError):
    code = "invalid_input"
    status = 400


def too_large(size: int | str, limit: int) -> InvalidInput:
    return InvalidInput(
        f"Body is {size} bytes; the limit is {limit}.", code="too_large", status=413
    )


def declared_length(request: HttpRequest) -> int:
    """The Content-Length the client sent (0 when absent)."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        raise InvalidInput("Content-Length must be a number of bytes.") from None


def raw_body(request: HttpRequest, *, max_bytes: int) -> bytes:
    """The body as bytes, read as a stream (not through Django's in-memory limit, which is
    the small JSON one): refused by its Content-Length before reading, and again if more
    bytes than announced (or than allowed, without a Content-Length) come."""
    if declared_length(request) > max_bytes:
        raise too_large(declared_length(request), max_bytes)
    data = request.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_large(f"more than {max_bytes}", max_bytes)
    return data


def json_body(request: HttpRequest, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The JSON object of the body, decoded by the one bounded decoder (docs/protocol.md
    section 2.2); anything it refuses is a 400 `invalid_json` whose `data.reason` names the
    rule, a body over the limit a 413 `too_large`."""
    if request.content_type != "application/json":
        raise InvalidInput("Send a JSON body with Content-Type: application/json.")
    if declared_length(request) > max_bytes:
        raise too_large(declared_length(request), max_bytes)
    if max_bytes > MAX_BODY_BYTES:  # more than Django buffers (a state snapshot): a stream
        body = raw_body(request, max_bytes=max_bytes)
    else:
        try:
            body = request.body
        except RequestDataTooBig:  # no (or a false) Content-Length, more than Django buffers
            raise too_large(f"more than {max_bytes}", max_bytes) from None
    if len(body) > max_bytes:
        raise too_large(len(body), max_bytes)
    try:
        data = parse_json(body or b"{}", max_bytes=max_bytes)
    except InvalidJson as error:
        raise InvalidInput(
            f"Body is not acceptable JSON: {error}.",
            code="invalid_json",
            data={"reason": error.reason},
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput("Body must be a JSON object.")
    return data


def _missing(key: str) -> InvalidInput:
    return InvalidInput(f"'{key}' is required.", data={"field": key})


def string(
    data: dict[str, Any],
    key: str,
    *,
    max_length: int,
    min_length: int = 1,
    pattern: str | None = None,
) -> str:
    value = data.get(key)
    if value is None:
        raise _missing(key)
    if not isinstance(value, str):
        raise InvalidInput(f"'{key}' must be a string.", data={"field": key})
    value = value.strip()
    if not min_length <= len(value) <= max_length:
        raise InvalidInput(
            f"'{key}' must be {min_length} to {max_length} characters.", data={"field": key}
        )
    if pattern and not re.fullmatch(pattern, value):
        raise InvalidInput(f"'{key}' has characters that are not allowed.", data={"field": key})
    return value


def optional_string(data: dict[str, Any], key: str, *, max_length: int, default: str = "") -> str:
    if data.get(key) in (None, ""):
        return default
    return string(data, key, max_length=max_length)


def binary(
    data: dict[str, Any], key: str, *, length: int | None = None, max_length: int = 4096
) -> bytes:
    value = data.get(key)
    if value is None:
        raise _missing(key)
    try:
        raw = b64u_decode(value, length=length, what=key)
    except ProtocolError as error:
        raise InvalidInput(f"'{key}': {error}", data={"field": key}) from None
    if len(raw) > max_length:
        raise InvalidInput(f"'{key}' is longer than {max_length} bytes.", data={"field": key})
    return raw


def integer(data: dict[str, Any], key: str, *, minimum: int = 0, maximum: int = 2**53 - 1) -> int:
    value = data.get(key)
    if value is None:
        raise _missing(key)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise InvalidInput(
            f"'{key}' must be an integer from {minimum} to {maximum}.", data={"field": key}
        )
    return value


def boolean(data: dict[str, Any], key: str, *, default: bool = False) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"'{key}' must be true or false.", data={"field": key})
    return value


def obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        raise _missing(key)
    if not isinstance(value, dict):
        raise InvalidInput(f"'{key}' must be an object.", data={"field": key})
    return value


def array(data: dict[str, Any], key: str, *, max_items: int) -> list[Any]:
    value = data.get(key)
    if value is None:
        raise _missing(key)
    if not isinstance(value, list) or len(value) > max_items:
        raise InvalidInput(
            f"'{key}' must be a list of at most {max_items} items.", data={"field": key}
        )
    return value


def b64u(raw: bytes) -> str:
    return b64u_encode(raw)
