"""The WebSocket Origin check: a socket is accepted only from an origin CSRF trusts.

Channels' AllowedHostsOriginValidator compares the host alone, so `http://localhost:9999`
passed where CSRF refuses it. Here scheme, host and port must all equal one of
CSRF_TRUSTED_ORIGINS (PARLEY_ORIGIN); anything else, or no Origin, is refused before
accept (403 at the handshake).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a serialized origin, the default port filled in; None if it
    is not an http(s) origin (e.g. `null`, a path, user info)."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme not in DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
    ):
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def trusted_origin(scope: dict[str, Any]) -> bool:
    origins = [value for name, value in scope.get("headers", []) if name == b"origin"]
    if len(origins) != 1:
        return False
    key = origin_key(origins[0].decode("latin-1"))
    return key is not None and key in {origin_key(o) for o in settings.CSRF_TRUSTED_ORIGINS}


class TrustedOriginValidator:
    """ASGI middleware for WebSockets: pass only sockets whose Origin is trusted."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("TrustedOriginValidator guards WebSocket connections only.")
        if trusted_origin(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
