"""Messaging devices for tests: the client's Messenger and DeviceConnection for a primary
(PrimaryActor, software passkey) or a companion linked in-process, each with its own store
file, talking to the live server over real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from client.connection import ConnectionEvent, DeviceConnection
from client.http import HttpTransport
from client.messenger import Messenger
from client.store import OwnDevice, Store, now_ms
from protocol.content import ContentType, encode_content, new_content
from protocol.rng import system_rng
from tests.support.actors import CompanionActor, PrimaryActor, link
from tests.support.rewriting import FrameRewrite, RewritingConnection


def primary_store(primary: PrimaryActor, path: Path) -> Store:
    """A client store holding the PrimaryActor's keys and its own verified list."""
    store = Store.open(path)
    store.save_device(
        OwnDevice(
            device_id=primary.device_id,
            name="Phone",
            server=primary.transport.origin,
            account_id=primary.username,
            account_key=primary.keys.identity.public,
            keys=primary.keys,
            linked_at=now_ms(),
        )
    )
    store.save_device_list(primary.last_list)
    return store


def primary_messenger(primary: PrimaryActor, directory: Path) -> Messenger:
    store = primary_store(primary, directory / f"{primary.username}-primary.sqlite3")
    return Messenger(store, primary.transport)


def companion_messenger(
    primary: PrimaryActor, directory: Path, *, name: str = "Laptop"
) -> Messenger:
    """Link a new device to the primary's account (the whole two-phase link) and give it a store."""
    origin = primary.transport.origin
    companion = link(primary, CompanionActor(HttpTransport(origin), name=name), name=name)
    store = Store.open(directory / f"{primary.username}-{companion.device_id}.sqlite3")
    store.save_device(companion.link.own_device(server=origin))
    store.save_device_list(primary.last_list)
    store.save_server_cookies(companion.transport.export_cookies())
    return Messenger(store, companion.transport)


@dataclass
class Device:
    """A Messenger with an open DeviceConnection whose events land in `events`."""

    messenger: Messenger
    connection: DeviceConnection | None = None
    events: list[ConnectionEvent] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def device_id(self) -> str:
        return self.messenger.device.device_id

    def _on_event(self, event: ConnectionEvent) -> None:
        self.events.append(event)
        self.arrived.set()

    async def connect(self, *, rewrite: FrameRewrite | None = None, **options: Any) -> Device:
        """Open the device socket; with `rewrite`, a misbehaving server's
        (tests.support.rewriting.RewritingConnection)."""
        transport = self.messenger.transport
        assert isinstance(transport, HttpTransport)
        if rewrite is None:
            self.connection = DeviceConnection(
                self.messenger, transport, on_event=self._on_event, **options
            )
        else:
            self.connection = RewritingConnection(
                self.messenger, transport, on_event=self._on_event, rewrite=rewrite, **options
            )
        await self.connection.start()
        return self

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, kind: type, count: int = 1, *, within: float = 10.0) -> list[Any]:
        """The first `count` events of `kind`, waiting at most `within` seconds for them."""
        deadline = time.monotonic() + within
        while len(self.of(kind)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.device_id}: expected {count} {kind.__name__}, got {self.events}"
                )
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.of(kind)[:count]


T = TypeVar("T")


class DeviceThread:
    """Python devices for a synchronous (browser) test, on an event loop of a thread of their
    own: the test's main thread holds Playwright's loop, and a device's store is used on the
    thread that opened it, so each device is made, connected, asked and closed here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.devices: list[Device] = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="devices")
        self.thread.start()

    def run(self, step: Coroutine[Any, Any, T], *, within: float = 30.0) -> T:
        """Await `step` on the devices' loop; its result, or its failure, on the caller's."""
        return asyncio.run_coroutine_threadsafe(step, self.loop).result(within)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call `function` (a messenger's, a store's) on the devices' thread."""

        async def step() -> T:
            return function(*args, **kwargs)

        return self.run(step())

    def connect(self, make: Callable[[], Messenger], **options: Any) -> Device:
        """A device of the messenger `make()` opens on this thread, its socket open."""

        async def step() -> Device:
            return await Device(make()).connect(**options)

        device = self.run(step())
        self.devices.append(device)
        return device

    def close(self) -> None:
        for device in self.devices:
            self.run(device.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def stamped_content(
    messenger: Messenger, content_type: ContentType, body: dict[str, Any], *, type_byte: int = 0
) -> bytes:
    """An encoded content of `messenger`'s, stamped with its own list as a real send would
    be, for a test to encrypt on a session itself; `type_byte` puts another type byte in
    (a type of a newer version)."""
    own = messenger.store.device_list(messenger.account_id)
    assert own is not None
    encoded = encode_content(
        new_content(
            content_type,
            body,
            timestamp=now_ms(),
            sender_list_version=own.version,
            sender_list_hash=own.hash,
            rng=system_rng,
        )
    )
    return encoded[:1] + bytes([type_byte]) + encoded[2:] if type_byte else encoded
