"""The node's server: Daphne, started as `python -m web.serve` with Daphne's own arguments
(`python -m web.serve -b 127.0.0.1 -p 8000 config.asgi:application`).

Every way Parley is served goes through here (`make run`, the tests' servers, the systemd
units of deploy/), so that what a node does is the same everywhere. On SIGTERM it drains
(web/drain.py) for at most PARLEY_DRAIN_SECONDS before Daphne cancels what is left and exits.

Three of Daphne's ways cost an idle node CPU in proportion to its sockets (docs/benchmarks.md,
"Idle sockets"), and are changed here:
- Daphne pings a socket that has been silent for `--ping-interval` seconds (20 by default).
  A device already pings every 25 s (docs/protocol.md, `ping`), so Daphne's ping came on top
  of every one of them. The default here is 60 s: a live device is never pinged by the
  server, and a dead peer is still found within 60 + `--ping-timeout` (30) seconds.
- Once a second Daphne copied its whole table of connections to look for finished
  applications and closed connections. The copy's 15,000 tuples outlived the young
  generations, so the collector kept walking the whole heap. Here a connection is looked at
  when it closes or its application finishes, and only then: the same rules, applied to the
  few that changed.
- Every two seconds Daphne walks every connection for the handshake and ping timeouts; here
  every `TIMEOUTS_EVERY_SECONDS`, so a handshake not accepted in time is refused up to that
  much later.

And Daphne writes a streamed HTTP answer as fast as the application yields it, whatever the
client reads: a 25 MB attachment fetched by a slower client sat in Twisted's write buffer
(the server grew by up to the file's size, docs/benchmarks.md). Here the application's next
`send` waits while Twisted asks the answer to pause (its producer API): memory stays at a
chunk or two whatever the file.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from concurrent.futures import CancelledError
from typing import Any

from autobahn.twisted.websocket import ConnectionDeny
from daphne.cli import CommandLineInterface
from daphne.http_protocol import WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from protocol import frames
from web import drain

logger = logging.getLogger("web.serve")
daphne_logger = logging.getLogger("daphne.server")

TIMEOUTS_EVERY_SECONDS = 5.0
PING_INTERVAL_SECONDS = 60


class Backpressure:
    """Twisted's pause and resume of a streamed HTTP answer (an IPushProducer registered on
    the request) as an asyncio event the next body waits for."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()

    def pauseProducing(self) -> None:  # noqa: N802 (Twisted's interface)
        self.writable.clear()

    def resumeProducing(self) -> None:  # noqa: N802
        self.writable.set()

    def stopProducing(self) -> None:  # noqa: N802 (the client went: nothing more is written)
        self.writable.set()


class NodeServer(Server):
    """Daphne's server, doing per-connection bookkeeping only for connections that changed,
    with a drain before its shutdown and the HTTP 503 refusal of a socket during the drain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: set[Any] = set()  # protocols closed or whose application finished
        self.flows: weakref.WeakKeyDictionary[Any, Backpressure] = weakref.WeakKeyDictionary()
        self.timeouts_walked = 0.0

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self.changed.add(protocol)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        queue = super().create_application(protocol, scope)
        instance = self.connections.get(protocol, {}).get("application_instance")
        if instance is not None:
            instance.add_done_callback(lambda _: self.changed.add(protocol))
        return queue

    def application_checker(self) -> None:
        """Daphne's rules, for the connections that changed: kill an application that outlives
        its closed connection by `application_close_timeout`, log one that crashed, and forget
        a connection once it is closed and its application done."""
        for protocol in list(self.changed):
            details = self.connections.get(protocol)
            if details is None:
                self.changed.discard(protocol)
                continue
            disconnected = details.get("disconnected")
            instance = details.get("application_instance")
            if (
                disconnected
                and instance
                and not instance.done()
                and time.time() - disconnected > self.application_close_timeout
            ):
                daphne_logger.warning(
                    "Application instance %r for connection %s took too long to shut down and was killed.",
                    instance,
                    repr(protocol),
                )
                instance.cancel()
            if instance and instance.done():
                self._reap(protocol, instance, disconnected)
                del details["application_instance"]
                instance = None
            if instance is None and disconnected:
                del self.connections[protocol]
            if instance is None or not disconnected:
                # Done with it, or nothing to do until it closes (then it is back here).
                self.changed.discard(protocol)
        reactor.callLater(1, self.application_checker)

    def _reap(self, protocol: Any, instance: asyncio.Future[Any], disconnected: Any) -> None:
        try:
            exception = instance.exception()
        except (CancelledError, asyncio.CancelledError):
            return
        if isinstance(exception, KeyboardInterrupt):
            self.stop()  # the application asks the server to exit
        elif exception:
            daphne_logger.error("Exception inside application: %s", exception, exc_info=exception)
            if not disconnected and getattr(protocol, "_response_started", False):
                # a streamed answer cut by its application (an attachment piece gone short):
                # Daphne would try a 500 after the headers, fail, and leave the client waiting
                # for bytes that never come; closing says it was cut
                protocol.transport.abortConnection()
            elif not disconnected:
                protocol.handle_exception(exception)

    def timeout_checker(self) -> None:
        now = time.monotonic()
        if now - self.timeouts_walked >= TIMEOUTS_EVERY_SECONDS:
            self.timeouts_walked = now
            super().timeout_checker()  # schedules the next call itself, 2 s on
        else:
            reactor.callLater(1, self.timeout_checker)

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
        if message["type"] == "http.response.body" and isinstance(protocol, WebRequest):
            await self._body(protocol, message)
            return
        await super().handle_reply(protocol, message)

    async def _body(self, protocol: WebRequest, message: dict[str, Any]) -> None:
        """A part of an HTTP answer; while Twisted holds more than its buffer, the next waits."""
        more = message.get("more_body", False)
        flow = self.flows.get(protocol)
        if flow is None and more and not protocol.finished:
            flow = self.flows[protocol] = Backpressure()
            protocol.registerProducer(flow, True)
        if flow is not None and not more:
            del self.flows[protocol]
            if protocol.channel is not None:  # not gone with a client that left
                protocol.unregisterProducer()
        await super().handle_reply(protocol, message)
        if flow is not None and more:
            await flow.writable.wait()


class NodeCommandLine(CommandLineInterface):
    server_class = NodeServer

    def __init__(self) -> None:
        super().__init__()
        self.parser.set_defaults(ping_interval=PING_INTERVAL_SECONDS)


if __name__ == "__main__":
    NodeCommandLine.entrypoint()
