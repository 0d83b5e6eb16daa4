"""JSON a malicious server sends the browser goes through parseJson (docs/protocol.md section
2.2), the mirror of the server's and the Python client's decoder: an answer it refuses is
said on the page, a frame it refuses is skipped and the socket keeps working. JSON.parse
would have taken these silently (it keeps the last of two keys; V8 does not overflow on
depth), so what the page shows could differ from what another reader saw."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.support.browser import DESKTOP, PHONE
from tests.support.rewriting import hostile_answer
from tests.support.web import SLOW, new_primary

FORGERIES = {
    # The real answer with its device list given twice: which one did the page check?
    "duplicate key": lambda real: real.replace('{"devices":', '{"devices": [], "devices":', 1),
    "deep nesting": lambda real: "[" * 100_000 + "]" * 100_000,
    "a fraction": lambda real: real.replace('{"devices":', '{"max_companions": 4.5, "devices":', 1),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_devices_answer_the_decoder_refuses_is_said_on_the_page(new_device, forgery):
    page, _ = new_primary(new_device())
    hostile_answer(page, "/api/devices", FORGERIES[forgery])
    page.goto("/devices")
    notice = page.locator("#devices-message")
    expect(notice).to_contain_text("The server's answer to /api/devices was refused", timeout=SLOW)


def test_the_refusal_reads_well_on_a_phone_and_a_desktop(new_device, screenshot):
    for name, viewport in (("390", PHONE), ("1440", DESKTOP)):
        page, _ = new_primary(new_device(viewport=viewport))
        hostile_answer(page, "/api/devices", FORGERIES["deep nesting"])
        page.goto("/devices")
        expect(page.locator("#devices-message")).to_contain_text(
            "nested at most 32 levels", timeout=SLOW
        )
        screenshot(page, f"hostile-json-refused-{name}")


def test_hostile_device_frames_are_skipped_and_the_socket_keeps_working(new_device):
    page, _ = new_primary(new_device())
    sockets = []

    def relay(ws) -> None:
        server = ws.connect_to_server()
        sockets.append(ws)
        server.on_message(lambda message: ws.send(message))
        ws.on_message(lambda message: server.send(message))

    page.route_web_socket(lambda url: url.endswith("/ws/device/"), relay)
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    fetches: list[str] = []
    page.on("request", lambda r: fetches.append(r.url) if r.url.endswith("/api/devices") else None)
    page.goto("/devices")
    expect(page.locator("html")).to_have_attribute("data-device-socket", "open", timeout=SLOW)
    page.wait_for_load_state("networkidle")
    socket = sockets[-1]
    before = len(fetches)
    # JSON.parse keeps the last "type": a pong to one reader, a "device linked" notice (which
    # makes the page refetch its devices) to another.
    socket.send(
        '{"type": "pong", "v": 1, "type": "devices_changed", "reason": "linked",'
        ' "device_id": "x", "device_name": "Intruder laptop"}'
    )
    socket.send("[" * 100_000 + "]" * 100_000)
    socket.send('{"type": "devices_changed", "v": 1, "reason": "linked", "seq": 1e999}')
    for _ in range(100):  # the page warns once per refused frame
        if len([w for w in warnings if "skipped a frame" in w]) >= 3:
            break
        page.wait_for_timeout(100)
    assert len([w for w in warnings if "skipped a frame" in w]) == 3, warnings
    assert len(fetches) == before  # none of the refused frames was acted on
    # a well-formed notice is acted on: the page refetches its devices
    with page.expect_request(lambda r: r.url.endswith("/api/devices"), timeout=SLOW):
        socket.send(
            json.dumps(
                {
                    "type": "devices_changed",
                    "v": 1,
                    "reason": "linked",
                    "device_id": "y",
                    "device_name": "Real laptop",
                }
            )
        )
    expect(page.locator("html")).to_have_attribute("data-device-socket", "open")
