"""One device of this client: its store, keys, engine driver and sync driver, the verified
device lists it encrypts to, and its pool of one-time prekeys on the server. Sending (client.sending) and
receiving (client.receiving) build on it; client.messenger puts them together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client import api
from client.api import Transport
from client.driver import EngineDriver
from client.events import Event, ReadElsewhere
from client.linking import ONE_TIME_PREKEYS
from client.store import AcceptedList, OwnDevice, Store, now_ms
from client.sync import SyncDriver, SyncRun, account_facts, run_events
from protocol.encoding import b64u_encode
from protocol.engine import ListWanted, SyncState, read_state
from protocol.keys import plan_kem_refill
from protocol.rng import Rng, system_rng

KEM_PREKEYS = 50  # one-time KEM prekeys on the server (docs/protocol.md 27.6)


class Device:
    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        rng: Rng = system_rng,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        device = store.device()
        if device is None:
            raise ValueError(f"{store.path} holds no device")
        self.store = store
        self.device: OwnDevice = device
        self.rng = rng
        self.clock = clock
        self._device_names: dict[str, str] = {}
        synced = store.sync_state() or SyncState(device.account_id, device.device_id)
        self.sync = SyncDriver(
            transport, synced, clock=lambda: self.clock(), save=store.save_sync_state, rng=rng
        )
        # the engine decides with the contacts and the setting of the synced state
        self.engine = EngineDriver(
            store,
            transport,
            device,
            lambda: self.clock(),
            facts=lambda: account_facts(self.sync.state),
        )

    @property
    def account_id(self) -> str:
        return self.device.account_id

    @property
    def transport(self) -> Transport:
        return self.engine.transport

    @transport.setter
    def transport(self, transport: Transport) -> None:
        self.engine.transport = transport
        self.sync.transport = transport

    @property
    def suspended(self) -> dict[str, frozenset[str]]:
        return self.engine.suspended

    # ------------------------------------------------------------ own devices

    def own_devices(self) -> list[dict[str, Any]]:
        """This account's devices as the server lists them (GET /api/devices): names any own
        device may change, which of them is the primary and which this one."""
        answer = api.get(self.transport, "/api/devices")
        devices = answer.get("devices") if isinstance(answer, dict) else None
        found = [d for d in devices or () if isinstance(d, dict)]
        self._device_names = {
            str(d.get("device_id")): d["name"] for d in found if isinstance(d.get("name"), str)
        }
        return found

    def device_name(self, device_id: str) -> str | None:
        """An own device's name as the server has it (asked once, and again for a device
        not known yet or after `forget_device_names`); None when it cannot be had."""
        if device_id not in self._device_names:
            try:
                self.own_devices()
            except (api.ApiError, api.ServerUnreachable):
                return None
            self._device_names.setdefault(device_id, "")
        return self._device_names[device_id] or None

    def forget_device_names(self) -> None:
        """A device was renamed, linked or removed: ask the server again when one is shown."""
        self._device_names = {}

    # ------------------------------------------------------------ synced state

    def synced_events(self, run: SyncRun) -> list[Event]:
        """What a run of the sync machine changed, applied here and told: a read position
        another own device wrote marks the texts it covers read on this device too (the
        engine's read_state), as the browser does."""
        events: list[Event] = []
        for change in run.changes:
            if change["collection"] != "conversations" or len(change["index"]) != 1:
                continue
            peer = change["index"][0]
            covered = read_state(self.store.messages(peer), change["value"])["read"]
            count = self.store.mark_read(peer, covered) if covered else 0
            if count:
                events.append(ReadElsewhere(peer, count))
        return events + run_events(run, me=self.account_id)

    # ------------------------------------------------------------ device lists

    def refresh_list(self, account_id: str) -> AcceptedList:
        """Fetch and verify an account's list (the engine's rules: the own one under the own
        account key, a contact's under the key pinned at first use)."""
        return self.current_list(account_id, refresh=True)

    def current_list(self, account_id: str, *, refresh: bool = False) -> AcceptedList:
        """The accepted list, fetched first when missing, stale or `refresh`; a refusal raises."""
        effects = self.engine.run(ListWanted(account_id, self.clock(), refresh), account_id)
        self.engine.raise_for(account_id, effects)
        accepted = self.store.device_list(account_id)
        assert accepted is not None  # stored by the run, or fresh in the cache
        return accepted

    # ------------------------------------------------------------ prekeys

    def refill_prekeys(self, *, kem_only: bool = False) -> int:
        """Top the server's pool of one-time prekeys back up to ONE_TIME_PREKEYS (the server
        says `prekeys_low`), and its KEM prekeys as the protocol plans it (a last-resort one,
        and the one-time pool back up to KEM_PREKEYS, docs/protocol.md 27.1); the private
        halves are kept before the public ones go out. `kem_only`: the check on connect,
        which a device from before KEM prekeys needs to publish them (the server sends it
        no `prekeys_low` for a pool it never had). Returns how many were uploaded."""
        answer = api.get(self.transport, "/api/prekeys")
        if not isinstance(answer, dict):
            return 0
        uploaded = 0
        count = answer.get("one_time_prekeys")
        if not kem_only and isinstance(count, int) and count < ONE_TIME_PREKEYS:
            fresh = self.store.new_one_time_prekeys(ONE_TIME_PREKEYS - count, self.rng)
            api.post(
                self.transport,
                "/api/prekeys",
                {
                    "one_time_prekeys": [
                        {"id": k.id, "public_key": b64u_encode(k.key.public)} for k in fresh
                    ]
                },
            )
            uploaded += len(fresh)
        stored, last = answer.get("kem_prekeys"), answer.get("last_resort_kem_prekey")
        if isinstance(stored, int) and (last is None or isinstance(last, int)):
            plan = plan_kem_refill(
                self.store.device_keys(self.device.keys.identity),
                stored=stored,
                last_resort_stored=last,
                next_id=self.store.next_kem_prekey_id(),
                target=KEM_PREKEYS,
                rng=self.rng,
            )
            if plan is not None:
                self.store.save_kem_refill(plan)
                for body in plan.uploads:
                    api.post(self.transport, "/api/prekeys", body)
                    uploaded += len(body["kem_prekeys"]) + ("last_resort_kem_prekey" in body)
        return uploaded
