"""The node server's bookkeeping (web/serve.py): Daphne's rules for finished applications and
closed connections, applied only to the connections that changed. Driven in-process through
the calls Daphne's protocols make (`protocol_connected`, `create_application`,
`protocol_disconnected`) and the checker Daphne's reactor calls."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from web.serve import NodeServer


class Protocol:
    """What NodeServer asks of a Daphne protocol: to be told of an application's crash."""

    def __init__(self) -> None:
        self.crashes: list[BaseException] = []

    def handle_exception(self, exception: BaseException) -> None:
        self.crashes.append(exception)


def server_of(application: Any) -> NodeServer:
    server = NodeServer(
        application=application,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        application_close_timeout=10,
    )
    server.connections = {}  # what Daphne's run() starts with
    return server


async def settle() -> None:
    """Let the applications run, and their done callbacks after them."""
    for _ in range(3):
        await asyncio.sleep(0)


async def connect(server: NodeServer) -> Protocol:
    protocol = Protocol()
    server.protocol_connected(protocol)
    server.create_application(protocol, {"type": "websocket"})
    await settle()
    return protocol


async def test_a_closed_connection_whose_application_ended_is_forgotten_and_the_rest_kept():
    stop = asyncio.Event()

    async def application(scope: Any, receive: Any, send: Any) -> None:
        await stop.wait()

    server = server_of(application)
    open_one, closing = await connect(server), await connect(server)
    server.protocol_disconnected(closing)
    server.application_checker()
    assert closing in server.connections  # its application still runs
    stop.set()
    await settle()
    server.application_checker()
    assert closing not in server.connections
    # The open connection's application ended too: reaped, the connection kept until it closes.
    assert "application_instance" not in server.connections[open_one]
    server.protocol_disconnected(open_one)
    server.application_checker()
    assert server.connections == {} and server.changed == set()


async def test_a_crash_is_handed_to_its_open_connection():
    async def application(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("boom")

    server = server_of(application)
    protocol = await connect(server)
    server.application_checker()
    assert [str(e) for e in protocol.crashes] == ["boom"]
    assert "application_instance" not in server.connections[protocol]


async def test_an_application_outliving_its_closed_connection_is_cancelled():
    async def application(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    server = server_of(application)
    protocol = await connect(server)
    server.protocol_disconnected(protocol)
    server.connections[protocol]["disconnected"] = time.time() - 11  # past the close timeout
    server.application_checker()
    await settle()
    server.application_checker()
    assert protocol not in server.connections
