"""WebSocket consumers: authenticate, decode a frame, call a service, encode a reply."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from devices import events, presence
from messaging import delivery
from messaging.schemas import (
    GroupSendRequest,
    SendRequest,
    optional_id,
    parse_ack,
    parse_frame,
    parse_group_send,
    parse_send,
)
from messaging.window import DeliveryWindow
from protocol import frames
from web import drain
from web.errors import AppError, BadFrame, RateLimited, error_frame
from web.ratelimit import TokenBuckets

_send_buckets: TokenBuckets | None = None


def frame(kind: str, **fields: Any) -> dict[str, Any]:
    """A server frame of type `kind` in the current protocol version."""
    return {"type": kind, "v": frames.PROTOCOL_VERSION, **fields}


def send_buckets() -> TokenBuckets:
    """The send budgets of this process, one per device: shared by the device's sockets and
    kept across reconnects, so reconnecting does not buy a fresh burst."""
    global _send_buckets
    rate, burst = settings.PARLEY_SEND_RATE, settings.PARLEY_SEND_BURST
    if _send_buckets is None or (_send_buckets.rate, _send_buckets.burst) != (rate, burst):
        _send_buckets = TokenBuckets(rate=rate, burst=burst)
    return _send_buckets


# What a send raises once the peer has begun closing: Daphne (autobahn) raises Disconnected,
# the ASGI spec asks servers for an OSError.
SOCKET_GONE = (Disconnected, OSError)


class DispatchLine:
    """Channels' `await_many_dispatch` at less cost and memory: the messages of the socket, of
    the channel layer and those rung by this process (`put`: a doorbell), each source's in
    order, handled one at a time. Channels makes a new task and an `asyncio.wait` for every
    message; a queue to merge the sources and a reader task for each cost 4 KiB a socket (an
    `asyncio.Queue` is 3.3 KiB), more than a tenth of an idle socket. Here the socket is
    read by the consumer's own task, the layer by one reader task, rung messages by a task
    that lives only while some wait, and one lock keeps them one at a time. A source that
    raises stops the line, between two messages, as Channels' loop would."""

    def __init__(self, dispatch: Callable[[dict[str, Any]], Awaitable[None]], limit: int = 64):
        self.dispatch = dispatch
        self.limit = limit
        self.lock = asyncio.Lock()
        self.rung: collections.deque[dict[str, Any]] = collections.deque()
        self.ringer: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        self.main: asyncio.Task[Any] | None = None
        self.stopped = False

    async def run(
        self,
        receive: Callable[[], Awaitable[dict[str, Any]]],
        layer_receive: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self.main = asyncio.current_task()
        reader = asyncio.create_task(self._follow(layer_receive)) if layer_receive else None
        try:
            while True:
                message = await receive()
                async with self.lock:
                    await self.dispatch(message)
        except asyncio.CancelledError:
            if self.failure is not None:
                raise self.failure from None
            raise
        finally:
            self.stopped = True  # nothing rung from now on starts a task
            helpers = [t for t in (reader, self.ringer) if t is not None]
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def put(self, message: dict[str, Any]) -> bool:
        """Handle `message` in the line; False when `limit` already wait (dropped once the
        line has stopped: the socket is closing)."""
        if self.stopped:
            return True
        if len(self.rung) >= self.limit:
            return False
        self.rung.append(message)
        if self.ringer is None or self.ringer.done():
            self.ringer = asyncio.create_task(self._ring())
        return True

    async def _follow(self, source: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        try:
            while True:
                message = await source()
                async with self.lock:
                    await self.dispatch(message)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # raised where Channels would: in the consumer's task
            await self._fail(error)

    async def _ring(self) -> None:
        try:
            while self.rung:
                async with self.lock:
                    if self.rung:
                        await self.dispatch(self.rung.popleft())
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            await self._fail(error)

    async def _fail(self, error: BaseException) -> None:
        async with self.lock:  # not in the middle of another message's handler
            if self.failure is None and self.main is not None:
                self.failure = error
                self.main.cancel()


class SocketConsumer(AsyncJsonWebsocketConsumer):
    """A JSON socket that never sends once it is closing: after our close, the peer's close
    or a failed send, every later frame (a doorbell, a device-list change, a revocation, a
    reply finishing late) is dropped instead of raising into the consumer. The guard sits
    on the ASGI send itself, so no send path can go around it. Messages are dispatched by
    a `DispatchLine` instead of Channels' loop (the same contract, less work per frame).

    While the node drains (web/drain.py) a new socket is refused before accept, and an open
    one is told to reconnect, to another node (close code 1012)."""

    closing = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def receive_noting_close() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.closing = True
            return message

        async def send_unless_closing(message: dict[str, Any]) -> None:
            if self.closing and message["type"] in {"websocket.send", "websocket.close"}:
                return
            if message["type"] == "websocket.close":
                self.closing = True
            try:
                await send(message)
            except SOCKET_GONE:
                self.closing = True

        # What Channels' AsyncConsumer.__call__ sets up, then our dispatch loop.
        self.line = DispatchLine(self.dispatch)
        self.scope = scope
        self.base_send = send_unless_closing
        drain.node.opened(self)
        try:
            self.channel_layer = get_channel_layer(self.channel_layer_alias)
            layer_receive = None
            if self.channel_layer is not None:
                self.channel_name = await self.channel_layer.new_channel()
                self.channel_receive = functools.partial(
                    self.channel_layer.receive, self.channel_name
                )
                layer_receive = self.channel_receive
            with contextlib.suppress(StopConsumer):
                await self.line.run(receive_noting_close, layer_receive)
        finally:
            # Channels runs disconnect() only when websocket.disconnect arrives; a handler that
            # raises, or Daphne cancelling the consumer (shutdown, a slow close), ends it
            # without one. What the socket holds is released here, on every way out.
            self.closing = True
            try:
                await self.release()
            finally:
                drain.node.ended(self)

    async def release(self) -> None:
        """What this socket holds outside the process (presence rows), released as it ends."""

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        if drain.node.begun:  # refused before accept: the handshake's HTTP 503 (web/serve.py)
            await self.close(code=frames.CLOSE_SERVICE_RESTART)
            return
        await super().websocket_connect(message)

    def ring(self, event: dict[str, Any]) -> bool:
        """A channel-layer event from this process, handled as if the layer had brought it;
        False when too many are waiting (then the layer carries it, under its capacity)."""
        if self.closing:
            return True
        return self.line.put(event)

    async def reconnect_elsewhere(self) -> None:
        """The node stops: the peer is told to reconnect now, to another node."""
        await self.close(code=frames.CLOSE_SERVICE_RESTART)


class StatusConsumer(SocketConsumer):
    """Public liveness socket: a `ping` goes through the channel layer and comes back as `pong`.

    The round trip through the layer (Redis when configured) is what the status line shows.
    """

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            received = parse_frame(text_data)
            if received.type != frames.PING:
                raise BadFrame(
                    f"Unknown frame type {received.type!r}; this socket takes {frames.PING!r}.",
                    code="unknown_type",
                )
            ping_id = optional_id(received.body)
        except AppError as error:
            await self.send_json(error_frame(error))
            return
        await self.channel_layer.send(
            self.channel_name, {"type": events.STATUS_PONG, "id": ping_id}
        )

    async def status_pong(self, event: dict[str, Any]) -> None:
        await self.send_json(frame(frames.PONG, id=event["id"]))


class DeviceConsumer(SocketConsumer):
    """One socket per signed-in device: sends, deliveries, acks and account notices.

    Frames are in docs/protocol.md ("Wire protocol"). The queue in the database is the truth:
    a `queue.ready` doorbell, a `fetch` frame or the sweeper's nudge all lead to `_drain`,
    which sends unacknowledged rows in order, at most WINDOW in flight. What to send is the
    `DeliveryWindow`'s decision (messaging/window.py); the consumer performs its reads and
    sends, one drain at a time under `drain_lock`.
    """

    device_id: str | None = None
    WINDOW = 500
    BATCH = 100
    MAX_PENDING_SENDS = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sending: set[asyncio.Task[None]] = set()

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels awaits aclose_old_connections() (a thread-pool round trip, ~0.5 ms) before
        # every handler; here every database call goes through database_sync_to_async, which
        # closes stale connections itself, so the handler is called directly (FIELD-NOTES).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        device = await presence.socket_device(self.scope)
        if device is None:
            await self.close(code=frames.CLOSE_UNAUTHENTICATED)
            return
        self.device_id = device.id
        self.groups_joined = [events.device_group(device.id), events.user_group(device.user_id)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        self.window = DeliveryWindow(
            size=self.WINDOW, batch=self.BATCH, last_progress=time.monotonic()
        )
        self.drain_lock = asyncio.Lock()
        await self.accept()
        low = await presence.socket_opened(device_id=device.id, channel_name=self.channel_name)
        delivery.sweeper().register(device.id, self)
        if low is not None:
            await self.prekeys_low(low)
        await self._drain()

    async def release(self) -> None:
        """Presence and the sweeper's hold (the socket row is deleted)."""
        if self.device_id is None:
            return
        delivery.sweeper().unregister(self.device_id, self)
        try:
            await presence.socket_closed(device_id=self.device_id, channel_name=self.channel_name)
        finally:
            for group in self.groups_joined:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        ref = None
        try:
            received = parse_frame(text_data)
            ref = received.body.get("id") if isinstance(received.body.get("id"), str) else None
            handler = self.FRAME_HANDLERS.get(received.type)
            if handler is None:
                raise BadFrame(f"Unknown frame type {received.type!r}.", code="unknown_type")
            await handler(self, received.body)
        except AppError as error:
            await self.send_json(error_frame(error, ref=ref))

    async def _on_ping(self, body: dict[str, Any]) -> None:
        ping_id = optional_id(body)
        delivery.sweeper().seen(self.device_id, self)
        await self.send_json(frame(frames.PONG, id=ping_id))

    async def _on_send(self, body: dict[str, Any]) -> None:
        await self._send(parse_send(body))

    async def _on_group_send(self, body: dict[str, Any]) -> None:
        await self._send(parse_group_send(body))

    async def _send(self, send: SendRequest | GroupSendRequest) -> None:
        # The commit is awaited in a task, so one socket can pipeline many sends into the
        # same group commit; `accepted` still goes out only after its rows are committed.
        if len(self.sending) >= self.MAX_PENDING_SENDS:
            await asyncio.wait(self.sending, return_when=asyncio.FIRST_COMPLETED)
        if drain.node.begun:
            # Not stored, not answered: both clients keep an unanswered send and send it again,
            # same id, on their next socket; an error frame would be a refusal to them.
            # From here to create_task nothing awaits, so reconnect_elsewhere() waits for every
            # send let in.
            return
        if not send_buckets().take(self.device_id):
            raise RateLimited(
                "Too many messages at once; slow down and retry.", data={"retry_after_ms": 1000}
            )
        task = asyncio.create_task(self._accept(send))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _accept(self, send: SendRequest | GroupSendRequest) -> None:
        try:
            await delivery.accept(device_id=self.device_id, send=send)
        except AppError as error:
            await self.send_json(error_frame(error, ref=send.envelope_id))
            return
        await self.send_json(frame(frames.ACCEPTED, id=send.envelope_id))

    async def reconnect_elsewhere(self) -> None:
        """The node stops: every send let in is committed and answered (`accepted`, or its
        error) before the peer is told to reconnect; a later one is left unanswered."""
        if self.sending:
            await asyncio.wait(set(self.sending))
        await super().reconnect_elsewhere()

    async def _on_ack(self, body: dict[str, Any]) -> None:
        seqs = parse_ack(body)
        await delivery.ack(device_id=self.device_id, seqs=seqs)
        if self.window.ack(seqs, now=time.monotonic()):
            await self._drain()

    async def _on_fetch(self, body: dict[str, Any]) -> None:
        await self._drain(restart=True)

    FRAME_HANDLERS = {
        frames.PING: _on_ping,
        frames.SEND: _on_send,
        frames.GROUP_SEND: _on_group_send,
        frames.ACK: _on_ack,
        frames.FETCH: _on_fetch,
    }

    async def _drain(self, *, restart: bool = False) -> None:
        """Send queued rows after the cursor until the window is full or the queue is read."""
        window = self.window
        window.expect_more()
        async with self.drain_lock:
            if restart:
                window.restart()
            while (read := window.next_read()) is not None:
                rows = await delivery.batch(
                    device_id=self.device_id, after_seq=read.after_seq, limit=read.limit
                )
                if not window.record_read(read, [r.seq for r in rows]):
                    return
                await self.send_json(frame(frames.DELIVER, envelopes=[r.to_frame() for r in rows]))

    async def nudge(self) -> None:
        """Called by the sweeper when this device has envelopes waiting for a while: send what
        a dropped doorbell left behind, and re-send deliveries whose ack never came."""
        if self.closing:
            return
        window = self.window
        stalled = window.stalled(now=time.monotonic(), repush_seconds=delivery.repush_seconds())
        probe = window.probe_below()
        below = await delivery.queued_ids(
            device_id=self.device_id, upto_seq=probe.upto_seq, limit=probe.limit
        )
        await self._drain(restart=stalled or window.skipped(below))
        if stalled:
            window.progressed(now=time.monotonic())

    async def logged_out(self) -> None:
        """The heartbeat found this device logged out (its push may have been lost)."""
        await self._revoked("logged_out")

    async def _revoked(self, reason: str) -> None:
        await self.send_json(frame(frames.REVOKED, reason=reason))
        await self.close(code=frames.CLOSE_REVOKED)

    async def queue_ready(self, event: dict[str, Any]) -> None:
        """A doorbell with the new envelopes: forward them as they are when this socket is
        caught up (nothing older unsent, room in the window), else read the queue in order."""
        envelopes = event.get("envelopes") or []
        async with self.drain_lock:
            if self.window.doorbell([e["seq"] for e in envelopes]):
                await self.send_json(frame(frames.DELIVER, envelopes=envelopes))
                return
        await self._drain()

    async def device_revoked(self, event: dict[str, Any]) -> None:
        await self._revoked(event["reason"])

    async def devices_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(
            frame(
                frames.DEVICES_CHANGED,
                reason=event["reason"],
                device_id=event["device_id"],
                device_name=event.get("device_name"),
            )
        )

    async def link_signed(self, event: dict[str, Any]) -> None:
        await self.send_json(frame(frames.LINK_SIGNED, link_id=event["link_id"]))

    async def prekeys_low(self, event: dict[str, Any]) -> None:
        # An older node's event has no kem_remaining: its server knew no KEM prekeys.
        await self.send_json(
            frame(
                frames.PREKEYS_LOW,
                remaining=event["remaining"],
                kem_remaining=event.get("kem_remaining"),
            )
        )

    async def account_renamed(self, event: dict[str, Any]) -> None:
        await self.send_json(frame(frames.ACCOUNT_RENAMED, display_name=event["display_name"]))

    async def state_changed(self, event: dict[str, Any]) -> None:
        """The account's state log moved on; the writing device already knows."""
        if event["device_id"] != self.device_id:
            await self.send_json(frame(frames.STATE_CHANGED, version=event["version"]))

    async def group_changed(self, event: dict[str, Any]) -> None:
        """A group this account is or was in has a new entry; the writing device knows it."""
        if event["device_id"] != self.device_id:
            await self.send_json(
                frame(frames.GROUP_CHANGED, group_id=event["group_id"], seq=event["seq"])
            )


class LinkConsumer(SocketConsumer):
    """The new browser waits here for its link request to change state."""

    async def connect(self) -> None:
        link_id = self.scope["url_route"]["kwargs"]["link_id"]
        state = await presence.link_state_for_browser(self.scope, link_id)
        if state is None:
            await self.close(code=frames.CLOSE_UNAUTHENTICATED)
            return
        self.link_group = events.link_group(link_id)
        await self.channel_layer.group_add(self.link_group, self.channel_name)
        await self.accept()
        await self.send_json(frame(frames.LINK_STATE, state=state))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "link_group"):
            await self.channel_layer.group_discard(self.link_group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send_json(
            error_frame(BadFrame("This socket only sends; use the HTTP API.", code="unknown_type"))
        )

    async def link_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(frame(frames.LINK_STATE, state=event["state"]))
