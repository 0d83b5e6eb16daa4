"""Validation of WebSocket frames: JSON objects with a `type` and a version `v`, size-limited."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from config.errors import BadFrame

MAX_FRAME_BYTES = 1024 * 1024
PROTOCOL_VERSION = 1
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Frame:
    type: str
    body: dict[str, Any]


def parse_frame(text: str | None) -> Frame:
    """Decode one text frame; raise BadFrame saying what is wrong."""
    if text is None:
        raise BadFrame("Binary frames are not accepted; send JSON text.")
    if len(text) > MAX_FRAME_BYTES:
        raise BadFrame(
            f"Frame is {len(text)} bytes; the limit is {MAX_FRAME_BYTES}.", code="frame_too_large"
        )
    try:
        body = json.loads(text)
    except ValueError:
        raise BadFrame("Frame is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadFrame("Frame must be a JSON object.")
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise BadFrame("Frame has no 'type'.")
    if body.get("v") != PROTOCOL_VERSION:
        raise BadFrame(
            f"Unsupported frame version {body.get('v')!r}; expected {PROTOCOL_VERSION}.",
            code="bad_version",
        )
    return Frame(type=kind, body=body)


def optional_id(body: dict[str, Any], key: str = "id") -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        raise BadFrame(f"'{key}' must be a string of at most {MAX_ID_LENGTH} characters.")
    return value
