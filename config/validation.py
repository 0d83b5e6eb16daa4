"""Validation at the edge: one place that turns untrusted JSON into typed values or a clear
4xx error naming the field. Services receive validated values only."""

from __future__ import annotations

import json
import re
from typing import Any

from django.http import HttpRequest

from config.errors import AppError
from protocol.encoding import b64u_decode
from protocol.exceptions import ProtocolError

MAX_BODY_BYTES = 64 * 1024


class InvalidInput(AppError):
    code = "invalid_input"
    status = 400


def json_body(request: HttpRequest, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise InvalidInput("Send a JSON body with Content-Type: application/json.")
    if len(request.body) > max_bytes:
        raise InvalidInput(
            f"Body is {len(request.body)} bytes; the limit is {max_bytes}.",
            code="too_large",
            status=413,
        )
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise InvalidInput("Body is not valid JSON.") from None
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
    from protocol.encoding import b64u_encode

    return b64u_encode(raw)
