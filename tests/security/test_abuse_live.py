"""Hostile bodies and frames against the live server (Daphne in a subprocess, DEBUG on, as
`make run` serves it): each is a JSON 4xx or an error frame naming the problem, stores
nothing, and the socket stays usable. The module has its own server, and its log is read
at the end: no traceback and no 5xx anywhere, whatever ran before (docs/protocol.md 2.2, 21).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any
from urllib.parse import urlsplit

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.http import HttpTransport
from protocol.encoding import b64u_encode
from tests.support.actors import CompanionActor, PrimaryActor, link
from tests.support.server import LiveServer, start_server
from tests.support.softauthn import SoftAuthenticator

DEEP = "[" * 1000 + "]" * 1000  # the 2 KB body of issue #9
EXAMPLES = int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "25"))
# What the log of a healthy server never holds (Daphne's access log ends a line with the
# status and the size; Django logs a crash as "Internal Server Error").
LOG_FAILURES = re.compile(
    r"Traceback|Exception inside application|Internal Server Error|\" 5\d\d \d+\s*$",
    re.MULTILINE,
)


def log_failures(server: LiveServer) -> list[str]:
    return [m.group(0) for m in LOG_FAILURES.finditer(server.log())]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_server) -> Iterator[LiveServer]:
    """This module's own server: its log holds only what these tests sent. The log is also
    checked at teardown, so a crash fails the run even if the last test was deselected."""
    live = start_server(tmp_path_factory.mktemp("abuse"), redis_url=redis_server.url)
    yield live
    live.stop()
    assert log_failures(live) == [], live.log()[-4000:]


class Raw:
    """Raw HTTP to the server, with a CSRF token (and a device's cookies, if given)."""

    def __init__(self, server: LiveServer, transport: HttpTransport | None = None):
        self.server = server
        self.transport = transport or HttpTransport(server.url)
        self.transport.get("/link")  # sets the csrftoken cookie

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        chunked: bool = False,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        parts = urlsplit(self.server.url)
        headers = {
            "Cookie": self.transport.cookie_header(),
            "X-CSRFToken": self.transport.cookie("csrftoken") or "",
            "Origin": self.server.url,
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = content_type
        with closing(http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)) as conn:
            if chunked:
                headers["Transfer-Encoding"] = "chunked"
                step = 1 << 20
                chunks = (body[i : i + step] for i in range(0, len(body), step))
                conn.request(method, path, chunks, headers, encode_chunked=True)
            else:
                conn.request(method, path, body, headers)
            response = conn.getresponse()
            return response.status, response.headers, response.read()

    def json(self, method: str, path: str, body: bytes | None = None, **kw: Any):
        status, headers, raw = self.request(method, path, body, **kw)
        assert headers["Content-Type"] == "application/json", (status, raw[:300])
        assert headers["Cache-Control"] == "no-store", (status, dict(headers))
        return status, json.loads(raw)


def stored_rows(server: LiveServer) -> dict[str, int]:
    """Rows of every app table (sessions aside) in the server's own database."""
    with closing(sqlite3.connect(server.db_path)) as db:
        tables = [
            name
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name.startswith(("accounts_", "devices_", "messaging_"))
        ]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


def error_of(status: int, body: Any) -> dict[str, Any]:
    assert 400 <= status < 500, (status, body)
    error = body["error"]
    assert set(error) == {"code", "message", "data"} and error["message"], body
    return error


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> PrimaryActor:
    return PrimaryActor(
        HttpTransport(server.url),
        SoftAuthenticator(origin=server.url),
        username=f"abuse{secrets.token_hex(3)}",
    ).sign_up()


# ------------------------------------------------------------------------- JSON bodies

PUBLIC_POSTS = [
    "/api/accounts/register/options",
    "/api/accounts/register",
    "/api/accounts/signin",
    "/api/devices/signin/options",
    "/api/devices/signin",
    "/api/link",
]
SIGNED_IN_POSTS = [
    "/api/devices/list",
    "/api/prekeys",
    "/api/accounts/{me}/bundles",
    "/api/state",
]


@pytest.mark.parametrize("path", PUBLIC_POSTS)
def test_a_deeply_nested_body_is_a_json_400_without_sign_in(server, path):
    before = stored_rows(server)
    error = error_of(*Raw(server).json("POST", path, DEEP.encode()))
    assert error["code"] == "invalid_json" and error["data"] == {"reason": "too_deep"}
    assert "nested at most 32 levels" in error["message"]
    assert stored_rows(server) == before


@pytest.mark.parametrize("path", SIGNED_IN_POSTS)
def test_a_deeply_nested_body_is_a_json_400_for_a_signed_in_device(server, alice, path):
    before = stored_rows(server)
    raw = Raw(server, alice.transport)
    error = error_of(*raw.json("POST", path.format(me=alice.username), DEEP.encode()))
    assert error["code"] == "invalid_json" and error["data"] == {"reason": "too_deep"}
    assert stored_rows(server) == before


def test_a_deeply_nested_field_is_a_json_400(server):
    body = '{"username": "mallory", "display_name": ' + DEEP + "}"
    error = error_of(*Raw(server).json("POST", "/api/accounts/register/options", body.encode()))
    assert error["data"] == {"reason": "too_deep"}


# Each would have been taken (a challenge stored) before: JSON parsers differ on these, so
# what the server checked need not be what another reader of the same bytes sees.
SLIPPERY = [
    ('{"username": "mallory", "username": "eve", "display_name": "M"}', "duplicate_key"),
    ('{"username": "mallory", "display_name": "M\\ud800"}', "lone_surrogate"),
    ('{"username": "mallory", "display_name": "M", "n": 1e400}', "not_integer"),
    ('{"username": "mallory", "display_name": "M", "n": 1.5}', "not_integer"),
    ('{"username": "mallory", "display_name": "M", "n": ' + "9" * 5000 + "}", "integer_range"),
    ('{"username": "mallory", "display_name": "M", "n": 9007199254740992}', "integer_range"),
    ('{"username": "mallory", "display_name": "M", "n": NaN}', "syntax"),
    ('{"username": "mallory", "display_name": "M", "n": -Infinity}', "syntax"),
]


@pytest.mark.parametrize(("body", "reason"), SLIPPERY, ids=[r for _, r in SLIPPERY])
def test_json_that_parsers_read_differently_is_refused_and_nothing_is_stored(server, body, reason):
    before = stored_rows(server)
    raw = Raw(server)
    error = error_of(*raw.json("POST", "/api/accounts/register/options", body.encode()))
    assert error["code"] == "invalid_json" and error["data"] == {"reason": reason}
    assert stored_rows(server) == before
    # The same body without the problem is taken: the refusal was about the JSON.
    ok = b'{"username": "mallory", "display_name": "M"}'
    assert raw.json("POST", "/api/accounts/register/options", ok)[0] == 200


# ------------------------------------------------------------------------- body sizes


def test_a_70_mb_body_is_a_json_413_by_its_content_length(server):
    status, body = Raw(server).json(
        "POST", "/api/accounts/register", b"[" + b" " * (70 * 1024 * 1024) + b"]"
    )
    assert status == 413 and body["error"]["code"] == "too_large"
    assert "65536" in body["error"]["message"]


def test_a_body_over_the_small_limit_is_a_json_413(server, alice):
    body = json.dumps({"one_time_prekeys": [], "pad": "x" * 70_000}).encode()
    status, answer = Raw(server, alice.transport).json("POST", "/api/prekeys", body)
    assert status == 413 and answer["error"]["code"] == "too_large"


@pytest.mark.parametrize("size", [70_000, 3 * 1024 * 1024])
def test_a_chunked_body_without_content_length_over_the_limit_is_a_json_413(server, size):
    status, body = Raw(server).json(
        "POST", "/api/accounts/register/options", b" " * size + b"{}", chunked=True
    )
    assert status == 413 and body["error"]["code"] == "too_large"


def test_a_history_bundle_keeps_its_large_limit_and_a_larger_one_is_a_json_413(server, alice):
    laptop = link(alice, CompanionActor(HttpTransport(server.url)))
    raw = Raw(server, alice.transport)
    path = f"/api/history?to={laptop.device_id}"
    blob = secrets.token_bytes(1024 * 1024)  # 16 times the JSON limit
    status, body = raw.json("POST", path, blob, content_type="application/octet-stream")
    assert status == 200 and body["length"] == len(blob)
    status, body = raw.json(
        "POST", path, b"x" * (70 * 1024 * 1024), content_type="application/octet-stream"
    )
    assert status == 413 and body["error"]["code"] == "too_large"


def test_a_state_snapshot_keeps_its_large_limit_and_a_larger_body_is_a_json_413(server, alice):
    raw = Raw(server, alice.transport)
    status, head = raw.json("GET", f"/api/state?after={2**53 - 1}")  # the version alone
    assert status == 200 and head["entries"] == []
    snapshot = secrets.token_bytes(8 * 1024 * 1024)  # 128 times the JSON limit
    body = {"version": head["version"] + 1, "kind": "snapshot", "blob": b64u_encode(snapshot)}
    status, answer = raw.json("POST", "/api/state", json.dumps(body).encode())
    assert (status, answer) == (201, {"version": head["version"] + 1})
    before = stored_rows(server)
    for chunked in (False, True):
        status, answer = raw.json(
            "POST", "/api/state", b" " * (12 * 1024 * 1024) + b"{}", chunked=chunked
        )
        assert status == 413 and answer["error"]["code"] == "too_large"
    assert stored_rows(server) == before


# ------------------------------------------------------------------------- JSON answers


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/no-such-thing", 404, "not_found"),
        ("POST", "/api/no-such-thing", 404, "not_found"),
        ("GET", "/api/", 404, "not_found"),
        ("GET", "/api", 404, "not_found"),
        ("GET", "/api/me/", 404, "not_found"),
        ("GET", "/api/accounts/register", 405, "method_not_allowed"),
        ("DELETE", "/api/me", 405, "method_not_allowed"),
        ("GET", "/api/me", 401, "not_signed_in"),
    ],
)
def test_every_api_answer_is_json_and_not_cached(server, method, path, status, code):
    got, body = Raw(server).json(method, path)
    assert got == status and body["error"]["code"] == code
    assert "urlpatterns" not in json.dumps(body)  # no list of every URL, even in DEBUG


