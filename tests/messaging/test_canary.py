"""A unique plaintext sent through the whole system (send, deliver, delivery receipt; a group
send; a file) never reaches the server's database, Redis or log, and neither do the sender's private
key nor its group sender key."""

from __future__ import annotations

import asyncio
import secrets
import socket
import sqlite3
import threading
from pathlib import Path

from client.attachments import download_file, upload_file
from client.events import FileMessage, GroupEvent, GroupText
from client.messenger import ReceiptReceived, TextMessage
from protocol.encoding import b64u_encode
from tests.support.actors import person
from tests.support.devices import Device, primary_messenger
from tests.support.redis import RedisServer


class RedisMonitor:
    """Everything Redis executes (`MONITOR`), captured raw on a plain socket."""

    def __init__(self, redis: RedisServer) -> None:
        self.socket = socket.create_connection(("127.0.0.1", redis.port))
        self.socket.sendall(b"MONITOR\r\n")
        assert self.socket.recv(5) == b"+OK\r\n"
        self.captured = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while chunk := self.socket.recv(65536):
                self.captured += chunk
        except OSError:  # the server reset the socket as it stopped: the capture is complete
            return

    def stop(self) -> bytes:
        self.socket.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)
        self.socket.close()
        return bytes(self.captured)


def database_dump(path: Path) -> list[bytes]:
    """Every value of every table, BLOBs as bytes, text as UTF-8: tables added later (the
    state log's `messaging_stateentry`, which holds only blobs devices wrote) included."""
    values: list[bytes] = []
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 (names from sqlite_master)
                for value in row:
                    if isinstance(value, bytes):
                        values.append(value)
                    elif value is not None:
                        values.append(str(value).encode())
    return values


