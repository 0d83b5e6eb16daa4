"""The node's server: Daphne, started as `python -m web.serve` with Daphne's own arguments
(`python -m web.serve -b 127.0.0.1 -p 8000 config.asgi:application`).

Every way Parley is served goes through here (`make run`, the tests' servers, the systemd
units of deploy/), so that what a node does is the same everywhere.

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
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import CancelledError
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import reactor

logger = logging.getLogger("daphne.server")

TIMEOUTS_EVERY_SECONDS = 5.0
PING_INTERVAL_SECONDS = 60


class NodeServer(Server):
    """Daphne's server, doing per-connection bookkeeping only for connections that changed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: set[Any] = set()  # protocols closed or whose application finished
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
                logger.warning(
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
            logger.error("Exception inside application: %s", exception, exc_info=exception)
            if not disconnected:
                protocol.handle_exception(exception)

    def timeout_checker(self) -> None:
        now = time.monotonic()
        if now - self.timeouts_walked >= TIMEOUTS_EVERY_SECONDS:
            self.timeouts_walked = now
            super().timeout_checker()  # schedules the next call itself, 2 s on
        else:
            reactor.callLater(1, self.timeout_checker)


class NodeCommandLine(CommandLineInterface):
    server_class = NodeServer

    def __init__(self) -> None:
        super().__init__()
        self.parser.set_defaults(ping_interval=PING_INTERVAL_SECONDS)


if __name__ == "__main__":
    NodeCommandLine.entrypoint()
