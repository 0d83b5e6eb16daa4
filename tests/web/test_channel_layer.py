"""The process-local channel layer (web/channel_layer.py): Channels' in-memory contract, with
idle channels and old memberships reclaimed as they fall due, never by a walk of everything.
Time is the layer's injected clock, so nothing here waits for expiry."""

from __future__ import annotations

import asyncio
import re

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from web.channel_layer import LocalChannelLayer

M = {"type": "chat.message"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def layer(clock: Clock) -> LocalChannelLayer:
    return LocalChannelLayer(clock=clock)


async def waiting(layer: LocalChannelLayer, channel: str) -> asyncio.Task:
    """A receive on `channel`, started and waiting."""
    task = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)
    assert not task.done()
    return task


async def room(layer: LocalChannelLayer, channel: str) -> int:
    """How many sends `channel` takes before ChannelFull."""
    for sent in range(20):
        try:
            await layer.send(channel, M)
        except ChannelFull:
            return sent
    raise AssertionError(f"{channel} took 20 messages")


async def test_messages_come_out_in_the_order_sent(layer):
    for n in range(5):
        await layer.send("chat", {"type": "m", "n": n})
    assert [(await layer.receive("chat"))["n"] for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_the_receiver_gets_the_message_as_sent_not_as_changed_after(layer):
    message = {"type": "m", "rows": [1]}
    await layer.send("chat", message)
    message["rows"].append(2)
    assert await layer.receive("chat") == {"type": "m", "rows": [1]}


async def test_a_waiting_receive_gets_the_next_message(layer):
    task = await waiting(layer, "chat")
    await layer.send("chat", M)
    assert await task == M


async def test_a_waiting_receive_sets_no_timer(layer):
    task = await waiting(layer, "chat")
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()
    assert asyncio.get_running_loop()._scheduled == []  # no polling: only a future waits
    task.cancel()


async def test_a_full_channel_refuses_with_channel_full_until_it_is_read():
    layer = LocalChannelLayer(capacity=2)
    assert await room(layer, "chat") == 2
    await layer.receive("chat")
    assert await room(layer, "chat") == 1


async def test_capacity_patterns_set_each_channels_capacity_first_match_first():
    layer = LocalChannelLayer(
        capacity=3, channel_capacity={"small.*": 1, re.compile(r"^s"): 5, "big.*": 7}
    )
    assert [await room(layer, c) for c in ("small.a", "sorted", "big.b", "other")] == [1, 5, 7, 3]


async def test_a_message_is_never_received_once_expired(layer, clock):
    await layer.send("chat", {"type": "m", "n": "old"})
    clock.now += 59
    await layer.send("chat", {"type": "m", "n": "newer"})
    clock.now += 1
    assert (await layer.receive("chat"))["n"] == "newer"


async def test_expired_messages_give_back_their_room(clock):
    layer = LocalChannelLayer(capacity=1, clock=clock)
    assert await room(layer, "chat") == 1
    clock.now += layer.expiry
    assert await room(layer, "chat") == 1


async def test_group_send_reaches_every_member_and_no_discarded_one(layer):
    for channel in ("a", "b", "c"):
        await layer.group_add("room", channel)
    await layer.group_discard("room", "b")
    await layer.group_send("room", M)
    await layer.send("b", {"type": "marker"})
    assert [await layer.receive(c) for c in ("a", "b", "c")] == [M, {"type": "marker"}, M]


async def test_group_send_skips_a_full_member_and_reaches_the_others():
    layer = LocalChannelLayer(capacity=1)
    await layer.send("full", {"type": "before"})
    await layer.group_add("room", "full")
    await layer.group_add("room", "open")
    await layer.group_send("room", M)
    assert await layer.receive("open") == M
    assert await layer.receive("full") == {"type": "before"}
    await layer.send("full", {"type": "marker"})
    assert await layer.receive("full") == {"type": "marker"}


async def test_a_membership_lasts_group_expiry_from_its_last_add(clock):
    layer = LocalChannelLayer(group_expiry=100, clock=clock)
    await layer.group_add("room", "again")
    clock.now += 10
    await layer.group_add("room", "once")
    clock.now += 40
    await layer.group_add("room", "again")
    clock.now += 60
    await layer.group_send("room", {"type": "m", "n": "110 s"})
    clock.now += 40
    await layer.group_send("room", {"type": "m", "n": "150 s"})
    for channel in ("again", "once"):
        await layer.send(channel, {"type": "m", "n": "marker"})
    assert [(await layer.receive("again"))["n"] for _ in range(2)] == ["110 s", "marker"]
    assert (await layer.receive("once"))["n"] == "marker"


async def test_a_channel_that_lets_a_message_expire_leaves_its_groups(layer, clock):
    await layer.group_add("room", "gone")
    await layer.group_send("room", {"type": "m", "n": "unread"})
    clock.now += layer.expiry
    await layer.group_send("room", {"type": "m", "n": "after"})
    await layer.send("gone", {"type": "m", "n": "marker"})
    assert (await layer.receive("gone"))["n"] == "marker"


async def test_flush_drops_messages_and_groups_but_a_waiting_receive_goes_on(layer):
    await layer.send("queued", {"type": "m", "n": "flushed"})
    await layer.group_add("room", "member")
    task = await waiting(layer, "waiter")
    await layer.flush()
    await layer.group_send("room", M)
    await layer.send("queued", {"type": "m", "n": "after"})
    await layer.send("member", {"type": "m", "n": "marker"})
    await layer.send("waiter", {"type": "m", "n": "woken"})
    assert (await layer.receive("queued"))["n"] == "after"
    assert (await layer.receive("member"))["n"] == "marker"
    assert (await asyncio.wait_for(task, 5))["n"] == "woken"  # the 5 s only stops a hang


async def test_a_receive_cancelled_while_waiting_leaves_nothing_behind(layer):
    task = await waiting(layer, "chat")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert layer._channels == {}
    await layer.send("chat", M)
    assert await layer.receive("chat") == M


async def test_a_receive_cancelled_after_a_send_woke_it_loses_no_message(layer):
    task = await waiting(layer, "chat")
    await layer.send("chat", M)  # wakes the receive; it has not run since
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await layer.receive("chat") == M


async def test_a_woken_receive_that_is_cancelled_passes_the_message_to_the_next(layer):
    first = await waiting(layer, "chat")
    second = await waiting(layer, "chat")
    await layer.send("chat", M)  # wakes the first in line
    first.cancel()
    assert await asyncio.wait_for(second, 5) == M  # the 5 s only stops a hang
    assert first.cancelled()


async def test_two_receivers_on_one_channel_each_get_one_message(layer):
    receivers = [await waiting(layer, "chat") for _ in range(2)]
    await layer.send("chat", {"type": "m", "n": 1})
    await layer.send("chat", {"type": "m", "n": 2})
    received = await asyncio.wait_for(asyncio.gather(*receivers), 5)
    assert sorted(m["n"] for m in received) == [1, 2]


async def test_new_channel_names_are_valid_distinct_and_start_with_the_prefix(layer):
    names = {await layer.new_channel("socket.") for _ in range(100)}
    assert len(names) == 100
    assert all(name.startswith("socket.") for name in names)
    name = names.pop()
    await layer.send(name, M)
    assert await layer.receive(name) == M


BAD_CALLS = [
    ("send", ("no spaces", M), TypeError),
    ("send", ("x" * 100, M), TypeError),
    ("send", ("chat", "not a dict"), AssertionError),
    ("send", ("chat", {"__asgi_channel__": "chat"}), AssertionError),
    ("receive", ("no spaces",), TypeError),
    ("group_add", ("room!", "chat"), TypeError),
    ("group_add", ("room", "no spaces"), TypeError),
    ("group_discard", ("no spaces", "chat"), TypeError),
    ("group_send", ("no spaces", M), TypeError),
    ("group_send", ("room", ["not a dict"]), AssertionError),
]


@pytest.mark.parametrize(("method", "args", "error"), BAD_CALLS)
async def test_a_bad_call_is_refused_as_channels_refuses_it(method, args, error):
    for layer in (InMemoryChannelLayer(), LocalChannelLayer()):
        with pytest.raises(error):
            await getattr(layer, method)(*args)


def test_a_second_event_loop_receives_after_the_first_closed():
    layer = LocalChannelLayer()
    first = asyncio.new_event_loop()
    left_waiting = first.create_task(layer.receive("chat"))
    first.run_until_complete(asyncio.sleep(0))
    first.close()

    async def receive_in_the_second_loop() -> dict:
        task = await waiting(layer, "chat")
        await layer.send("chat", M)
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(receive_in_the_second_loop()) == M
    assert not left_waiting.done()


async def test_channels_nobody_reads_any_more_are_deleted_by_later_operations(layer, clock):
    for n in range(100):
        await layer.send(f"gone.{n}", M)
    await layer.send("read", M)
    await layer.receive("read")
    clock.now += layer.expiry / 2
    await layer.send("gone.0", M)  # outlives the channel's first check
    assert len(layer._channels) == 101
    clock.now += layer.expiry / 2
    await layer.send("live", M)
    assert set(layer._channels) == {"gone.0", "live"}
    clock.now += layer.expiry
    await layer.send("live", M)
    assert set(layer._channels) == {"live"}
    assert len(layer._checks) == 1


async def test_expired_memberships_are_reclaimed_by_later_operations(clock):
    layer = LocalChannelLayer(group_expiry=100, clock=clock)
    for n in range(100):
        await layer.group_add(f"room.{n}", f"member.{n}")
    clock.now += 100
    await layer.group_add("room", "member")
    assert layer._groups == {"room": {"member"}}
    assert layer._groups_of == {"member": {"room"}}
    assert list(layer._memberships) == [("room", "member")]


async def test_an_operation_looks_only_at_its_channel_and_those_due(layer, clock, monkeypatch):
    for n in range(100):
        await layer.send(f"early.{n}", M)
    clock.now += layer.expiry / 2
    for n in range(100):
        await layer.send(f"late.{n}", M)
    looked_at: list[str] = []
    drop_expired = layer._drop_expired

    def counted(name, queue, now):
        looked_at.append(name)
        drop_expired(name, queue, now)

    monkeypatch.setattr(layer, "_drop_expired", counted)
    await layer.send("late.0", M)
    assert looked_at == ["late.0"]
    looked_at.clear()
    clock.now += layer.expiry / 2
    await layer.send("late.0", M)
    assert sorted(looked_at) == sorted([f"early.{n}" for n in range(100)] + ["late.0"])
