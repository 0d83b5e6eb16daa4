"""The consumer's way into the queue: group commit, batch reads, doorbells.

One writer per event loop: sends and acks that arrive while a transaction is being committed
wait for the next one and share it. There is no timer, so a lone request on an idle server
is committed at once, and batches grow by themselves under load (FIELD-NOTES: group commit
took the durable path from 470 to 1,126 envelopes/s). Nothing is acknowledged before its
commit; doorbells ring only after it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from devices import events, presence
from messaging import queue_db, selectors, services
from messaging.schemas import GroupSendRequest, SendRequest
from web.errors import AppError

logger = logging.getLogger(__name__)


async def batch(*, device_id: str, after_seq: int, limit: int) -> list[selectors.Delivery]:
    return await queue_db.read(
        selectors.queue_batch, device_id=device_id, after_seq=after_seq, limit=limit
    )


async def queued_ids(*, device_id: str, upto_seq: int, limit: int) -> list[int]:
    return await queue_db.read(
        selectors.queued_ids, device_id=device_id, upto_seq=upto_seq, limit=limit
    )


@dataclass
class _Writer:
    sends: list[tuple[services.SendItem, asyncio.Future[Any]]] = field(default_factory=list)
    acks: list[tuple[str, list[int], asyncio.Future[Any]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.sends or self.acks:
            sends, self.sends = self.sends, []
            acks, self.acks = self.acks, []
            try:
                committed = await queue_db.write(
                    services.envelopes_commit,
                    sends=[item for item, _ in sends],
                    acks=[(d, seqs) for d, seqs, _ in acks],
                    process_id=presence.PROCESS_ID,
                )
            except Exception as error:  # the whole transaction failed: nobody is acknowledged
                for future in [f for _, f in sends] + [f for _, _, f in acks]:
                    _settle(future, error=error)
                continue
            for (_, future), result in zip(sends, committed.results, strict=True):
                if isinstance(result, AppError):
                    _settle(future, error=result)
                else:
                    _settle(future, result=result)
            for _, _, future in acks:
                _settle(future, result=None)
            await _ring(committed.inserted, committed.elsewhere)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    """A waiter cancelled meanwhile (its socket closed) is skipped; its rows are committed."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def _ring(inserted: list[tuple[str, services.Delivery]], elsewhere: set[str]) -> None:
    """The doorbell carries the new envelopes themselves, so a connected device that is
    caught up gets them without reading the queue back (it still can: the rows are committed).
    A socket of this process is rung directly; the channel layer (Redis, with several nodes)
    carries only the doorbells of devices with a socket held by another process. A device
    with no socket anywhere gets none: it reads its queue when it connects."""
    per_device: dict[str, list[dict[str, Any]]] = {}
    for device_id, delivery in inserted:
        per_device.setdefault(device_id, []).append(delivery.to_frame())
    here = sweeper().sockets
    layer = get_channel_layer()
    for device_id, envelopes in per_device.items():
        event = {"type": events.QUEUE_READY, "envelopes": envelopes}
        rung = [socket.ring(event) for socket in here.get(device_id, ())]
        if device_id in elsewhere or not all(rung):
            await layer.group_send(events.device_group(device_id), event)


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = (
    weakref.WeakKeyDictionary()
)


def _writer() -> _Writer:
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _Writer()
    return writer


async def accept(*, device_id: str, send: SendRequest | GroupSendRequest) -> list[str]:
    """Store `send` durably (with whatever else is waiting); return its target device ids."""
    writer = _writer()
    future = asyncio.get_running_loop().create_future()
    writer.sends.append((services.SendItem(sender_device_id=device_id, send=send), future))
    writer.kick()
    return await future


async def ack(*, device_id: str, seqs: list[int]) -> None:
    writer = _writer()
    future = asyncio.get_running_loop().create_future()
    writer.acks.append((device_id, seqs, future))
    writer.kick()
    await future


SWEEP_SECONDS = 2.0


def repush_seconds() -> float:
    return settings.PARLEY_REPUSH_SECONDS


@dataclass
class _Sweeper:
    """One task per process instead of a timer per socket: every SWEEP_SECONDS it asks the
    database, in one query, which connected devices have envelopes waiting for longer than
    that, and nudges their sockets (a dropped doorbell costs at most two sweeps; an unacked
    delivery is re-sent after PARLEY_REPUSH_SECONDS). Idle sockets cost no queries.

    While it holds sockets, the process also beats every PARLEY_HEARTBEAT_SECONDS, so the
    cluster knows its socket rows are alive, and reaps the rows of processes that went silent
    (devices/presence.py). The beat carries the sockets that pinged since the last one (a ping
    itself touches no database) and answers which connected devices were logged out: their
    sockets are told and closed, should the push have been lost."""

    sockets: dict[str, set[Any]] = field(default_factory=dict)
    pinged: dict[str, str] = field(default_factory=dict)  # channel name -> device id
    task: asyncio.Task[None] | None = None
    heart: asyncio.Task[None] | None = None

    def register(self, device_id: str, socket: Any) -> None:
        self.sockets.setdefault(device_id, set()).add(socket)
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())
        if self.heart is None or self.heart.done():
            self.heart = loop.create_task(self._beat())

    def unregister(self, device_id: str, socket: Any) -> None:
        self.pinged.pop(socket.channel_name, None)
        sockets = self.sockets.get(device_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.sockets[device_id]

    def seen(self, device_id: str, socket: Any) -> None:
        """The socket pinged: it is written as seen at the next beat."""
        if socket in self.sockets.get(device_id, ()):
            self.pinged[socket.channel_name] = device_id

    async def _run(self) -> None:
        # A failure (the database away, one socket's nudge) is logged and the next sweep
        # tries again: one bad socket must not stop re-pushes for all the others.
        while self.sockets:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                waiting = await queue_db.read(
                    selectors.devices_with_waiting_envelopes,
                    device_ids=list(self.sockets),
                    older_than_seconds=SWEEP_SECONDS,
                )
            except Exception:
                logger.exception("The sweep could not read the queue; retrying.")
                continue
            for device_id in waiting:
                for socket in list(self.sockets.get(device_id, ())):
                    try:
                        await socket.nudge()
                    except Exception:
                        logger.exception("Nudging a socket of device %s failed.", device_id)

    async def _beat(self) -> None:
        while self.sockets:
            await asyncio.sleep(settings.PARLEY_HEARTBEAT_SECONDS)
            pinged, self.pinged = self.pinged, {}
            try:
                logged_out = await presence.process_beat(
                    pinged=pinged, connected=list(self.sockets)
                )
            except Exception:
                logger.exception("The heartbeat could not be written; retrying.")
                for channel, device_id in pinged.items():  # still seen: at the next beat
                    self.pinged.setdefault(channel, device_id)
                continue
            for device_id in logged_out:
                for socket in list(self.sockets.get(device_id, ())):
                    await socket.logged_out()


_sweepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweeper] = (
    weakref.WeakKeyDictionary()
)


def sweeper() -> _Sweeper:
    loop = asyncio.get_running_loop()
    found = _sweepers.get(loop)
    if found is None:
        found = _sweepers[loop] = _Sweeper()
    return found
