"""A device socket for tests and benchmarks: send envelopes, receive deliveries, ack them.
Frames as in docs/protocol.md section 20; ciphertexts here are opaque test bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import websockets

from protocol.encoding import b64u_encode


@dataclass
class DeviceSocket:
    ws_url: str
    origin: str
    cookie: str
    socket: Any = None
    frames: asyncio.Queue = field(default_factory=asyncio.Queue)
    received: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task | None = None
    auto_ack: bool = True

    async def connect(self) -> DeviceSocket:
        self.socket = await websockets.connect(
            f"{self.ws_url}/ws/device/",
            origin=self.origin,
            additional_headers={"Cookie": self.cookie},
            compression=None,
            max_size=2**21,
        )
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for text in self.socket:
                frame = json.loads(text)
                if frame["type"] == "deliver":
                    self.received.extend(frame["envelopes"])
                    if self.auto_ack:
                        # Closed meanwhile: still read the frames that came before the close.
                        with contextlib.suppress(websockets.ConnectionClosed):
                            await self.socket.send(
                                json.dumps(
                                    {
                                        "type": "ack",
                                        "v": 1,
                                        "seqs": [e["seq"] for e in frame["envelopes"]],
                                    }
                                )
                            )
                await self.frames.put(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            await self.frames.put({"type": "closed", "code": self.socket.close_code})

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.socket.send(json.dumps({"v": 1, **frame}))

    async def send(self, envelope_id: str, recipient: str, targets: dict[str, bytes]) -> None:
        await self.send_frame(
            {
                "type": "send",
                "id": envelope_id,
                "recipient": recipient,
                "targets": {d: b64u_encode(c) for d, c in targets.items()},
            }
        )

    async def next(self, *types: str, within: float = 5.0) -> dict[str, Any]:
        """The next frame of one of `types` (others are skipped), waiting at most `within` s."""
        while True:
            frame = await asyncio.wait_for(self.frames.get(), within)
            if not types or frame["type"] in types:
                return frame

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


def send_envelopes(
    ws_url: str,
    origin: str,
    cookie: str,
    recipient: str,
    sends: list[tuple[str, dict[str, bytes]]],
) -> None:
    """Send each (envelope id, targets) on one device socket, each accepted before the next;
    from synchronous (browser) tests, on a thread of its own."""
    frames = [
        {
            "type": "send",
            "id": envelope_id,
            "recipient": recipient,
            "targets": {d: b64u_encode(c) for d, c in targets.items()},
        }
        for envelope_id, targets in sends
    ]
    send_frames(ws_url, origin, cookie, frames)


def send_frames(ws_url: str, origin: str, cookie: str, frames: list[dict[str, Any]]) -> None:
    """Send each frame (a `send`, a `group_send`) on one device socket, each accepted before
    the next; from synchronous (browser) tests, on a thread of its own."""

    async def run() -> None:
        socket = DeviceSocket(ws_url, origin, cookie)
        await socket.connect()
        try:
            for frame in frames:
                await socket.send_frame(frame)
                answer = await socket.next("accepted", "error")
                assert answer["type"] == "accepted", answer
        finally:
            await socket.close()

    _on_a_thread(run, 30)


def receive_envelopes(
    ws_url: str, origin: str, cookie: str, count: int, *, within: float = 15.0
) -> list[dict[str, Any]]:
    """The first `count` envelopes delivered to a device socket (acked), waiting at most
    `within` seconds; from synchronous (browser) tests, on a thread of its own."""
    received: list[dict[str, Any]] = []

    async def run() -> None:
        socket = DeviceSocket(ws_url, origin, cookie)
        await socket.connect()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + within
            while len(socket.received) < count:
                await socket.next("deliver", within=max(0.01, deadline - loop.time()))
        finally:
            await socket.close()
            received.extend(socket.received)

    _on_a_thread(run, within + 10)
    return received


def _on_a_thread(run: Callable[[], Coroutine[Any, Any, None]], timeout: float) -> None:
    """Run a coroutine on an event loop of its own thread (a synchronous browser test's
    main thread holds Playwright's loop); its failure is raised on the caller's thread."""
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            asyncio.run(run())
        except BaseException as error:  # reported on the caller's thread
            failures.append(error)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout)
    if failures:
        raise failures[0]
