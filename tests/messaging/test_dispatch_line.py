"""The consumer's dispatch line (messaging/consumers.py `DispatchLine`): the socket's frames,
the channel layer's messages and doorbells rung by this process, each in order, handled one
at a time; a source that fails stops the line with its error, as Channels' loop would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from messaging.consumers import DispatchLine


class Source:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def __call__(self) -> dict[str, Any]:
        item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item


async def test_every_source_in_order_and_one_handler_at_a_time():
    handled: list[str] = []
    running = 0
    all_in = asyncio.Event()

    async def dispatch(message: dict[str, Any]) -> None:
        nonlocal running
        running += 1
        assert running == 1, "two handlers at once"
        await asyncio.sleep(0.001)
        handled.append(message["n"])
        running -= 1
        if len(handled) == 15:
            all_in.set()

    line, socket, layer = DispatchLine(dispatch), Source(), Source()
    task = asyncio.create_task(line.run(socket, layer))
    for n in range(5):
        socket.queue.put_nowait({"n": f"s{n}"})
        layer.queue.put_nowait({"n": f"l{n}"})
        assert line.put({"n": f"r{n}"})
    await asyncio.wait_for(all_in.wait(), 5)
    for prefix in "slr":
        assert [h for h in handled if h[0] == prefix] == [f"{prefix}{n}" for n in range(5)]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_failing_layer_stops_the_line_with_its_error_between_two_handlers():
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def dispatch(message: dict[str, Any]) -> None:
        started.set()
        await release.wait()
        finished.append(message["n"])

    line, socket, layer = DispatchLine(dispatch), Source(), Source()
    task = asyncio.create_task(line.run(socket, layer))
    socket.queue.put_nowait({"n": "slow"})
    await started.wait()
    layer.queue.put_nowait(ConnectionError("layer away"))
    await asyncio.sleep(0.01)
    assert not task.done()  # the handler running now is not cut off
    release.set()
    with pytest.raises(ConnectionError, match="layer away"):
        await task
    assert finished == ["slow"]


async def test_a_full_line_refuses_more_rung_messages():
    gate = asyncio.Event()

    async def dispatch(message: dict[str, Any]) -> None:
        await gate.wait()

    line = DispatchLine(dispatch, limit=2)
    task = asyncio.create_task(line.run(Source()))
    await asyncio.sleep(0)
    assert line.put({"n": 1}) and line.put({"n": 2})
    await asyncio.sleep(0.01)  # the first is being handled, the second waits
    assert line.put({"n": 3})
    assert not line.put({"n": 4})
    gate.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stopped_line_drops_what_is_rung_and_starts_no_task():
    handled: list[Any] = []

    async def dispatch(message: dict[str, Any]) -> None:
        handled.append(message)

    line = DispatchLine(dispatch)
    task = asyncio.create_task(line.run(Source()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert line.put({"n": "late"})  # the socket is closing: taken and dropped
    await asyncio.sleep(0.01)
    assert handled == [] and line.ringer is None