def test_a_successful_api_answer_is_not_cached(server):
    body = json.dumps({"username": "cachey", "display_name": "C"}).encode()
    assert Raw(server).json("POST", "/api/accounts/register/options", body)[0] == 200


def test_pages_outside_the_api_stay_html(server):
    status, headers, _ = Raw(server).request("GET", "/no-such-page")
    assert status == 404 and headers["Content-Type"].startswith("text/html")


# ------------------------------------------------------------------------- frames

HOSTILE_FRAMES = [
    ('{"type": "ping", "v": 1, "id": ' + DEEP + "}", "bad_frame", "too_deep"),
    (DEEP, "bad_frame", "too_deep"),
    ('{"type": "ping", "v": 1.0}', "bad_frame", "not_integer"),
    ('{"type": "ping", "v": 1, "id": "a", "id": "b"}', "bad_frame", "duplicate_key"),
    ('{"type": "ping", "v": 1, "id": "\\udc00"}', "bad_frame", "lone_surrogate"),
    ('{"type": "ping", "v": 1, "n": ' + "1" * 5000 + "}", "bad_frame", "integer_range"),
    ('{"type": "ping", "v": NaN}', "bad_frame", "syntax"),
    ('{"type": "ping", "v": true}', "bad_version", None),
]  # a frame over 1 MiB never reaches the app: Daphne closes the socket (1009) first


