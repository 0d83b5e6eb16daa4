"""What the client needs from a server connection, and the server's errors as exceptions.

A transport is any object with `get(path)` and `post(path, body)` returning `(status, json)`:
client.http.HttpTransport over real HTTP, Django's test client in-process, or a rewriting
wrapper that plays a misbehaving server in tests.
"""

from __future__ import annotations

from typing import Any, Protocol


class Transport(Protocol):
    def get(self, path: str) -> tuple[int, Any]: ...
    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]: ...


class ApiError(Exception):
    """The server refused a request: its HTTP status and its `{"error": {code, message}}`."""

    def __init__(self, status: int, body: Any):
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.status = status
        self.body = body
        self.code: str = str(error.get("code") or f"http_{status}")
        self.message: str = str(error.get("message") or f"The server answered HTTP {status}.")
        data = error.get("data")
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        super().__init__(f"{self.message} ({self.code}, HTTP {status})")


class ServerUnreachable(Exception):
    """No HTTP answer at all: connection refused, DNS failure, timeout."""


def ok(result: tuple[int, Any]) -> Any:
    """The JSON body of a 200 (or 201: created) answer; any other status raises ApiError."""
    status, body = result
    if status not in (200, 201):
        raise ApiError(status, body)
    return body


def get(transport: Transport, path: str) -> Any:
    return ok(transport.get(path))


def post(transport: Transport, path: str, body: dict[str, Any]) -> Any:
    return ok(transport.post(path, body))
