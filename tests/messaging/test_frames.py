"""Frame types, close codes and channel-layer events are named once (protocol/frames.py,
devices/events.py): every event reaches a handler, every name is in docs/protocol.md."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from channels.consumer import get_handler_name

from devices import events
from messaging.consumers import DeviceConsumer, LinkConsumer, StatusConsumer, frame
from protocol import frames

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "protocol.md"
JS_FRAMES = ROOT / "static" / "js" / "protocol" / "frames.js"

EVENT_CONSUMERS = {
    events.QUEUE_READY: DeviceConsumer,
    events.DEVICE_REVOKED: DeviceConsumer,
    events.DEVICES_CHANGED: DeviceConsumer,
    events.PREKEYS_LOW: DeviceConsumer,
    events.LINK_SIGNED: DeviceConsumer,
    events.LINK_CHANGED: LinkConsumer,
    events.STATUS_PONG: StatusConsumer,
    events.STATE_CHANGED: DeviceConsumer,
    events.ACCOUNT_RENAMED: DeviceConsumer,
    events.GROUP_CHANGED: DeviceConsumer,
}


def names(module, kind: type) -> dict[str, object]:
    return {
        name: value
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, kind) and not isinstance(value, bool)
    }


def test_every_event_type_has_a_consumer_that_handles_it():
    assert set(names(events, str).values()) == set(EVENT_CONSUMERS)
    for event_type, consumer in EVENT_CONSUMERS.items():
        assert callable(getattr(consumer, get_handler_name({"type": event_type}), None))


def test_the_device_socket_takes_exactly_the_client_frames():
    assert set(DeviceConsumer.FRAME_HANDLERS) == {
        frames.PING,
        frames.SEND,
        frames.GROUP_SEND,
        frames.ACK,
        frames.FETCH,
    }


def section_20() -> str:
    text = PROTOCOL.read_text()
    return text[text.index("## 20.") : text.index("## 21.")]


@pytest.mark.parametrize("name", sorted(names(frames, str)))  # frame types
def test_every_frame_type_is_documented(name):
    assert f"`{getattr(frames, name)}" in section_20()


@pytest.mark.parametrize("name", sorted(n for n in names(frames, int) if n.startswith("CLOSE_")))
def test_every_close_code_is_documented(name):
    assert re.search(rf"[Cc]lose code {getattr(frames, name)}\b", PROTOCOL.read_text())


def test_a_server_frame_carries_the_protocol_version():
    assert frame(frames.PONG, id="p1") == {"type": "pong", "v": 1, "id": "p1"}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_browser_names_the_same_frame_types_and_close_codes():
    script = f"console.log(JSON.stringify(await import({json.dumps(JS_FRAMES.as_uri())})))"
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert json.loads(out) == names(frames, str) | names(frames, int)
