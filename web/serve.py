"""The node's server: Daphne, started as `python -m web.serve` with Daphne's own arguments
(`python -m web.serve -b 127.0.0.1 -p 8000 config.asgi:application`).

Every way Parley is served goes through here (`make run`, the tests' servers, the systemd
units of deploy/), so that what a node does when it is stopped is the same everywhere: on
SIGTERM it drains (web/drain.py) for at most PARLEY_DRAIN_SECONDS before Daphne cancels
what is left and exits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from autobahn.twisted.websocket import ConnectionDeny
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet.defer import Deferred

from protocol import frames
from web import drain

logger = logging.getLogger("web.serve")


class NodeServer(Server):
    """Daphne's server with a drain before its shutdown, and the HTTP 503 refusal of a
    socket during the drain."""

    def kill_all_applications(self) -> Deferred[Any]:
        """Daphne's "before shutdown" trigger, which cancels every application at once:
        drain first, then Daphne's own for whatever is left. Twisted waits for the
        Deferred and keeps serving meanwhile (a health check gets its 503 `draining`)."""
        kill = super().kill_all_applications
        drained = Deferred.fromFuture(asyncio.ensure_future(self._drain()))
        return drained.addBoth(lambda _: kill())

    async def _drain(self) -> None:
        seconds = settings.PARLEY_DRAIN_SECONDS
        sockets = len(drain.node.sockets)
        logger.info("Stopping: draining %d sockets (at most %s s).", sockets, seconds)
        try:
            async with asyncio.timeout(seconds):
                await drain.node.drain()
                await self._requests_finished()
        except TimeoutError:
            logger.warning(
                "The drain took longer than PARLEY_DRAIN_SECONDS (%s s); stopping anyway.", seconds
            )
        else:
            logger.info("Drained; stopping.")

    async def _requests_finished(self) -> None:
        """HTTP requests in flight now are answered before Daphne would cancel them."""
        answering = []
        for protocol, details in self.connections.items():
            instance = details.get("application_instance")
            if not isinstance(protocol, WebSocketProtocol) and instance and not instance.done():
                answering.append(instance)
        if answering:
            await asyncio.wait(answering)

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        """The close that tells a socket the node stops (CLOSE_SERVICE_RESTART), which
        Daphne cannot pass on: before accept Daphne refuses with HTTP 403, which proxies and
        clients take as final, so it is refused with 503 (a proxy may retry it on another
        node, the clients back off and reconnect); after accept autobahn's `sendClose` takes
        only 1000 and 3000-4999, so the close frame is sent the way Daphne sends its 1011."""
        if (
            message["type"] == "websocket.close"
            and message.get("code") == frames.CLOSE_SERVICE_RESTART
            and isinstance(protocol, WebSocketProtocol)
            and protocol in self.connections
            and not self.connections[protocol].get("disconnected")
        ):
            if hasattr(protocol, "handshake_deferred"):  # not accepted yet
                protocol.handshake_deferred.errback(
                    ConnectionDeny(code=503, reason="Service Unavailable")
                )
                del protocol.handshake_deferred
                self.protocol_disconnected(protocol)
            else:
                protocol.sendCloseFrame(code=frames.CLOSE_SERVICE_RESTART)
            return
        await super().handle_reply(protocol, message)


class NodeCommandLine(CommandLineInterface):
    server_class = NodeServer


if __name__ == "__main__":
    NodeCommandLine.entrypoint()
