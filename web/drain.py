"""The drain of this node (docs/operations.md, "Stopping a node"), begun when it is told to
stop (SIGTERM, web/serve.py): from that moment readiness answers `draining`, a new socket is
refused at the handshake and a device socket stores no new `send`; every open socket then
finishes what it already read and is told to reconnect (close code 1012), to another node.

One per process, like the event loop it runs on: the sockets register here as they open.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)


class DrainableSocket(Protocol):
    async def reconnect_elsewhere(self) -> None:
        """Finish what was read, then close with CLOSE_SERVICE_RESTART."""


@dataclass(eq=False)
class NodeDrain:
    begun: bool = False
    # each open socket -> resolved when its consumer has ended (its socket rows released)
    sockets: dict[DrainableSocket, asyncio.Future[None]] = field(default_factory=dict)

    def opened(self, socket: DrainableSocket) -> None:
        self.sockets[socket] = asyncio.get_running_loop().create_future()

    def ended(self, socket: DrainableSocket) -> None:
        ended = self.sockets.pop(socket, None)
        if ended is not None and not ended.done():
            ended.set_result(None)

    async def drain(self) -> None:
        """Begin the drain, and return once every socket open now has drained and ended.
        `begun` is set before the first await: nothing that runs after this call started
        sees the node as ready."""
        self.begun = True
        await asyncio.gather(*(self._drain(s, e) for s, e in list(self.sockets.items())))

    async def _drain(self, socket: DrainableSocket, ended: asyncio.Future[None]) -> None:
        try:
            await socket.reconnect_elsewhere()
        except Exception:  # one socket must not keep the others from being told
            logger.exception("Draining a socket failed; it is closed with the node.")
            return
        await ended


node = NodeDrain()
