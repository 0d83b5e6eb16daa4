"""A TCP load balancer in front of the nodes, used as a deployment's proxy is: it asks each
node's `/readyz` every `interval` s (an active health check) and sends each new connection to
the first node of `order` that last answered ready, or, when none did, to the first that
takes the connection. Bytes are copied both ways untouched, so Host, Origin and cookies stay
the client's (docs/operations.md asks the same of a real proxy).

It runs an event loop on a thread of its own: the clients' synchronous HTTP calls made on a
test's event loop would otherwise block the balancer they go through.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

from tests.support.ports import free_port


@dataclass
class Balancer:
    port: int
    order: list[int]  # node ports, the preferred first
    interval: float = 0.1
    ready: dict[int, bool] = field(default_factory=dict)
    routed: list[int] = field(default_factory=list)  # the node of each connection, in order
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _checks: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def prefer(self, port: int) -> None:
        """New connections go to this node first while it is ready."""
        self.order = [port] + [p for p in self.order if p != port]

    def start(self) -> Balancer:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._listen())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="balancer")
        self._thread.start()
        if not started.wait(10):
            raise TimeoutError(f"the balancer did not listen on {self.port}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    async def _close(self) -> None:
        if self._checks is not None:
            self._checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checks
        if self._server is not None:
            self._server.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self._checks = asyncio.get_running_loop().create_task(self._check_forever())

    async def _check_forever(self) -> None:
        while True:
            for port in list(self.order):
                self.ready[port] = await self._ready(port)
            await asyncio.sleep(self.interval)

    async def _ready(self, port: int) -> bool:
        try:
            async with asyncio.timeout(1):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(
                    f"GET /readyz HTTP/1.1\r\nHost: localhost:{self.port}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                status = await reader.readline()
                writer.close()
        except (OSError, TimeoutError):
            return False
        return status.split()[1:2] == [b"200"]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ready = [p for p in self.order if self.ready.get(p)]
        for port in ready + [p for p in self.order if p not in ready]:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            self.routed.append(port)
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            return
        writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side ends; then both are closed (the other pipe sees its end)."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()


def start_balancer(order: list[int], *, port: int | None = None) -> Balancer:
    return Balancer(port=port or free_port(), order=order).start()
