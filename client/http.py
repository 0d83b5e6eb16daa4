"""One device's HTTP connection to a Parley server (stdlib only): JSON in and out, its own
cookie jar (Django session, CSRF token, link cookie), CSRF header and Origin on every POST."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from client.api import ServerUnreachable
from protocol.exceptions import InvalidJson
from protocol.strictjson import parse_json
from protocol.syncentry import MAX_SNAPSHOT_BYTES

CSRF_COOKIE = "csrftoken"
CSRF_PAGE = "/link"  # any page with ensure_csrf_cookie
# The largest answer read: Parley's JSON answers are a few KiB (history blobs are not read
# through this transport). More is the server misbehaving, not a reason to fill memory.
MAX_ANSWER_BYTES = 1024 * 1024
# ...except the account-state log, whose page may hold one 8 MiB snapshot as base64url (19.3).
STATE_ANSWER_BYTES = -(-MAX_SNAPSHOT_BYTES * 4 // 3) + 1024 * 1024


def server_origin(url: str) -> str:
    """`scheme://host[:port]` of a server URL; refuses anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"server URL: expected http(s)://host[:port], got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"server URL: expected no path, query or fragment, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


class HttpTransport:
    """`get(path)` / `post(path, body)` -> `(status, json)`, like tests.support.actors.Transport.

    A non-JSON answer (a proxy's HTML page, a CSRF failure) becomes an error body with code
    `http_<status>` (or status 502 and code `not_json` for a 2xx), and JSON that the bounded
    decoder refuses (docs/protocol.md section 2.2: too deep, too large, duplicate keys...) one
    with code `invalid_json` (status 502 for a 2xx), so callers always see
    `{"error": {code, message}}` on failure, never a crash.
    """

    def __init__(self, origin: str, *, timeout: float = 15.0) -> None:
        self.origin = server_origin(origin)
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    @property
    def ws_origin(self) -> str:
        return "ws" + self.origin.removeprefix("http")

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def cookie_header(self) -> str:
        """The Cookie header for a request this transport does not send itself (WebSocket)."""
        request = urllib.request.Request(self.origin + "/")
        self.cookies.add_cookie_header(request)
        return request.get_header("Cookie") or ""

    def export_cookies(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "value": c.value,
                "domain": c.domain,
                "path": c.path,
                "secure": c.secure,
                "expires": c.expires,
            }
            for c in self.cookies
        ]

    def import_cookies(self, cookies: list[dict[str, Any]]) -> None:
        for c in cookies:
            self.cookies.set_cookie(
                http.cookiejar.Cookie(
                    version=0,
                    name=c["name"],
                    value=c["value"],
                    port=None,
                    port_specified=False,
                    domain=c["domain"],
                    domain_specified=False,
                    domain_initial_dot=False,
                    path=c["path"],
                    path_specified=True,
                    secure=c["secure"],
                    expires=c["expires"],
                    discard=False,
                    comment=None,
                    comment_url=None,
                    rest={"HttpOnly": ""},
                )
            )

    def get(self, path: str) -> tuple[int, Any]:
        return self._send("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.cookie(CSRF_COOKIE) is None:
            self._send("GET", CSRF_PAGE, None, want_json=False)
        return self._send("POST", path, json.dumps(body).encode())

    def put_bytes(self, path: str, data: bytes) -> tuple[int, Any]:
        """A raw body (a piece of a file's blob, docs/protocol.md 19.5) -> `(status, json)`."""
        if self.cookie(CSRF_COOKIE) is None:
            self._send("GET", CSRF_PAGE, None, want_json=False)
        return self._send("PUT", path, data, content_type="application/octet-stream")

    def download(
        self, path: str, sink: Callable[[bytes], None], *, offset: int = 0, piece: int = 65536
    ) -> tuple[int, Any]:
        """GET a raw body from byte `offset` on (`Range: bytes=N-`), handed to `sink` piece by
        piece as it comes; `(status, None)` when it came, else `(status, error json)`. A cut
        connection raises ServerUnreachable after what came was handed on."""
        headers = {"Accept": "application/octet-stream, application/json"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(self.origin + path, method="GET", headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                if status == 200 and offset:  # the server ignored the range: not what was asked
                    return 502, _error("range_ignored", "The server sent the whole file again.")
                while chunk := response.read(piece):
                    sink(chunk)
                return status, None
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read(MAX_ANSWER_BYTES + 1)
            try:
                return status, parse_json(raw, max_bytes=MAX_ANSWER_BYTES)
            except InvalidJson:
                return status, _error(f"http_{status}", f"The server answered HTTP {status}.")
        except (
            urllib.error.URLError,
            TimeoutError,
            ConnectionError,
            http.client.HTTPException,
        ) as error:
            reason = getattr(error, "reason", error)
            raise ServerUnreachable(f"Cannot reach {self.origin}: {reason}") from None

    def _send(
        self,
        method: str,
        path: str,
        data: bytes | None,
        *,
        want_json: bool = True,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        if not path.startswith("/"):
            raise ValueError(f"path: expected it to start with '/', got {path!r}")
        headers = {"Accept": "application/json"}
        if method in ("POST", "PUT"):
            headers.update(
                {
                    "Content-Type": content_type,
                    "Origin": self.origin,
                    "X-CSRFToken": self.cookie(CSRF_COOKIE) or "",
                }
            )
        request = urllib.request.Request(
            self.origin + path, data=data, method=method, headers=headers
        )
        limit = STATE_ANSWER_BYTES if path.split("?")[0] == "/api/state" else MAX_ANSWER_BYTES
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, ctype = response.status, response.headers
                raw = response.read(limit + 1)
        except urllib.error.HTTPError as error:
            status, raw, ctype = error.code, error.read(limit + 1), error.headers
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ServerUnreachable(f"Cannot reach {self.origin}: {reason}") from None
        if not want_json:
            return status, None
        if "application/json" in (ctype.get("Content-Type") or ""):
            try:
                return status, parse_json(raw, max_bytes=limit)
            except InvalidJson as refused:
                message = f"The server's answer to {method} {path} was refused: {refused}."
                return (status if status >= 400 else 502), {
                    "error": {
                        "code": "invalid_json",
                        "message": message,
                        "data": {"reason": refused.reason},
                    }
                }
        code = f"http_{status}" if status >= 400 else "not_json"
        message = f"The server answered HTTP {status} without JSON to {method} {path}."
        return (status if status >= 400 else 502), {
            "error": {"code": code, "message": message, "data": {}}
        }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "data": {}}}