def files_of(path: Path) -> bytes:
    """The database file and its WAL as raw bytes (deleted rows may linger in free pages)."""
    return b"".join(
        Path(f"{path}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


async def test_canary_text_and_private_key_never_reach_the_server(live_app, redis_server, tmp_path):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    sender = await Device(primary_messenger(alice, tmp_path)).connect()
    receiver = await Device(primary_messenger(bob, tmp_path)).connect()
    receiver.messenger.add_contact(alice.username)  # a delivery receipt goes to contacts only
    canary = f"canary-{secrets.token_hex(16)}"
    seed = alice.keys.identity.secret[:32]

    monitor = RedisMonitor(redis_server)
    sent = await sender.connection.send_text(bob.username, canary)
    [message] = await receiver.wait_for(TextMessage)
    [receipt] = await sender.wait_for(ReceiptReceived)
    await sender.close()
    await receiver.close()
    capture = monitor.stop()

    assert message.text == canary  # it did go through
    assert receipt.message_ids == (sent.message_id,)
    # and the monitor saw the traffic: the rate limits' buckets (one node rings its own
    # sockets without Redis; a doorbell crossing nodes goes through it, tests/cluster/)
    assert b'"SET"' in capture.upper()

    needles = {
        "canary text": canary.encode(),
        "identity seed": seed,
        "identity seed (base64url)": b64u_encode(seed).encode(),
        # the receiver's ML-KEM seeds (docs/protocol.md 27.1): only public keys go up
        "last-resort KEM seed": bob.keys.last_resort_kem_prekey.seed,
        "one-time KEM seed": bob.keys.kem_prekeys[0].seed,
        "KEM seed (base64url)": b64u_encode(bob.keys.kem_prekeys[0].seed).encode(),
    }
    dump = database_dump(live_app.db_path)
    raw_files = files_of(live_app.db_path)
    log = live_app.log().encode()
    # the scans do find what is there: the public identity key is stored (a BLOB) by design,
    # and so is the public half of a KEM prekey
    assert any(alice.keys.identity.public in value for value in dump)
    assert alice.keys.identity.public in raw_files
    assert any(bob.keys.kem_prekeys[1].public in value for value in dump)
    for what, needle in needles.items():
        assert not any(needle in value for value in dump), f"{what} in a database table"
        assert needle not in raw_files, f"{what} in the database files"
        assert needle not in capture, f"{what} in the Redis MONITOR capture"
        assert needle not in log, f"{what} in the server log"


async def test_canary_group_text_and_sender_key_never_reach_the_server(
    live_app, redis_server, tmp_path
):
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    sender = await Device(primary_messenger(alice, tmp_path)).connect()
    receiver = await Device(primary_messenger(bob, tmp_path)).connect()
    monitor = RedisMonitor(redis_server)
    group_id, _ = sender.messenger.group_create("Canaries", [bob.username])
    await receiver.wait_for(GroupEvent)
    canary = f"canary-{secrets.token_hex(16)}"
    sent = await sender.connection.send_group_text(group_id, canary)
    [message] = await receiver.wait_for(GroupText)
    record = sender.messenger.store.group_record(group_id)
    await sender.close()
    await receiver.close()
    capture = monitor.stop()

    assert message.text == canary and sent.keys  # it went through, with the key alongside
    assert record is not None and record.sending is not None
    key = record.sending
    needles = {
        "canary text": canary.encode(),
        "identity seed": alice.keys.identity.secret[:32],
        "sender chain key": key.chain_key,
        "sender chain key (base64url)": b64u_encode(key.chain_key).encode(),
        "sender signing secret": key.signing_secret[:32],
    }
    dump = database_dump(live_app.db_path)
    raw_files = files_of(live_app.db_path)
    log = live_app.log().encode()
    # the scans find what is there: the group's log, which the server reads by design
    # (docs/protocol.md 25.5: entries are signed, not encrypted), names the group
    assert any(b"Canaries" in value for value in dump)
    for what, needle in needles.items():
        assert not any(needle in value for value in dump), f"{what} in a database table"
        assert needle not in raw_files, f"{what} in the database files"
        assert needle not in capture, f"{what} in the Redis MONITOR capture"
        assert needle not in log, f"{what} in the server log"


async def test_canary_file_and_its_key_never_reach_the_server(live_app, redis_server, tmp_path):
    """A file made of a canary, under a name holding it, sent and fetched: neither its bytes,
    nor its name, nor its key are in the stored pieces, the database, Redis or the log."""
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    sender = await Device(primary_messenger(alice, tmp_path)).connect()
    receiver = await Device(primary_messenger(bob, tmp_path)).connect()
    canary = f"canary-{secrets.token_hex(16)}".encode()
    path = tmp_path / f"{canary.decode()}.txt"
    path.write_bytes(canary * 40_000)  # 1.6 MB: two upload pieces, many chunks
    monitor = RedisMonitor(redis_server)
    transport = sender.messenger.transport
    pointer = await asyncio.to_thread(upload_file, transport, path, sender.messenger.rng)  # type: ignore[arg-type]
    await sender.connection.send_file(bob.username, pointer)
    [message] = await receiver.wait_for(FileMessage)
    stored = Path(live_app.env["PARLEY_ATTACHMENT_DIR"]) / pointer.blob_id
    pieces = b"".join(p.read_bytes() for p in sorted(stored.iterdir()))  # before bob fetches
    saved = await asyncio.to_thread(
        download_file,
        receiver.messenger.transport,
        message.pointer,
        tmp_path / "bob",  # type: ignore[arg-type]
    )
    await sender.close()
    await receiver.close()
    capture = monitor.stop()

    assert saved.read_bytes() == path.read_bytes()  # it did go through
    assert len(pieces) == pointer.blob_size  # and the scan reads the whole stored blob
    needles = {
        "file content and name": canary,  # the name is inside the encrypted message
        "file key": pointer.key,
        "file key (base64url)": b64u_encode(pointer.key).encode(),
    }
    dump = database_dump(live_app.db_path)
    raw_files = files_of(live_app.db_path)
    log = live_app.log().encode()
    for what, needle in needles.items():
        assert needle not in pieces, f"{what} in the stored pieces"
        assert not any(needle in value for value in dump), f"{what} in a database table"
        assert needle not in raw_files, f"{what} in the database files"
        assert needle not in capture, f"{what} in the Redis MONITOR capture"
        assert needle not in log, f"{what} in the server log"
