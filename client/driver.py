"""The Python client as an adapter of protocol.engine (docs/protocol.md section 22): it builds
the engine's state from the store, performs the requests the engine asks for over the
transport, and stores what the engine says to store. No device rule lives here."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from client.api import ApiError, Transport
from client.devicelists import list_record, save_record
from client.store import OwnDevice, Store
from protocol import engine, exceptions
from protocol.engine import (
    DeviceState,
    Effect,
    HttpAnswered,
    HttpRequest,
    Notice,
    PendingSend,
    StoreList,
)
from protocol.exceptions import AccountKeyChanged, ProtocolError

REFUSALS = frozenset({"list_refused", "security_code_changed", "list_unavailable"})


class SecurityCodeChanged(AccountKeyChanged):
    """A contact's account key differs from the one pinned at first use: their security
    code changed (a re-registration, or a server substituting keys). Nothing is sent."""


@dataclass(frozen=True)
class AccountFacts:
    """What the account's synced state tells the engine (docs/protocol.md 22.6, 22.8): the
    contacts (receipts go only to them) with the account key each contact record holds, the
    read-receipts setting, and the accounts the person blocked (their contents are dropped,
    nothing is sent to them)."""

    contact_keys: Mapping[str, bytes] = field(default_factory=dict)
    read_receipts: bool = True
    blocked: frozenset[str] = frozenset()


class EngineDriver:
    def __init__(
        self,
        store: Store,
        transport: Transport,
        device: OwnDevice,
        clock: Callable[[], int],
        facts: Callable[[], AccountFacts] = AccountFacts,
    ) -> None:
        self.store = store
        self.transport = transport
        self.device = device
        self.clock = clock
        self.facts = facts
        self.suspended: dict[str, frozenset[str]] = {}
        self._failures: dict[str, ApiError] = {}

    def state(
        self,
        accounts: Iterable[str],
        sends: Mapping[str, PendingSend] | None = None,
        seen: frozenset[str] = frozenset(),
    ) -> DeviceState:
        """The engine's state from the store; `sends` are the caller's sends in flight."""
        lists = {}
        for account in {self.device.account_id, *accounts}:
            record = list_record(
                self.store, account, suspended=self.suspended.get(account, frozenset())
            )
            if record is not None:
                lists[account] = record
        facts = self.facts()
        return DeviceState(
            account_id=self.device.account_id,
            device_id=self.device.device_id,
            account_key=self.device.account_key,
            lists=lists,
            sends=dict(sends or {}),
            contacts=frozenset(facts.contact_keys),
            contact_keys=dict(facts.contact_keys),
            read_receipts=facts.read_receipts,
            seen=seen,
            blocked=facts.blocked,
            retries=self.store.retries(),
        )

    def run(
        self,
        event: engine.Event,
        *accounts: str,
        sends: Mapping[str, PendingSend] | None = None,
        seen: frozenset[str] = frozenset(),
    ) -> list[Effect]:
        """Handle one event and every answer it leads to; returns the effects left to the
        caller (notices, verdicts, send plans, what to store of a content). `seen`: the
        content ids the store has already applied, of those the event may repeat."""
        state, effects = engine.handle(self.state(accounts, sends, seen), event)
        queue = deque(effects)
        out: list[Effect] = []
        while queue:
            effect = queue.popleft()
            if isinstance(effect, HttpRequest):
                if effect.method == "GET":
                    status, body = self.transport.get(effect.path)
                else:
                    status, body = self.transport.post(effect.path, effect.body or {})
                if status != 200:
                    account = state.pending[effect.request_id].account_id
                    self._failures[account] = ApiError(status, body)
                answer = HttpAnswered(effect.request_id, status, body, self.clock())
                state, more = engine.handle(state, answer)
                queue.extendleft(reversed(more))
            elif isinstance(effect, StoreList):
                self._store(effect)
            else:
                out.append(effect)
        return out

    def _store(self, effect: StoreList) -> None:
        """Keep the record; sessions with devices no longer listed go."""
        save_record(self.store, effect.record)
        self.suspended[effect.account_id] = effect.record.suspended
        listed = {d.device_id for d in effect.record.device_list.devices}
        for device_id in self.store.session_device_ids(effect.account_id):
            if device_id not in listed:
                self.store.delete_session(device_id)

    def error(self, notice: Notice) -> Exception:
        """The exception a refusal notice stands for (what callers of a fetch catch)."""
        if notice.code == "list_unavailable":
            return self._failures.pop(notice.account_id, None) or ApiError(
                int(notice.data.get("status", 0)), {}
            )
        if notice.code == "security_code_changed":
            return SecurityCodeChanged(
                f"{notice.account_id}'s security code changed: their account key is not the "
                "one this device first saw. Nothing was sent; verify it with them."
            )
        kind = getattr(exceptions, str(notice.data.get("error")), ProtocolError)
        return kind(notice.detail)

    def raise_for(self, account_id: str, effects: list[Effect]) -> None:
        for effect in effects:
            if (
                isinstance(effect, Notice)
                and effect.account_id == account_id
                and effect.code in REFUSALS
            ):
                raise self.error(effect)