async def exchange(url: str, origin: str, frames: list[str], cookie: str = "") -> list[dict]:
    """Send each hostile frame, then a ping: the answers up to its pong (the socket lives)."""
    async with websockets.connect(
        url, origin=origin, additional_headers={"Cookie": cookie}, max_size=2**22
    ) as socket:
        answers = []
        for frame in frames:
            await socket.send(frame)
            answers.append(json.loads(await socket.recv()))
        await socket.send(json.dumps({"type": "ping", "v": 1, "id": "alive"}))
        while (answer := json.loads(await socket.recv())).get("type") != "pong":
            pass  # a device socket may deliver first
        assert answer["id"] == "alive"
        return answers


def assert_error_frames(answers: list[dict]) -> None:
    for answer, (_, code, reason) in zip(answers, HOSTILE_FRAMES, strict=True):
        assert answer["type"] == "error" and answer["code"] == code, answer
        assert answer["message"]
        if reason:
            assert answer["data"] == {"reason": reason}, answer


async def test_hostile_frames_on_the_anonymous_status_socket_get_error_frames(server):
    answers = await exchange(
        f"{server.ws_url}/ws/status/", server.url, [f for f, _, _ in HOSTILE_FRAMES]
    )
    assert_error_frames(answers)


async def test_hostile_frames_on_the_device_socket_get_error_frames(server, alice):
    before = stored_rows(server)
    answers = await exchange(
        f"{server.ws_url}/ws/device/",
        server.url,
        [f for f, _, _ in HOSTILE_FRAMES],
        cookie=alice.transport.cookie_header(),
    )
    assert_error_frames(answers)
    after = stored_rows(server)
    presence = {"devices_devicesocket", "devices_serverprocess"}  # the socket itself
    assert {k: v for k, v in after.items() if k not in presence} == {
        k: v for k, v in before.items() if k not in presence
    }


