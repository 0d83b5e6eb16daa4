"""The Python client as an adapter of the sync machine (docs/protocol.md section 22.8): it
feeds events, performs the machine's requests over the transport, keeps the state it is told
to store, and returns what changed and what to send. No sync rule lives here."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from client.api import Transport
from client.driver import AccountFacts
from client.events import ContactChanged, Event, SyncCheckpointOwed, SyncKeyOwed, SyncWarning
from protocol.encoding import b64u_decode
from protocol.engine import (
    HttpRequest,
    Notice,
    ShareSyncCheckpoint,
    ShareSyncKey,
    StoreSync,
    SyncAnswered,
    SyncChanged,
    SyncCheckpointReceived,
    SyncDevicesListed,
    SyncEvent,
    SyncFetchWanted,
    SyncKeyReceived,
    SyncKeyShareWanted,
    SyncMutated,
    SyncRotateWanted,
    SyncState,
    handle_sync,
)
from protocol.exceptions import ProtocolError
from protocol.rng import Rng, system_rng


@dataclass
class SyncRun:
    """What one run left to the caller: the changes to apply, the key bodies and checkpoints
    to send to the other own devices, and the notices (refusals)."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    shares: list[dict[str, Any]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)


class SyncDriver:
    def __init__(
        self,
        transport: Transport,
        state: SyncState,
        *,
        clock: Callable[[], int],
        save: Callable[[SyncState], None] = lambda _state: None,
        rng: Rng = system_rng,
    ) -> None:
        self.transport = transport
        self.state = state
        self.clock = clock
        self.save = save
        self.rng = rng

    def run(self, make: Callable[[bytes], SyncEvent]) -> SyncRun:
        out = SyncRun()
        self.state, effects = handle_sync(self.state, make(self.rng(32)))
        queue = deque(effects)
        while queue:
            effect = queue.popleft()
            if isinstance(effect, StoreSync):
                self.save(effect.state)
            elif isinstance(effect, HttpRequest):
                if effect.method == "GET":
                    status, body = self.transport.get(effect.path)
                else:
                    status, body = self.transport.post(effect.path, dict(effect.body or {}))
                answer = SyncAnswered(effect.request_id, status, body, self.clock(), self.rng(32))
                self.state, more = handle_sync(self.state, answer)
                queue.extendleft(reversed(more))
            elif isinstance(effect, SyncChanged):
                out.changes += [dict(c) for c in effect.changes]
            elif isinstance(effect, ShareSyncKey):
                out.shares.append(dict(effect.body))
            elif isinstance(effect, ShareSyncCheckpoint):
                out.checkpoints.append(dict(effect.body))
            elif isinstance(effect, Notice):
                out.notices.append(effect)
        return out

    def mutate(self, *mutations: tuple[str, tuple[str, ...], dict[str, Any] | None]) -> SyncRun:
        return self.run(lambda seed: SyncMutated(tuple(mutations), self.clock(), seed))

    def fetch(self, version: int | None = None) -> SyncRun:
        return self.run(lambda seed: SyncFetchWanted(version, self.clock(), seed))

    def key_received(self, sender_device: str, body: dict[str, Any]) -> SyncRun:
        return self.run(lambda seed: SyncKeyReceived(sender_device, body, self.clock(), seed))

    def checkpoint_received(self, sender_device: str, body: dict[str, Any]) -> SyncRun:
        return self.run(
            lambda seed: SyncCheckpointReceived(sender_device, body, self.clock(), seed)
        )

    def share_key(self) -> SyncRun:
        return self.run(lambda seed: SyncKeyShareWanted(self.clock(), seed))

    def rotate(self) -> SyncRun:
        return self.run(lambda seed: SyncRotateWanted(self.clock(), seed))

    def devices_listed(self, listed: tuple[str, ...], suspended: tuple[str, ...]) -> SyncRun:
        return self.run(lambda seed: SyncDevicesListed(listed, suspended, self.clock(), seed))


def account_facts(state: SyncState) -> AccountFacts:
    """The contacts, the read-receipts setting and the blocked accounts as the synced state
    holds them (the values as the browser writes them; a contact whose key is no key is left
    out, the setting is on unless an own device turned it off, and an account is blocked
    while its value is `{on: true}`; never the own account)."""
    keys = {}
    for index, value in state.account.collection("contacts").items():
        username = index[0]
        if len(index) != 1 or username == state.account_id or not isinstance(value, dict):
            continue
        try:
            keys[username] = b64u_decode(value.get("account_key"), length=32)
        except (ProtocolError, TypeError):
            continue
    setting = state.account.get("settings", ("read_receipts",))
    on = setting.get("on") if isinstance(setting, dict) else None
    blocked = frozenset(
        index[0]
        for index, value in state.account.collection("blocked").items()
        if len(index) == 1
        and index[0] != state.account_id
        and isinstance(value, dict)
        and value.get("on") is True
    )
    return AccountFacts(keys, on is not False, blocked)


def run_events(run: SyncRun, *, me: str) -> list[Event]:
    """What a run leaves to the person and the connection: each contact another own device
    added or removed, the refusals in plain words (a key still to come from an own device is
    no warning), and the key bodies and checkpoints to send to the other own devices."""
    events: list[Event] = []
    for change in run.changes:
        if change["collection"] != "contacts" or change["index"][0] == me:
            continue
        value = change["value"]
        nickname = value.get("nickname") if isinstance(value, dict) else None
        events.append(
            ContactChanged(
                change["index"][0],
                value is not None,
                nickname if isinstance(nickname, str) else "",
            )
        )
    for notice in run.notices:
        if notice.code != "sync_key_awaited":
            events.append(SyncWarning(notice.code, sync_problem(notice)))
    events += [SyncKeyOwed(body) for body in run.shares]
    events += [SyncCheckpointOwed(body) for body in run.checkpoints]
    return events


def sync_problem(notice: Notice) -> str:
    """One sentence for a sync notice (docs/protocol.md section 22.8)."""
    data = notice.data
    if notice.code == "sync_refused":
        return (
            "refused the server's copy of your account's state, kept the last good one "
            f"({data.get('message')})"
        )
    if notice.code == "sync_key_awaited":
        return (
            "this device has not received the account's sync key yet; open Parley on another "
            "of your devices"
        )
    if notice.code == "sync_unavailable":
        return f"could not read your account's state from the server ({data.get('code')})"
    if notice.code == "sync_write_failed":
        return f"the server did not store a change ({data.get('code')}); it is sent again later"
    return f"{notice.code}: {notice.detail or dict(data)}"
