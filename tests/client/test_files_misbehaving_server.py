"""Files against a misbehaving server, with Python devices on the live server (docs/protocol.md
19.5, 26.3): the server alters a stored blob, swaps it for another file's, cuts it short,
changes a thumbnail in transit, or a message names a blob of another conversation. Each is
refused in plain words, and nothing of the file is kept where files are saved."""

from __future__ import annotations

import asyncio
import http.client
import os
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from client import attachments
from client.api import ApiError, ServerUnreachable
from client.attachments import FileAltered, download_file, upload_file
from client.events import FileMessage, MessageWaiting
from protocol.attachments import Thumbnail
from protocol.encoding import b64u_decode, b64u_encode
from tests.support.actors import person
from tests.support.devices import Device, primary_messenger

SIZE = 1_200_000  # two upload pieces of 1 MiB


async def file_sent(live_app, tmp_path: Path) -> dict[str, Any]:
    """alice's phone sends bob a file; bob's phone has its pointer (not yet fetched)."""
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    phones = {
        "alice": await Device(primary_messenger(alice, tmp_path)).connect(),
        "bob": await Device(primary_messenger(bob, tmp_path)).connect(),
    }
    sender = phones["alice"].messenger
    path = tmp_path / "notes.pdf"
    path.write_bytes(os.urandom(SIZE))
    pointer = await asyncio.to_thread(upload_file, sender.transport, path, sender.rng)
    await phones["alice"].connection.send_file(bob.username, pointer)
    await phones["bob"].wait_for(FileMessage)
    [received] = phones["bob"].of(FileMessage)
    return {"phones": phones, "pointer": received.pointer, "path": path, "people": (alice, bob)}


def pieces(live_app, blob_id: str) -> list[Path]:
    return sorted((Path(live_app.env["PARLEY_ATTACHMENT_DIR"]) / blob_id).iterdir())


async def fetch(device: Device, pointer, directory: Path) -> Path:
    return await asyncio.to_thread(download_file, device.messenger.transport, pointer, directory)


async def close(world: dict[str, Any]) -> None:
    for device in world["phones"].values():
        await device.close()


async def test_the_file_as_sealed_is_saved(live_app, tmp_path):
    world = await file_sent(live_app, tmp_path)
    saved = await fetch(world["phones"]["bob"], world["pointer"], tmp_path / "in")
    assert saved.read_bytes() == world["path"].read_bytes()
    assert saved.name == "notes.pdf" and world["pointer"].type == "application/pdf"
    await close(world)


@pytest.mark.parametrize("tampering", ["one_byte_altered", "another_files_blob"])
async def test_a_blob_the_server_altered_is_refused_and_nothing_is_kept(
    live_app, tmp_path, tampering
):
    world = await file_sent(live_app, tmp_path)
    stored = pieces(live_app, world["pointer"].blob_id)
    if tampering == "one_byte_altered":
        data = bytearray(stored[-1].read_bytes())
        data[-100] ^= 1
        stored[-1].write_bytes(bytes(data))
    else:  # another file of the same size, sealed under another key, in its place
        other = tmp_path / "other.pdf"
        other.write_bytes(os.urandom(SIZE))
        sender = world["phones"]["alice"].messenger
        swapped = await asyncio.to_thread(upload_file, sender.transport, other, sender.rng)
        for mine, theirs in zip(stored, pieces(live_app, swapped.blob_id), strict=True):
            mine.write_bytes(theirs.read_bytes())
    directory = tmp_path / "in"
    with pytest.raises(FileAltered, match="notes.pdf was altered on the way"):
        await fetch(world["phones"]["bob"], world["pointer"], directory)
    assert list(directory.iterdir()) == []
    await close(world)


async def test_a_blob_the_server_cuts_short_is_not_kept(live_app, tmp_path, monkeypatch):
    world = await file_sent(live_app, tmp_path)
    last = pieces(live_app, world["pointer"].blob_id)[-1]
    last.write_bytes(last.read_bytes()[:-1000])
    monkeypatch.setattr(attachments, "RETRY_SECONDS", 0.05)  # the retries, quickly
    directory = tmp_path / "in"
    with pytest.raises(ServerUnreachable):  # the server closes the answer it cannot finish
        await fetch(world["phones"]["bob"], world["pointer"], directory)
    assert list(directory.iterdir()) == []
    await close(world)


async def test_a_blob_of_another_conversation_gives_nothing(live_app, tmp_path):
    """carol learns the pointer of alice's file to bob (blob id and key): the server still
    serves it only to the devices alice's send named."""
    world = await file_sent(live_app, tmp_path)
    carol = await Device(primary_messenger(person(live_app, "carol"), tmp_path)).connect()
    directory = tmp_path / "in"
    with pytest.raises(ApiError) as refused:
        await fetch(carol, world["pointer"], directory)
    assert (refused.value.status, refused.value.code) == (404, "not_found")
    assert list(directory.iterdir()) == []
    await carol.close()
    await close(world)


async def test_a_thumbnail_changed_in_transit_is_never_shown(live_app, tmp_path):
    """The thumbnail rides inside the pointer, inside the end-to-end encrypted message: a
    server that changes it changes a ciphertext that no longer opens. Bob's device asks for
    the message again (docs/protocol.md 24) and shows no file, and no picture, from it."""
    alice, bob = person(live_app, "alice"), person(live_app, "bob")

    def altered(frame: dict[str, Any]) -> dict[str, Any]:
        for envelope in frame.get("envelopes", []) if frame.get("type") == "deliver" else []:
            data = bytearray(b64u_decode(envelope["ciphertext"]))
            data[-40] ^= 1  # a byte of the encrypted content, which holds the thumbnail
            envelope["ciphertext"] = b64u_encode(bytes(data))
        return frame

    sender = await Device(primary_messenger(alice, tmp_path)).connect()
    receiver = await Device(primary_messenger(bob, tmp_path)).connect(rewrite=altered)
    path = tmp_path / "beach.jpg"
    path.write_bytes(os.urandom(5000))
    uploaded = await asyncio.to_thread(
        upload_file, sender.messenger.transport, path, sender.messenger.rng
    )
    pointer = replace(uploaded, thumbnail=Thumbnail("image/jpeg", os.urandom(600), 64, 48))
    await sender.connection.send_file(bob.username, pointer)
    [waiting] = await receiver.wait_for(MessageWaiting)
    assert waiting.sender == alice.username
    assert receiver.of(FileMessage) == []
    await receiver.close()
    await sender.close()


async def test_a_fetch_left_half_way_leaves_the_node_serving_and_the_file_whole(live_app, tmp_path):
    """Bob's device goes away a few bytes into the blob (the node was pausing its answer for
    it, web/serve.py): nothing breaks on the node, and the next fetch gets the whole file."""
    world = await file_sent(live_app, tmp_path)
    bob = world["phones"]["bob"]
    logged = len(live_app.log())
    origin = urlsplit(live_app.url)
    connection = http.client.HTTPConnection(origin.hostname, origin.port, timeout=10)
    cookie = bob.messenger.transport.cookie_header()  # type: ignore[attr-defined]
    connection.request(
        "GET", f"/api/attachments/{world['pointer'].blob_id}", headers={"Cookie": cookie}
    )
    answer = connection.getresponse()
    assert answer.status == 200 and len(answer.read(5000)) == 5000
    connection.close()
    await asyncio.sleep(0.5)
    saved = await fetch(bob, world["pointer"], tmp_path / "in")
    assert saved.read_bytes() == world["path"].read_bytes()
    assert "Traceback" not in live_app.log()[logged:]
    await close(world)
