"""The device socket `/ws/device/` (docs/protocol.md section 20) around a Messenger.

`DeviceConnection` keeps one socket open: it signs back in with the identity key when the
server no longer knows the session (HTTP 403 on the handshake, close 4003), reconnects with
capped backoff and asks for a `fetch` after a reconnect, wipes the store on `revoked`,
processes each delivered envelope (stored) before acknowledging it, resends a pending
`send` (same envelope id, so the server stores it once) until it is `accepted`, refills
the server's pool of one-time prekeys when told `prekeys_low`, reads the account's
synced state (section 22.8) on every connect and each `state_changed`, sends the retry
requests and resends receiving prepared (section 24), and fires the engine's `retry_due`
every `retry_every` seconds while the socket is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Origin

from client.api import ApiError, ServerUnreachable
from client.events import (
    OWED_TO_OWN_DEVICES,
    GroupSendOwed,
    ReceiptOwed,
    SendOwed,
    SyncKeyOwed,
    SyncWarning,
)
from client.groups import GroupRefused, OutgoingGroup
from client.http import HttpTransport
from client.messenger import (
    DevicesChanged,
    Event,
    ListWarning,
    Messenger,
    OutgoingMessage,
    SendRefused,
)
from client.signin import DeviceLoggedOut, sign_in
from protocol import frames
from protocol.attachments import AttachmentPointer
from protocol.content import MAX_RECEIPT_IDS, ContentType
from protocol.engine import FrameReceived
from protocol.exceptions import MalformedMessage, ProtocolError
from protocol.strictjson import parse_json

Outgoing = OutgoingMessage | OutgoingGroup

# A `deliver` frame holds up to 100 envelopes of up to 66 KiB each (about 9 MB as base64);
# the browser allows the same 16 MiB.
MAX_FRAME_BYTES = 16 * 1024 * 1024
PROCESSED_MEMORY = 20000  # queue positions handled on this socket (fetch redelivers them)
RETRY_EVERY = 3.0  # seconds between the engine's retry_due timers (docs/protocol.md 24.2)


@dataclass(frozen=True)
class LoggedOut:
    """The server logged this device out; its keys were deleted here."""

    reason: str


@dataclass(frozen=True)
class Connected:
    reconnect: bool


@dataclass(frozen=True)
class FrameRefused:
    """A frame from the server this client cannot read (docs/protocol.md section 2.2); it
    was skipped and the socket kept."""

    reason: str


@dataclass(frozen=True)
class SendFailed:
    """A send (usually a delivery receipt) the connection gave up on."""

    recipient: str
    reason: str


@dataclass(frozen=True)
class PrekeysRefilled:
    """The server said this device's one-time prekeys run low; `uploaded` fresh ones went up."""

    uploaded: int
    error: str | None = None


ConnectionEvent = Event | LoggedOut | Connected | SendFailed | PrekeysRefilled | FrameRefused


def server_frame(text: str | bytes) -> dict[str, Any]:
    """One frame from the server through the bounded decoder: a JSON object, or
    MalformedMessage (InvalidJson naming the rule) however hostile the text."""
    frame = parse_json(text, max_bytes=MAX_FRAME_BYTES)
    if not isinstance(frame, dict):
        raise MalformedMessage(f"expected a frame object, got {type(frame).__name__}")
    return frame