# ------------------------------------------------------------------------- live fuzz

deep_text = st.integers(min_value=33, max_value=20_000).flatmap(
    lambda n: st.sampled_from(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n, "[" * n])
)
hostile_text = st.one_of(
    deep_text,
    st.text(max_size=200),
    st.builds(lambda n: "[" + "9" * n + "]", st.integers(min_value=16, max_value=6000)),
    st.sampled_from([s for s, _ in SLIPPERY] + [f for f, _, _ in HOSTILE_FRAMES[:7]]),
    st.builds(lambda k, t: f'{{"{k}": {t}}}', st.sampled_from(["v", "type", "id"]), deep_text),
)
fuzz = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@pytest.mark.parametrize("path", ["/api/accounts/register/options", "/api/accounts/signin"])
def test_hostile_text_to_the_live_server_is_never_a_5xx(server, path):
    raw = Raw(server)

    @fuzz
    @given(text=hostile_text)
    def probe(text):
        body = text.encode("utf-8", "surrogatepass")
        status, answer = raw.json("POST", path, body)
        assert status < 500, answer

    probe()


def test_hostile_text_to_the_state_log_is_never_a_5xx_and_stores_nothing(server, alice):
    raw = Raw(server, alice.transport)  # read as a stream (its limit is 11 MiB), then decoded
    before = stored_rows(server)

    @fuzz
    @given(text=hostile_text)
    def probe(text):
        status, answer = raw.json("POST", "/api/state", text.encode("utf-8", "surrogatepass"))
        assert 400 <= status < 500, answer

    probe()
    assert stored_rows(server) == before


async def test_hostile_frames_to_the_live_status_socket_never_crash_it(server):
    frames = []

    @fuzz
    @given(text=hostile_text.filter(bool))
    def collect(text):
        frames.append(text.encode("utf-8", "replace").decode())

    collect()
    async with websockets.connect(
        f"{server.ws_url}/ws/status/", origin=server.url, max_size=2**22
    ) as socket:
        for frame in frames:
            await socket.send(frame)
            answer = json.loads(await socket.recv())
            assert answer["type"] in {"error", "pong"}, answer


# ------------------------------------------------------------------------- the log


def test_the_server_log_has_no_traceback_and_no_5xx(server):
    """Last in this module (the fixture checks again at teardown, whatever the order)."""
    log = server.log()
    assert '"POST /api/accounts/register' in log  # the access log is in there
    assert log_failures(server) == [], log[-4000:]
