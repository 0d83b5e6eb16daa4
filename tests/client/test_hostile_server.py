"""A malicious server must not crash a device: JSON answers and frames go through the bounded
decoder (docs/protocol.md section 2.2), so what it refuses is the client's own clear error
(ApiError `invalid_json`, a FrameRefused event), never a RecursionError or a dead socket.

The hostile servers here are real ones on loopback ports: a stdlib HTTP server and a
`websockets` server, each answering bytes no honest Parley server writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import websockets

from client import api
from client.api import ApiError
from client.connection import Connected, DeviceConnection, FrameRefused
from client.http import MAX_ANSWER_BYTES, HttpTransport
from tests.support.devices import Device, primary_messenger

ANSWERS: dict[str, tuple[int, bytes]] = {
    "/deep": (200, b"[" * 100_000 + b"]" * 100_000),
    "/deep-field": (200, b'{"device_list": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"),
    "/duplicate": (200, b'{"version": 1, "version": 2}'),
    "/nan": (200, b'{"version": NaN}'),
    "/fraction": (200, b'{"version": 1.5}'),
    "/big-integer": (200, b'{"version": 9007199254740993}'),
    "/surrogate": (200, b'{"account_id": "\\ud800"}'),
    "/huge": (200, b'{"pad": "' + b"x" * (MAX_ANSWER_BYTES + 10) + b'"}'),
    "/deep-error": (409, b"[" * 100_000),
}
REASONS = {
    "/deep": "too_deep",
    "/deep-field": "too_deep",
    "/duplicate": "duplicate_key",
    "/nan": "syntax",
    "/fraction": "not_integer",
    "/big-integer": "integer_range",
    "/surrogate": "lone_surrogate",
    "/huge": "too_large",
    "/deep-error": "too_deep",
}


class HostileHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS[self.path]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hostile_http() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", sorted(ANSWERS))
def test_a_hostile_json_answer_is_an_api_error_not_a_crash(hostile_http, path):
    transport = HttpTransport(hostile_http)
    status, body = transport.get(path)
    assert status == (409 if path == "/deep-error" else 502)
    assert body["error"]["code"] == "invalid_json"
    assert body["error"]["data"] == {"reason": REASONS[path]}
    assert path in body["error"]["message"]
    with pytest.raises(ApiError) as refused:
        api.get(transport, path)
    assert refused.value.code == "invalid_json"


HOSTILE_FRAMES: list[str | bytes] = [
    "[" * 100_000 + "]" * 100_000,
    '{"type": "deliver", "v": 1, "envelopes": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"type": "revoked", "type": "pong", "v": 1}',  # which type? no guess: refused
    '{"type": "accepted", "v": 1, "id": "x", "seq": 1e999}',
    '{"type": "deliver", "v": 1, "envelopes": NaN}',
    "[1, 2]",
    "null",
    b"\xff\xfe",
]


async def test_hostile_frames_are_skipped_and_the_device_keeps_its_socket(
    primary, tmp_path
) -> None:
    connections = 0

    async def hostile(socket) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            for frame in HOSTILE_FRAMES:
                await socket.send(frame)
            await socket.close()  # and the client must come back
        else:
            await socket.wait_closed()

    async with websockets.serve(hostile, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        device = Device(primary_messenger(primary, tmp_path))
        device.connection = DeviceConnection(
            device.messenger,
            HttpTransport(f"http://localhost:{port}"),
            on_event=device._on_event,
            backoff_start=0.05,
        )
        await device.connection.start()
        refused = await device.wait_for(FrameRefused, len(HOSTILE_FRAMES))
        await device.wait_for(Connected, 2)
        assert device.of(Connected)[1].reconnect  # the connection task lived on
        assert all(event.reason for event in refused)
        assert "nested at most 32 levels" in refused[0].reason
        assert "unique keys" in refused[2].reason
        assert "frame object" in refused[5].reason
        assert device.messenger.store.device() is not None  # not wiped by a "revoked"
        await asyncio.wait_for(device.close(), 10)
