"""The process-local channel layer, the embedded default (docs/architecture.md).

It keeps the contract of Channels' `InMemoryChannelLayer`, which walks every channel and
every group membership on each receive (FIELD-NOTES: 22% of the server's samples at peak,
and throughput down tenfold with 6,000 idle sockets). Here an operation does work only for
the channels it names and for what has come due.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

Message = dict[str, Any]


@dataclass(eq=False)
class _Channel:
    """A channel's messages as (expires at, message), oldest first, and its waiting receivers.

    `scheduled`: the channel has an entry in the layer's `_checks`. Every channel holding
    messages has one, and keeps existing until that check, even when emptied, so a busy
    channel is not rebuilt for every message.
    """

    capacity: int
    messages: deque[tuple[float, Message]] = field(default_factory=deque)
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    scheduled: bool = False

    def wake(self) -> None:
        """Wake the first receiver still waiting; one left by a closed event loop is dropped."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)
                return


class LocalChannelLayer(BaseChannelLayer):  # type: ignore[misc]
    """Channels' in-memory contract for one process, at a cost per operation that does not
    grow with the number of channels, sockets or group memberships.

    FIFO per channel, `capacity` (and `channel_capacity` patterns) enforced with ChannelFull,
    a message `expiry` after which it is never received, memberships that last
    `group_expiry` from their last `group_add`, and a `group_send` that skips full members.
    As in `InMemoryChannelLayer`, a channel that lets a message expire is not being read and
    leaves its groups.

    Expiry is amortized O(1): a channel's messages are in send order, so its expired ones are
    at its head, dropped whenever the channel is touched. Channels and memberships nobody
    touches are found through two queues in time order (`_checks`, `_memberships`), read only
    at their head, so each entry is looked at when it falls due and not before. A channel
    with nothing queued and no receiver is deleted.

    `receive` waits on a future of the running event loop, so the layer serves successive
    loops (tests), one at a time; it is not thread-safe.
    """

    extensions = ["groups", "flush"]

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict[str | re.Pattern[str], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity)
        # The base class stores the patterns as given, which its get_capacity cannot read.
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        self.group_expiry = group_expiry
        self.clock = clock
        self._channels: dict[str, _Channel] = {}
        # (when, name, channel): look at the channel again then. `when` is always the clock
        # plus `expiry`, so appending keeps the queue in time order.
        self._checks: deque[tuple[float, str, _Channel]] = deque()
        self._groups: dict[str, set[str]] = {}  # group -> its channels
        self._groups_of: dict[str, set[str]] = {}  # channel -> its groups
        # (group, channel) -> when it joined, oldest first: a group_add again moves it last.
        self._memberships: OrderedDict[tuple[str, str], float] = OrderedDict()

    async def send(self, channel: str, message: Message) -> None:
        """Queue a copy of `message` on `channel`; ChannelFull if it holds `capacity` already."""
        _require_message(message)
        self.require_valid_channel_name(channel)
        self._push(channel, message, self._reclaim())

    async def receive(self, channel: str) -> Message:
        """The oldest unexpired message on `channel`, waiting for one if there is none.

        Receivers on one channel each get a different message. The message stays queued
        until a receiver takes it, so a receive cancelled after a send woke it loses nothing:
        it hands the wake to the next receiver instead.
        """
        self.require_valid_channel_name(channel)
        while True:
            queue = self._queue(channel, self._reclaim())
            if queue.messages:
                return queue.messages.popleft()[1]
            waiter = asyncio.get_running_loop().create_future()
            queue.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.cancelled():
                    if waiter in queue.waiters:
                        queue.waiters.remove(waiter)
                else:
                    queue.wake()
                self._forget_if_idle(channel, queue)
                raise

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A channel name no other consumer of this layer has."""
        return f"{prefix}.local!{uuid.uuid4().hex}"

    async def group_add(self, group: str, channel: str) -> None:
        """Make `channel` a member of `group` for `group_expiry` seconds from now."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        membership = (group, channel)
        self._memberships[membership] = self._reclaim()
        self._memberships.move_to_end(membership)
        self._groups.setdefault(group, set()).add(channel)
        self._groups_of.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        """Take `channel` out of `group`, if it is in."""
        self.require_valid_channel_name(channel)
        self.require_valid_group_name(group)
        self._reclaim()
        self._leave(group, channel)

    async def group_send(self, group: str, message: Message) -> None:
        """Send `message` to each member of `group`; a member whose channel is full is skipped."""
        _require_message(message)
        self.require_valid_group_name(group)
        now = self._reclaim()
        # A copy: a member whose message expired leaves the group during the loop.
        for channel in list(self._groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                self._push(channel, message, now)

    async def flush(self) -> None:
        """Drop every message and membership; a receive waiting now goes on waiting."""
        self._channels = {name: queue for name, queue in self._channels.items() if queue.waiters}
        for queue in self._channels.values():
            queue.messages.clear()
            queue.scheduled = False
        self._checks.clear()
        self._groups.clear()
        self._groups_of.clear()
        self._memberships.clear()

    async def close(self) -> None:
        """Nothing to release: the layer holds no connection and runs no task."""

    def _reclaim(self) -> float:
        """Handle what has come due, oldest first, and return the time: the channels whose
        check is due (their expired messages dropped, the channel deleted if nothing is left)
        and the memberships older than `group_expiry`."""
        now = self.clock()
        while self._checks and self._checks[0][0] <= now:
            _, name, queue = self._checks.popleft()
            queue.scheduled = False
            self._drop_expired(name, queue, now)
            if queue.messages:
                self._schedule(name, queue, now)
            else:
                self._forget_if_idle(name, queue)
        while self._memberships:
            (group, channel), joined = next(iter(self._memberships.items()))
            if joined + self.group_expiry > now:
                break
            self._leave(group, channel)
        return now

    def _queue(self, name: str, now: float) -> _Channel:
        """The channel `name`, created if new, without its expired messages."""
        queue = self._channels.get(name)
        if queue is None:
            queue = self._channels[name] = _Channel(capacity=self.get_capacity(name))
        else:
            self._drop_expired(name, queue, now)
        return queue

    def _push(self, name: str, message: Message, now: float) -> None:
        queue = self._queue(name, now)
        if len(queue.messages) >= queue.capacity:
            raise ChannelFull(name)
        queue.messages.append((now + self.expiry, deepcopy(message)))
        if not queue.scheduled:
            self._schedule(name, queue, now)
        queue.wake()

    def _schedule(self, name: str, queue: _Channel, now: float) -> None:
        """Look at `queue` again once its newest message may have expired. Each check is paid
        for by a send: the channel is scheduled again only if it got a message since."""
        self._checks.append((now + self.expiry, name, queue))
        queue.scheduled = True

    def _drop_expired(self, name: str, queue: _Channel, now: float) -> None:
        """Drop the expired messages at the head of `queue`; if there were any, nobody reads
        the channel, and it leaves its groups."""
        messages = queue.messages
        if not messages or messages[0][0] > now:
            return
        while messages and messages[0][0] <= now:
            messages.popleft()
        for group in list(self._groups_of.get(name, ())):
            self._leave(group, name)

    def _forget_if_idle(self, name: str, queue: _Channel) -> None:
        """Delete `queue` if it holds nothing, nobody waits on it and no check is due (and a
        flush has not already dropped it)."""
        idle = not (queue.messages or queue.waiters or queue.scheduled)
        if idle and self._channels.get(name) is queue:
            del self._channels[name]

    def _leave(self, group: str, channel: str) -> None:
        if self._memberships.pop((group, channel), None) is not None:
            _discard(self._groups, group, channel)
            _discard(self._groups_of, channel, group)


def _require_message(message: object) -> None:
    # AssertionError, as Channels' layers raise, but raised even under `python -O`.
    if not isinstance(message, dict):
        raise AssertionError("message is not a dict")
    if "__asgi_channel__" in message:
        raise AssertionError("message has the reserved key __asgi_channel__")


def _discard(index: dict[str, set[str]], key: str, member: str) -> None:
    index[key].discard(member)
    if not index[key]:
        del index[key]
