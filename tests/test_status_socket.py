"""The public status socket answers ping with pong through a real Redis channel layer."""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application

ORIGIN = [(b"origin", b"http://localhost:8000")]


@pytest.mark.django_db(transaction=True)
async def test_ping_comes_back_as_pong_through_redis(redis_channel_layer):
    communicator = WebsocketCommunicator(application, "/ws/status/", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=json.dumps({"type": "ping", "v": 1, "id": "p1"}))
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong", "v": 1, "id": "p1"}
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"v": 1}', "bad_frame"),
        ('{"type": "ping", "v": 99}', "bad_version"),
        ('{"type": "launch", "v": 1}', "unknown_type"),
        ('{"type": "ping", "v": 1, "id": 7}', "bad_frame"),
        ('{"type": "ping", "v": 1, "id": "' + "x" * 65 + '"}', "bad_frame"),
        ('{"type": "ping", "v": true}', "bad_version"),
        ('{"type": "ping", "v": 1.0}', "bad_frame"),
        ('{"type": "ping", "v": 1, "id": ' + "[" * 1000 + "]" * 1000 + "}", "bad_frame"),
        ('{"type": "ping", "type": "pong", "v": 1}', "bad_frame"),
        ('{"type": "ping", "v": 1, "id": "' + "é" * 600_000 + '"}', "frame_too_large"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else value,
)
@pytest.mark.django_db(transaction=True)
async def test_bad_frame_gets_an_error_frame_and_the_socket_stays_usable(frame, code):
    communicator = WebsocketCommunicator(application, "/ws/status/", headers=ORIGIN)
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data=frame)
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["type"] == "error" and reply["code"] == code and reply["message"]
    await communicator.send_to(text_data=json.dumps({"type": "ping", "v": 1, "id": "after"}))
    assert (await communicator.receive_json_from(timeout=5))["type"] == "pong"
    await communicator.disconnect()


@pytest.mark.parametrize(
    "headers",
    [
        [(b"origin", b"https://evil.example")],
        # same host as PARLEY_ORIGIN (http://localhost:8000), other port or scheme
        [(b"origin", b"http://localhost:9999")],
        [(b"origin", b"https://localhost:8124")],
        [(b"origin", b"https://localhost:8000")],
        [(b"origin", b"http://localhost")],
        [(b"origin", b"ws://localhost:8000")],
        [(b"origin", b"null")],
        [(b"origin", b"http://user@localhost:8000")],
        [(b"origin", b"http://localhost:8000/path")],
        [(b"origin", b"http://localhost:port")],
        [(b"origin", b"http://localhost:8000"), (b"origin", b"https://evil.example")],
        [],
    ],
)
async def test_socket_from_an_origin_csrf_does_not_trust_is_refused_before_accept(headers):
    communicator = WebsocketCommunicator(application, "/ws/status/", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected


@pytest.mark.parametrize("origin", [b"http://localhost:8000", b"HTTP://LOCALHOST:8000"])
@pytest.mark.django_db(transaction=True)
async def test_socket_from_the_trusted_origin_is_accepted(origin):
    communicator = WebsocketCommunicator(application, "/ws/status/", headers=[(b"origin", origin)])
    assert (await communicator.connect())[0]
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_origin_check_follows_csrf_trusted_origins_with_default_ports(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.org"]
    for origin, accepted in [
        (b"https://chat.example.org", True),
        (b"https://chat.example.org:443", True),
        (b"http://chat.example.org", False),
        (b"https://chat.example.org:8443", False),
        (b"http://localhost:8000", False),
    ]:
        communicator = WebsocketCommunicator(
            application, "/ws/status/", headers=[(b"origin", origin)]
        )
        assert (await communicator.connect())[0] is accepted, origin
        await communicator.disconnect()