class DeviceConnection:
    def __init__(
        self,
        messenger: Messenger,
        transport: HttpTransport,
        *,
        on_event: Callable[[ConnectionEvent], None] = lambda event: None,
        receive: bool = True,
        backoff_start: float = 0.2,
        backoff_cap: float = 10.0,
        retry_every: float = RETRY_EVERY,
    ) -> None:
        self.messenger = messenger
        self.transport = transport
        self.on_event = on_event
        self.receive = receive
        self.backoff_start = backoff_start
        self.backoff_cap = backoff_cap
        self.retry_every = retry_every
        self.socket: Any = None
        self.pending: dict[str, tuple[Outgoing, asyncio.Future[Any]]] = {}
        self.processed: dict[int, None] = {}
        self.connected = asyncio.Event()
        self.logged_out: DeviceLoggedOut | None = None
        self._pongs: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # ------------------------------------------------------------ lifecycle

    async def start(self, *, within: float = 15.0) -> DeviceConnection:
        self._task = asyncio.create_task(self._run())
        waiter = asyncio.create_task(self.connected.wait())
        done, _ = await asyncio.wait(
            {waiter, self._task}, timeout=within, return_when=asyncio.FIRST_COMPLETED
        )
        if self._task in done:
            waiter.cancel()
            self._task.result()  # raises what stopped it (logged out, unreachable...)
        if waiter not in done:
            waiter.cancel()
            raise ServerUnreachable(f"No device socket to {self.transport.ws_origin} in {within} s")
        return self

    async def close(self, *, flush: float = 5.0) -> None:
        """Wait (at most `flush` s) for pending sends such as receipts, then close."""
        if self.pending and flush > 0:
            await asyncio.wait([f for _, f in self.pending.values()], timeout=flush)
        self._closing = True
        if self.socket is not None:
            await self.socket.close()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)

    async def __aenter__(self) -> DeviceConnection:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        delay, attempt = self.backoff_start, 0
        while not self._closing:
            try:
                self.socket = await websockets.connect(
                    f"{self.transport.ws_origin}/ws/device/",
                    origin=Origin(self.transport.origin),
                    additional_headers={"Cookie": self.transport.cookie_header()},
                    compression=None,
                    max_size=MAX_FRAME_BYTES,
                )
            except InvalidStatus as error:
                if error.response.status_code in (401, 403) and await self._signed_in(delay):
                    continue
                await self._backoff(delay)
                delay = min(delay * 2, self.backoff_cap)
                continue
            except (OSError, TimeoutError, InvalidHandshake):
                await self._backoff(delay)
                delay = min(delay * 2, self.backoff_cap)
                continue
            delay = self.backoff_start
            try:
                await self._session(reconnect=attempt > 0)
            except ConnectionClosed:
                pass
            finally:
                self.connected.clear()
            attempt += 1
            code = self.socket.close_code
            if code == frames.CLOSE_REVOKED:
                self._wipe("logged out by the server")
                return
            if code == frames.CLOSE_UNAUTHENTICATED:
                await self._signed_in(delay)
            elif not self._closing:
                await self._backoff(delay)
                delay = min(delay * 2, self.backoff_cap)

    async def _backoff(self, delay: float) -> None:
        if not self._closing:
            await asyncio.sleep(delay)

    async def _signed_in(self, delay: float) -> bool:
        """Sign in again with the identity key (DESIGN §7); False (after a pause) when the
        server could not be asked. A revoked device is wiped and DeviceLoggedOut raised."""
        try:
            sign_in(self.transport, self.messenger.device)
        except DeviceLoggedOut as error:
            self._wipe(str(error))
            raise
        except (ServerUnreachable, ApiError):
            await self._backoff(delay)
            return False
        self.messenger.store.save_server_cookies(self.transport.export_cookies())
        return True

    def _wipe(self, reason: str) -> None:
        self._closing = True
        self.logged_out = DeviceLoggedOut(reason)
        for future in [f for _, f in self.pending.values()] + list(self._pongs.values()):
            if not future.done():
                future.set_exception(self.logged_out)
        self.messenger.store.wipe()
        self.on_event(LoggedOut(reason))

    async def _session(self, *, reconnect: bool) -> None:
        if reconnect and self.receive:
            await self._send_frame({"type": "fetch", "v": 1})
        for outgoing, future in list(self.pending.values()):
            if not future.done():  # the same envelope id: stored once however often sent
                await self._send_frame(outgoing.frame)
        self.connected.set()
        self.on_event(Connected(reconnect=reconnect))
        if self.receive:  # a doorbell may have been lost while the socket was closed
            if not reconnect:  # a device from before KEM prekeys publishes them (27.1)
                await self._on_prekeys_low(on_connect=True)
            await self._sync(None)
            await self._own_devices()
            await self._groups_listed()
        timer = asyncio.create_task(self._retry_timer()) if self.receive else None
        try:
            async for text in self.socket:
                try:
                    frame = server_frame(text)
                except MalformedMessage as error:
                    self.on_event(FrameRefused(str(error)))
                    continue
                await self._on_frame(frame)
        finally:
            if timer is not None:
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer

    async def _retry_timer(self) -> None:
        """The engine's `retry_due` while the socket is open: an envelope still waiting is
        asked for again on the engine's schedule, or given up (docs/protocol.md 24.2)."""
        while True:
            await asyncio.sleep(self.retry_every)
            try:
                events = self.messenger.retry_due()
            except (ServerUnreachable, ApiError, ProtocolError) as error:
                self.on_event(SendFailed(self.messenger.account_id, f"retry not asked: {error}"))
                continue
            with contextlib.suppress(ConnectionClosed):
                await self.emit(events)

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(frame))

    # ------------------------------------------------------------ frames

    async def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == frames.DELIVER:
            if self.receive:
                await self._on_deliver(frame.get("envelopes") or [])
        elif kind == frames.ACCEPTED:
            entry = self.pending.pop(str(frame.get("id")), None)
            if entry is not None and isinstance(entry[0], OutgoingGroup):
                await self._group_answered(entry[0], entry[1], frame)
            elif entry is not None and not entry[1].done():
                entry[1].set_result(entry[0])
        elif kind == frames.GROUP_CHANGED:
            if self.receive and isinstance(frame.get("group_id"), str):
                await self._group_fetch(frame["group_id"])
        elif kind == frames.ERROR:
            await self._on_error(frame)
        elif kind == frames.REVOKED:
            self._wipe(f"logged out by the server ({frame.get('reason')})")
        elif kind == frames.DEVICES_CHANGED:
            await self._on_devices_changed(frame)
        elif kind == frames.PREKEYS_LOW:
            await self._on_prekeys_low()
        elif kind == frames.PONG:
            waiter = self._pongs.pop(str(frame.get("id")), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif kind == frames.STATE_CHANGED:
            version = frame.get("version")
            if self.receive and isinstance(version, int) and not isinstance(version, bool):
                await self._sync(version)

    async def _on_deliver(self, envelopes: list[dict[str, Any]]) -> None:
        receipts: dict[str, list[bytes]] = {}
        owed: list[Event] = []
        seqs = []
        for envelope in envelopes:
            seq = envelope.get("seq")
            if not isinstance(seq, int):
                continue
            seqs.append(seq)
            if seq in self.processed:  # redelivered (fetch, re-push): done already
                continue
            for event in self.messenger.receive(envelope):
                if isinstance(event, ReceiptOwed):  # the engine's: delivery, to contacts
                    receipts.setdefault(event.peer, []).extend(event.message_ids)
                elif isinstance(event, (*OWED_TO_OWN_DEVICES, SendOwed)):
                    owed.append(event)
                else:
                    self.on_event(event)
            self.processed[seq] = None
            if len(self.processed) > PROCESSED_MEMORY:
                del self.processed[next(iter(self.processed))]
        if seqs:  # each envelope above is processed and stored before this ack
            await self._send_frame({"type": "ack", "v": 1, "seqs": seqs})
        await self.emit(owed)
        for sender, message_ids in receipts.items():
            for start in range(0, len(message_ids), MAX_RECEIPT_IDS):
                try:
                    batch = message_ids[start : start + MAX_RECEIPT_IDS]
                    await self.submit(self.messenger.prepare_receipt(sender, batch))
                except (SendRefused, ProtocolError, ApiError) as error:
                    self.on_event(SendFailed(sender, f"delivery receipt not sent: {error}"))

    async def _on_error(self, frame: dict[str, Any]) -> None:
        ref = frame.get("ref")
        entry = self.pending.get(str(ref)) if ref is not None else None
        if entry is None:
            return
        outgoing, future = entry
        code = frame.get("code")
        data = frame.get("data")
        data = data if isinstance(data, dict) else {}
        if code == "rate_limited":  # either kind: the same frame again, after the wait
            wait = data.get("retry_after_ms", 1000)
            await asyncio.sleep(min(float(wait) / 1000 if isinstance(wait, int) else 1.0, 10.0))
            await self._send_frame(outgoing.frame)
        elif isinstance(outgoing, OutgoingGroup):
            del self.pending[outgoing.send_id]
            await self._group_answered(outgoing, future, frame)
        elif code == "mismatched_devices" and outgoing.partial:  # its one device is gone
            self._fail(
                outgoing.envelope_id,
                SendRefused(f"The server refused: {frame.get('message')}", code=str(code)),
            )
        elif code == "mismatched_devices":
            try:
                retried = self.messenger.retry(outgoing, data)
            except (SendRefused, ProtocolError, ApiError) as error:
                self._fail(outgoing.envelope_id, error)
                return
            self.pending[outgoing.envelope_id] = (retried, future)
            await self._send_frame(retried.frame)
        else:
            self._fail(
                outgoing.envelope_id,
                SendRefused(f"The server refused: {frame.get('message')}", code=str(code)),
            )

    async def _group_answered(
        self, outgoing: OutgoingGroup, future: asyncio.Future[Any], frame: dict[str, Any]
    ) -> None:
        """The group machine takes the answer: done, planned again, or refused."""
        try:
            again, events = self.messenger.group_send_answered(outgoing, frame)
        except (GroupRefused, SendRefused, ProtocolError, ApiError) as error:
            if not future.done():
                future.set_exception(error)
            return
        await self.emit(events)
        if again is None:
            if not future.done():
                future.set_result(outgoing)
            return
        self.pending[again.send_id] = (again, future)
        await self._send_frame(again.frame)

    async def _groups_listed(self) -> None:
        """The account's groups the server lists: the logs that moved are read (19.4)."""
        try:
            events = self.messenger.groups_listed()
        except (GroupRefused, ServerUnreachable, ApiError, ProtocolError) as error:
            self.on_event(SyncWarning("group_unavailable", f"the account's groups: {error}"))
            return
        await self.emit(events)

    async def _group_fetch(self, group_id: str) -> None:
        try:
            events = self.messenger.group_fetch(group_id)
        except (GroupRefused, ServerUnreachable, ApiError, ProtocolError) as error:
            self.on_event(SyncWarning("group_unavailable", f"group {group_id}: {error}"))
            return
        await self.emit(events)

    def _fail(self, envelope_id: str, error: BaseException) -> None:
        entry = self.pending.pop(envelope_id, None)
        if entry is not None and not entry[1].done():
            entry[1].set_exception(error)
            outgoing = entry[0]
            if (
                isinstance(outgoing, OutgoingMessage)
                and outgoing.content_type is not ContentType.TEXT
            ):
                # nobody awaits a receipt: say it here
                self.on_event(SendFailed(outgoing.recipient, str(error)))
                entry[1].exception()

    async def _on_devices_changed(self, frame: dict[str, Any]) -> None:
        """The server says the own list changed: the engine fetches and checks it (section
        22.4), as the browser's does."""
        own = self.messenger.account_id
        self.messenger.forget_device_names()  # a rename too: shown by the new name
        try:
            effects = self.messenger.engine.run(FrameReceived(frame, self.messenger.clock()), own)
            self.messenger.engine.raise_for(own, effects)
            accepted = self.messenger.store.device_list(own)
            assert accepted is not None  # stored by the run
        except (ProtocolError, ApiError) as error:
            self.on_event(
                ListWarning(self.messenger.account_id, f"own device list refused: {error}")
            )
            return
        self.on_event(DevicesChanged(self.messenger.account_id, accepted.version))
        if self.receive:
            devices = tuple(d.device_id for d in accepted.device_list.devices)
            await self.emit(self.messenger.own_devices_listed(devices))

    async def _own_devices(self) -> None:
        """On connect: an own device that logged out while this one was offline is learnt
        here, and the sync machine re-keys (docs/protocol.md section 22.8)."""
        try:
            events = self.messenger.own_devices_checked()
        except (ServerUnreachable, ApiError, ProtocolError) as error:
            self.on_event(ListWarning(self.messenger.account_id, f"own device list: {error}"))
            return
        await self.emit(events)

    async def _sync(self, version: int | None) -> None:
        """Read the account's state log (docs/protocol.md section 22.8): on every connect and
        on each `state_changed {version}`; what changed comes out as events."""
        try:
            events = self.messenger.sync_fetch(version)
        except (ServerUnreachable, ApiError, ProtocolError) as error:
            self.on_event(
                SyncWarning("sync_unavailable", f"could not read your account's state: {error}")
            )
            return
        await self.emit(events)

    async def emit(self, events: list[Event]) -> None:
        """Hand events to the listener; a sync key or checkpoint owed goes to the other own
        devices, a retry request or resend (prepared already) to its one device."""
        for event in events:
            if isinstance(event, SendOwed | GroupSendOwed):
                await self.submit(event.outgoing)
                continue
            if not isinstance(event, OWED_TO_OWN_DEVICES):
                self.on_event(event)
                continue
            key = isinstance(event, SyncKeyOwed)
            try:
                prepare = (
                    self.messenger.prepare_sync_key
                    if key
                    else self.messenger.prepare_sync_checkpoint
                )
                outgoing = prepare(event.body)
                if outgoing is not None:
                    await self.submit(outgoing)
            except (SendRefused, ProtocolError, ApiError) as error:
                what = "sync key" if key else "sync checkpoint"
                self.on_event(SendFailed(self.messenger.account_id, f"{what} not sent: {error}"))

    async def _on_prekeys_low(self, *, on_connect: bool = False) -> None:
        """The server's pool of this device's one-time prekeys runs low: refill it at once.
        `on_connect`: the KEM prekeys' check on connect, which says something only when it
        uploaded."""
        try:
            uploaded = self.messenger.refill_prekeys(kem_only=on_connect)
        except (ApiError, ServerUnreachable) as error:
            self.on_event(PrekeysRefilled(0, f"one-time prekeys not refilled: {error}"))
            return
        if uploaded or not on_connect:
            self.on_event(PrekeysRefilled(uploaded))

    # ------------------------------------------------------------ sending

    async def submit(self, outgoing: Outgoing) -> asyncio.Future[Any]:
        """Send a prepared message; the future resolves with what was accepted (after any
        mismatched_devices retries) or fails with SendRefused (GroupRefused for a group)."""
        if self.logged_out is not None:
            raise self.logged_out
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        key = outgoing.send_id if isinstance(outgoing, OutgoingGroup) else outgoing.envelope_id
        self.pending[key] = (outgoing, future)
        if self.connected.is_set():
            with contextlib.suppress(ConnectionClosed):  # resent on reconnect
                await self._send_frame(outgoing.frame)
        return future

    async def share_sync_key(self) -> None:
        """This device just linked another (the approving device, docs/protocol.md 22.8):
        send the account's sync key to the own devices, the new one among them."""
        self.messenger.refresh_list(self.messenger.account_id)
        await self.emit(self.messenger.share_sync_key())

    async def send_text(
        self, recipient: str, text: str, *, within: float = 15.0
    ) -> OutgoingMessage:
        future = await self.submit(self.messenger.prepare_send(recipient, text))
        sent: OutgoingMessage = await asyncio.wait_for(future, within)
        self.messenger.keep_sent(sent)
        return sent

    async def send_file(
        self, recipient: str, pointer: AttachmentPointer, *, within: float = 15.0
    ) -> OutgoingMessage:
        """A file uploaded before (client/attachments.py), sent as its pointer."""
        future = await self.submit(self.messenger.prepare_file(recipient, pointer))
        sent: OutgoingMessage = await asyncio.wait_for(future, within)
        self.messenger.keep_sent(sent)
        return sent

    async def send_group_text(
        self, group_id: str, text: str, *, within: float = 15.0
    ) -> OutgoingGroup:
        """A text to a group (docs/protocol.md 25.9): sent once, the server keeps one copy."""
        outgoing, events = self.messenger.prepare_group_send(group_id, text)
        await self.emit(events)
        future = await self.submit(outgoing)
        sent: OutgoingGroup = await asyncio.wait_for(future, within)
        return sent

    async def caught_up(self, *, within: float = 15.0) -> None:
        """Wait until what the server queued for this device before now is processed and
        the account's state read: the server answers a `ping` after the deliveries it sends
        on connect (up to its window of 500), and frames are handled in order."""
        ping_id = secrets.token_urlsafe(8)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[ping_id] = waiter
        await self.connected.wait()
        await self._send_frame({"type": frames.PING, "v": 1, "id": ping_id})
        try:
            await asyncio.wait_for(waiter, within)
        finally:
            self._pongs.pop(ping_id, None)

    async def send_receipts(self, owed: list[ReceiptOwed]) -> None:
        """Send the engine's receipts (read receipts after a read); a failure is told."""
        for receipt in owed:
            for start in range(0, len(receipt.message_ids), MAX_RECEIPT_IDS):
                batch = list(receipt.message_ids[start : start + MAX_RECEIPT_IDS])
                try:
                    await self.submit(
                        self.messenger.prepare_receipt(receipt.peer, batch, kind=receipt.kind)
                    )
                except (SendRefused, ProtocolError, ApiError) as error:
                    self.on_event(
                        SendFailed(receipt.peer, f"{receipt.kind} receipt not sent: {error}")
                    )
