"""The sync machine (protocol/engine/sync.py) against a model of the server's state log
(messaging/services.state_append and selectors.state_page: compare-and-swap on the version,
a snapshot drops what is below it, at most MAX_PATCHES patches after a snapshot, pages of a
few entries), two devices of one account, and every order of the person's changes, answers,
lost answers, reconnects, pages left with a write that reaches the server later, doorbells,
re-keys and key shares hypothesis can find. Whatever the
order, once everything is answered nothing the person changed is lost: both devices end on
the same version with the last writer's value at every index, and nothing left to write."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import sync as machine
from protocol.engine.effects import HttpRequest, ShareSyncCheckpoint, ShareSyncKey, StoreSync
from protocol.engine.events import (
    SyncAnswered,
    SyncCheckpointReceived,
    SyncFetchWanted,
    SyncKeyReceived,
    SyncMutated,
    SyncRotateWanted,
)
from protocol.engine.syncstate import SyncState

MAX_PATCHES = 4  # the server's STATE_MAX_PATCHES, small so that compaction happens often
PAGE_ENTRIES = 3  # and STATE_PAGE_ENTRIES, so that reads take several pages
DEVICES = ("phone", "laptop")
NAMES = ("bob", "carol", "dave")


@dataclass
class Server:
    entries: dict[int, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return max(self.entries, default=0)

    @property
    def snapshot(self) -> int:
        return max((v for v, (kind, _) in self.entries.items() if kind == "snapshot"), default=0)

    def perform(self, request: HttpRequest) -> tuple[int, Any]:
        if request.method == "GET":
            after = int(request.path.rsplit("=", 1)[1])
            start = self.snapshot if self.snapshot > after else after + 1
            listed = [v for v in sorted(self.entries) if v >= start][:PAGE_ENTRIES]
            entries = [{"version": v, "blob": b64u_encode(self.entries[v][1])} for v in listed]
            more = bool(listed) and listed[-1] < self.version
            return 200, {"version": self.version, "entries": entries, "more": more}
        body = request.body
        assert body is not None
        version, kind = body["version"], body["kind"]
        if version != self.version + 1:
            return 409, error("state_version_conflict", version=self.version)
        if kind == "patch" and self.version - self.snapshot >= MAX_PATCHES:
            return 409, error("state_compaction_needed", version=self.version)
        self.entries[version] = (kind, b64u_decode(body["blob"]))
        if kind == "snapshot":
            self.entries = {v: e for v, e in self.entries.items() if v >= version}
        return 201, {"version": version}


def error(code: str, **data: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": code, "data": data}}


@dataclass
class Device:
    state: SyncState
    stored: SyncState  # what the adapter last stored: a page that closes starts from it
    request: HttpRequest | None = None
    inbox: list[Any] = field(default_factory=list)  # key shares and checkpoints to take


class World:
    def __init__(self) -> None:
        self.server = Server()
        self.devices = {}
        for name in DEVICES:
            state = SyncState(account_id="alice", device_id=name)
            self.devices[name] = Device(state, state)
        self.clock = 1_000
        self.counter = 0
        self.written: dict[tuple[str, tuple[str, ...]], Any] = {}  # the last writer's values
        self.late: list[HttpRequest] = []  # sent by a page that was left, not yet at the server

    def seed(self) -> bytes:
        self.counter += 1
        return hashlib.sha256(self.counter.to_bytes(8, "big")).digest()

    def now(self) -> int:
        self.clock += 1
        return self.clock

    def run(self, name: str, event: Any) -> None:
        device = self.devices[name]
        state, effects = machine.handle(device.state, event)
        device.state = SyncState.from_dict(state.to_dict())  # as stored between runs
        assert device.state == state
        for effect in effects:
            if isinstance(effect, StoreSync):
                device.stored = SyncState.from_dict(effect.state.to_dict())
            elif isinstance(effect, HttpRequest):
                assert device.request is None, "two requests in flight"
                device.request = effect
            elif isinstance(effect, (ShareSyncKey, ShareSyncCheckpoint)):
                for other, peer in self.devices.items():
                    if other != name:
                        peer.inbox.append((name, effect))

    def mutate(self, name: str, contact: str, remove: bool) -> None:
        value = None if remove else {"account_key": b64u_encode(bytes(32)), "nickname": name}
        self.written[("contacts", (contact,))] = value
        mutation = ("contacts", (contact,), value)
        self.run(name, SyncMutated((mutation,), self.now(), self.seed()))

    def answer(self, name: str, *, lost: bool = False, performed: bool = True) -> None:
        device = self.devices[name]
        request, device.request = device.request, None
        if request is None:
            return
        status, body = self.server.perform(request) if performed else (0, None)
        if lost or not performed:  # the socket drops: the page or process starts again
            self.run(name, SyncFetchWanted(None, self.now(), self.seed()))
        else:
            self.run(name, SyncAnswered(request.request_id, status, body, self.now(), self.seed()))

    def close(self, name: str, *, performed: bool) -> None:
        """The page closes with a request in flight (sent or not): the next page starts from
        what was stored and reads the log."""
        device = self.devices[name]
        request, device.request = device.request, None
        if request is not None and performed:
            self.server.perform(request)
        device.state = device.stored
        self.run(name, SyncFetchWanted(None, self.now(), self.seed()))

    def leave(self, name: str) -> None:
        """The page is left with a request on its way: the server performs it later (`land`),
        after whatever the next page, which starts from what was stored, asks first."""
        device = self.devices[name]
        request, device.request = device.request, None
        if request is not None:
            self.late.append(request)
        device.state = device.stored
        self.run(name, SyncFetchWanted(None, self.now(), self.seed()))

    def land(self) -> None:
        if self.late:
            self.server.perform(self.late.pop(0))

    def take_inbox(self, name: str) -> None:
        device = self.devices[name]
        items, device.inbox = device.inbox, []
        for sender, effect in items:
            kind = SyncKeyReceived if isinstance(effect, ShareSyncKey) else SyncCheckpointReceived
            self.run(name, kind(sender, effect.body, self.now(), self.seed()))

    def doorbell(self, name: str) -> None:
        self.run(name, SyncFetchWanted(self.server.version, self.now(), self.seed()))

    def quiesce(self) -> None:
        while self.late:
            self.land()
        for _ in range(500):
            busy = False
            for name, device in self.devices.items():
                if device.request is not None:
                    self.answer(name)
                    busy = True
                if device.inbox:
                    self.take_inbox(name)
                    busy = True
            if not busy:
                if all(
                    d.state.account.version == self.server.version for d in self.devices.values()
                ):
                    return
                for name in self.devices:
                    self.doorbell(name)
        raise AssertionError("the devices never settled")


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("mutate"), st.sampled_from(DEVICES), st.sampled_from(NAMES), st.booleans()
        ),
        st.tuples(st.just("answer"), st.sampled_from(DEVICES)),
        st.tuples(st.just("lose"), st.sampled_from(DEVICES)),
        st.tuples(st.just("drop"), st.sampled_from(DEVICES)),
        st.tuples(st.just("close"), st.sampled_from(DEVICES), st.booleans()),
        st.tuples(st.just("leave"), st.sampled_from(DEVICES)),
        st.tuples(st.just("land"), st.just("")),
        st.tuples(st.just("rotate"), st.sampled_from(DEVICES)),
        st.tuples(st.just("doorbell"), st.sampled_from(DEVICES)),
        st.tuples(st.just("inbox"), st.sampled_from(DEVICES)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_no_change_is_lost_whatever_the_order_of_answers_reconnects_and_rekeys(ops):
    world = World()
    world.mutate("phone", "bob", False)  # the phone makes the account's first key
    for op in ops:
        kind, name = op[0], op[1]
        if kind == "mutate":
            world.mutate(name, op[2], op[3])
        elif kind == "answer":
            world.answer(name)
        elif kind == "lose":
            world.answer(name, lost=True)
        elif kind == "drop":
            world.answer(name, performed=False)
        elif kind == "close":
            world.close(name, performed=op[2])
        elif kind == "leave":
            world.leave(name)
        elif kind == "land":
            world.land()
        elif kind == "rotate":
            world.run(name, SyncRotateWanted(world.now(), world.seed()))
        elif kind == "doorbell":
            world.doorbell(name)
        else:
            world.take_inbox(name)
    world.quiesce()
    for name, device in world.devices.items():
        state = device.state
        assert state.refused is None, (name, state.refused)
        assert state.pending == () and state.request is None and not state.rotate, name
        for (collection, index), value in world.written.items():
            assert state.account.get(collection, index) == value, (name, index)
