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


async def test_socket_from_a_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/status/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected
