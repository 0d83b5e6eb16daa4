"""Files in the web app (docs/protocol.md 19.5, 26): alice's laptop, her phone closed, sends
bob a 10 MB file and pastes an image. Bob's Python phone and laptop get both, and what they
fetch is the bytes alice sent; alice's phone, opened again, shows both as her own (the picture's thumbnail at
once) and fetches and checks the file. The upload is cut once by a dropped connection and goes
on from the piece the server had. A file over the limit is refused before anything is sent;
one the server altered, or one of another conversation, is refused in plain words; and a
file in the history a newly linked device gets is one it can fetch."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from client.attachments import download_file, upload_file
from client.events import FileMessage
from tests.browser.test_history import link_with_history
from tests.support.actors import person
from tests.support.browser import DESKTOP, PHONE
from tests.support.devices import DeviceThread, companion_messenger, primary_messenger
from tests.support.server import LiveServer
from tests.support.web import (
    SLOW,
    add_contact,
    collect_errors,
    link_companion,
    new_primary,
    new_username,
    open_chats,
)
from tests.support.wire import send_frames

TEN_MB = os.urandom(10_000_000)

PASTE_IMAGE = """async () => {
  const canvas = new OffscreenCanvas(640, 480);
  const g = canvas.getContext("2d");
  g.fillStyle = "#1e88e5"; g.fillRect(0, 0, 640, 480);
  g.fillStyle = "#ffca28"; g.beginPath(); g.arc(320, 240, 150, 0, Math.PI * 2); g.fill();
  const blob = await canvas.convertToBlob({ type: "image/png" });
  const file = new File([blob], "sunny.png", { type: "image/png" });
  const data = new DataTransfer();
  data.items.add(file);
  document.getElementById("composer-text").dispatchEvent(
    new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  return Array.from(new Uint8Array(await blob.arrayBuffer()));
}"""


def file_line(page: Page, name: str):
    return page.locator("#message-list .message", has=page.locator(f'[data-file="{name}"]'))


def test_files_from_a_companion_reach_the_contact_and_the_own_phone(
    new_device, live_app: LiveServer, tmp_path: Path, device_thread: DeviceThread, screenshot
):
    devices = device_thread
    alice_name = new_username("alice")
    phone_context = new_device(viewport=PHONE)
    phone, _ = new_primary(phone_context, alice_name)
    laptop = new_device(viewport=DESKTOP).new_page()
    link_companion(phone, laptop, "Laptop")
    bob = person(live_app, "bob")
    bob_phone = devices.connect(lambda: primary_messenger(bob, tmp_path))
    bob_laptop = devices.connect(lambda: companion_messenger(bob, tmp_path))
    open_chats(phone)
    add_contact(phone, bob.username)
    phone.close()

    # the laptop sends a 10 MB file; its upload is cut once at the fourth piece
    cut: list[str] = []
    pieces: list[str] = []

    def cut_once(route):
        if cut:
            route.continue_()
        else:
            cut.append(route.request.url)
            route.abort("connectionreset")

    laptop.route("**/api/attachments/*/pieces/3", cut_once)
    laptop.on(
        "request",
        lambda r: pieces.append(r.url.rsplit("/", 1)[1]) if r.method == "PUT" else None,
    )
    open_chats(laptop, f"/chats/{bob.username}")
    errors = collect_errors(laptop)
    laptop.locator("#composer-file").set_input_files(
        {"name": "notes.bin", "mimeType": "application/octet-stream", "buffer": TEN_MB}
    )
    sent = file_line(laptop, "notes.bin")
    expect(sent.locator(".file-progress")).to_be_visible(timeout=SLOW)
    expect(sent.locator(".message-status")).to_have_attribute("data-status", "sent", timeout=30_000)
    assert len(cut) == 1
    assert pieces.count("3") == 2 and pieces.count("0") == 1  # went on from the piece it lacked

    # an image pasted into the composer goes as a file with a thumbnail made here
    image = bytes(laptop.evaluate(PASTE_IMAGE))
    pasted = file_line(laptop, "sunny.png")
    expect(pasted.locator(".message-status")).to_have_attribute("data-status", "sent", timeout=SLOW)
    expect(pasted.locator("img.file-picture")).to_be_visible()
    screenshot(laptop, "file-sent-1440")

    # both of bob's devices get both pointers; what they fetch is what alice sent
    laptop_files = devices.run(bob_laptop.wait_for(FileMessage, 2, within=30))
    assert {f.pointer.name for f in laptop_files} == {"notes.bin", "sunny.png"}
    files = devices.run(bob_phone.wait_for(FileMessage, 2, within=30))
    by_name = {f.pointer.name: f.pointer for f in files}
    assert set(by_name) == {"notes.bin", "sunny.png"}
    assert by_name["sunny.png"].thumbnail is not None
    assert (by_name["sunny.png"].width, by_name["sunny.png"].height) == (640, 480)
    transport = bob_phone.messenger.transport
    saved = download_file(transport, by_name["notes.bin"], tmp_path / "bob")  # type: ignore[arg-type]
    assert saved.read_bytes() == TEN_MB
    assert download_file(transport, by_name["sunny.png"], tmp_path / "bob").read_bytes() == image  # type: ignore[arg-type]
    on_laptop = {f.pointer.name: f.pointer for f in laptop_files}["notes.bin"]
    laptop_transport = bob_laptop.messenger.transport
    assert (
        download_file(laptop_transport, on_laptop, tmp_path / "bob-laptop").read_bytes() == TEN_MB
    )  # type: ignore[arg-type]

    # alice's phone, opened again, has both as her own; the picture shows before any fetch
    phone = phone_context.new_page()
    open_chats(phone, f"/chats/{bob.username}")
    own = file_line(phone, "notes.bin")
    expect(own).to_have_class("message out", timeout=SLOW)
    picture = file_line(phone, "sunny.png")
    expect(picture.locator("img.file-picture")).to_be_visible()
    # a picture is fetched as soon as it is shown (the setting, on by default), and checked
    expect(picture.get_by_role("link", name="Save sunny.png")).to_be_visible(timeout=SLOW)
    own.get_by_role("button", name="Download notes.bin").click()
    save = own.get_by_role("link", name="Save notes.bin")
    expect(save).to_be_visible(timeout=SLOW)
    with phone.expect_download() as saving:
        save.click()
    assert saving.value.suggested_filename == "notes.bin"
    assert Path(saving.value.path()).read_bytes() == TEN_MB
    screenshot(phone, "file-received-390")
    assert errors == []


def test_a_file_over_the_limit_is_refused_before_anything_is_sent(new_device, live_app):
    page, _ = new_primary(new_device(viewport=PHONE), new_username("alice"))
    bob = person(live_app, "bob")
    open_chats(page)
    add_contact(page, bob.username)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/attachments" in r.url else None)
    expect(page.get_by_role("button", name="Attach a file (up to 25 MB)")).to_be_visible()
    page.locator("#composer-file").set_input_files(
        {"name": "film.mp4", "mimeType": "video/mp4", "buffer": bytes(26_000_000)}
    )
    expect(page.locator("#composer-message")).to_have_text(
        "Files can be at most 25 MB; film.mp4 is 26 MB."
    )
    expect(page.locator("#message-list [data-file]")).to_have_count(0)
    assert asked == []


def test_a_file_the_server_altered_or_keeps_from_this_device_is_refused_visibly(
    new_device, live_app: LiveServer, tmp_path: Path, screenshot
):
    """bob's terminal sends alice's browser two files; the server alters one byte of the
    first one's stored blob, and the second names a blob of another conversation. Neither
    is offered to save; each line says why."""
    alice_name = new_username("alice")
    alice, _ = new_primary(new_device(viewport=PHONE), alice_name)
    bob, carol = person(live_app, "bob"), person(live_app, "carol")
    bob_messenger = primary_messenger(bob, tmp_path)
    open_chats(alice)
    add_contact(alice, bob.username)
    errors = collect_errors(alice)
    cookie = bob.transport.cookie_header()

    def sent(name: str, pointer) -> None:
        out = bob_messenger.prepare_file(alice_name, pointer)
        send_frames(live_app.ws_url, live_app.url, cookie, [out.frame])
        expect(file_line(alice, name)).to_be_visible(timeout=SLOW)

    report = tmp_path / "report.pdf"
    report.write_bytes(os.urandom(300_000))
    altered = upload_file(bob.transport, report, bob_messenger.rng)  # type: ignore[arg-type]
    sent("report.pdf", altered)
    [piece] = (Path(live_app.env["PARLEY_ATTACHMENT_DIR"]) / altered.blob_id).iterdir()
    data = bytearray(piece.read_bytes())
    data[5000] ^= 1
    piece.write_bytes(bytes(data))
    line = file_line(alice, "report.pdf")
    line.get_by_role("button", name="Download report.pdf").click()
    expect(line.locator(".message-reason")).to_have_text(
        "This file was altered on the way; nothing was kept.", timeout=SLOW
    )
    expect(line.get_by_role("link")).to_have_count(0)
    screenshot(alice, "file-altered-390")

    # carol's file to someone else: its pointer, sent to alice, gets her nothing
    carol_messenger = primary_messenger(carol, tmp_path)
    theirs = upload_file(carol.transport, report, carol_messenger.rng)  # type: ignore[arg-type]
    out = bob_messenger.prepare_file(alice_name, theirs)
    frame = {**out.frame, "attachments": []}  # bob cannot grant carol's blob: he names none
    send_frames(live_app.ws_url, live_app.url, cookie, [frame])
    lines = alice.locator("#message-list .message", has=alice.locator('[data-file="report.pdf"]'))
    expect(lines).to_have_count(2, timeout=SLOW)
    lines.nth(1).get_by_role("button", name="Download report.pdf").click()
    expect(lines.nth(1).locator(".message-reason")).to_have_text(
        "The server has no such file for this device (it may have expired).", timeout=SLOW
    )
    assert errors == []


def test_a_file_in_the_history_is_fetched_by_the_newly_linked_device(
    new_device, live_app: LiveServer, tmp_path: Path
):
    """A file bob's terminal sent alice's phone is in the history her new laptop gets: the
    phone grants the laptop the blob (docs/protocol.md 19.5, 22.7), which no send named."""
    alice_name = new_username("alice")
    phone, _ = new_primary(new_device(viewport=PHONE), alice_name)
    bob = person(live_app, "bob")
    bob_messenger = primary_messenger(bob, tmp_path)
    open_chats(phone)
    add_contact(phone, bob.username)
    notes = tmp_path / "minutes.txt"
    notes.write_bytes(os.urandom(200_000))
    pointer = upload_file(bob.transport, notes, bob_messenger.rng)  # type: ignore[arg-type]
    out = bob_messenger.prepare_file(alice_name, pointer)
    send_frames(live_app.ws_url, live_app.url, bob.transport.cookie_header(), [out.frame])
    expect(file_line(phone, "minutes.txt")).to_be_visible(timeout=SLOW)

    laptop = new_device(viewport=DESKTOP).new_page()
    errors = collect_errors(laptop)
    link_with_history(phone, laptop, "Laptop")
    expect(laptop.get_by_role("progressbar", name="Receiving message history")).to_have_attribute(
        "aria-valuenow", "100", timeout=SLOW
    )
    open_chats(laptop, f"/chats/{bob.username}")
    line = file_line(laptop, "minutes.txt")
    line.get_by_role("button", name="Download minutes.txt").click()
    save = line.get_by_role("link", name="Save minutes.txt")
    expect(save).to_be_visible(timeout=SLOW)
    with laptop.expect_download() as saving:
        save.click()
    assert Path(saving.value.path()).read_bytes() == notes.read_bytes()
    assert errors == []
