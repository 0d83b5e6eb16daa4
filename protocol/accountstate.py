"""The synced account state as a value, and how log entries change it (docs/protocol.md
section 23): build a patch or a snapshot, apply one (refusing what a server may have done to
the log), and compare checkpoints between own devices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol import primitives
from protocol.encoding import b64u_decode, b64u_encode, is_uint
from protocol.exceptions import (
    MalformedMessage,
    SyncEntryForged,
    SyncEntryMissing,
    SyncEntryReplayed,
    SyncKeyRetired,
    SyncKeyUnknown,
    SyncLogForked,
    SyncStaleState,
    SyncStateMismatch,
)
from protocol.rng import Rng
from protocol.statehash import EMPTY_LTHASH, LTHASH_BYTES, lthash_update, state_hash
from protocol.strictjson import canonical_json
from protocol.syncentry import (
    ZERO_CHAIN,
    Mutation,
    SealedRecord,
    SyncEntry,
    SyncKey,
    decode_entry,
    encode_entry,
    encode_mutation,
    entry_mac,
    index_mac,
    open_record,
    seal_record,
    sync_subkeys,
)

# How many (version, chain) pairs a state remembers for comparing older checkpoints.
RECENT_CHAINS = 64

RecordKey = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class SyncRecord:
    """What the state holds at one (collection, index): the winning mutation (value None is a
    tombstone) and its value MAC, the element it contributes to the state hash."""

    collection: str
    index: tuple[str, ...]
    value: dict[str, Any] | None
    timestamp: int
    device: str
    value_mac: bytes


@dataclass(frozen=True)
class Checkpoint:
    """A device's position in the log, exchanged between own devices (section 23.8)."""

    version: int
    chain: bytes


@dataclass(frozen=True)
class AccountState:
    """The state after the entry at `version`; `chain` is that entry's MAC (zero at 0)."""

    version: int = 0
    chain: bytes = ZERO_CHAIN
    lthash: bytes = EMPTY_LTHASH
    records: Mapping[RecordKey, SyncRecord] = field(default_factory=dict)
    recent: tuple[tuple[int, bytes], ...] = ()

    @property
    def hash(self) -> bytes:
        return state_hash(self.lthash)

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.version, self.chain)

    def get(self, collection: str, index: Sequence[str]) -> dict[str, Any] | None:
        """The value at (collection, index); None when absent or removed."""
        record = self.records.get((collection, tuple(index)))
        return None if record is None else record.value

    def collection(self, name: str) -> dict[tuple[str, ...], dict[str, Any]]:
        """Every present (not removed) value of a collection, by index."""
        return {
            r.index: r.value
            for r in self.records.values()
            if r.collection == name and r.value is not None
        }

    def to_dict(self) -> dict[str, Any]:
        records = sorted(self.records.values(), key=lambda r: _sort_key(r.collection, r.index))
        return {
            "version": self.version,
            "chain": b64u_encode(self.chain),
            "lthash": b64u_encode(self.lthash),
            "recent": [[v, b64u_encode(c)] for v, c in self.recent],
            "records": [
                {
                    "collection": r.collection,
                    "index": list(r.index),
                    "value": r.value,
                    "timestamp": r.timestamp,
                    "device": r.device,
                    "value_mac": b64u_encode(r.value_mac),
                }
                for r in records
            ],
        }

    @classmethod
    def from_dict(cls, data: Any) -> AccountState:
        """Strict (MalformedMessage), as every serialized state of this protocol."""
        _expect(
            isinstance(data, dict)
            and set(data) == {"version", "chain", "lthash", "recent", "records"},
            "account state: expected keys chain, lthash, recent, records, version",
        )
        _expect(is_uint(data["version"]), "account state: expected an integer version")
        _expect(isinstance(data["recent"], list), "account state: expected a recent list")
        _expect(isinstance(data["records"], list), "account state: expected a records list")
        recent = []
        for item in data["recent"]:
            _expect(
                isinstance(item, list) and len(item) == 2 and is_uint(item[0]),
                "account state: expected [version, chain] pairs",
            )
            recent.append((item[0], b64u_decode(item[1], length=32, what="recent chain")))
        records: dict[RecordKey, SyncRecord] = {}
        for item in data["records"]:
            _expect(isinstance(item, dict), "account state: expected record objects")
            _expect(
                set(item) == {"collection", "index", "value", "timestamp", "device", "value_mac"},
                "account state: expected record keys",
            )
            value_mac = b64u_decode(item["value_mac"], length=32, what="value MAC")
            m = Mutation(
                item["collection"],
                tuple(item["index"]) if isinstance(item["index"], list) else item["index"],
                item["value"],
                item["timestamp"],
                item["device"],
            )
            encode_mutation(m)
            records[(m.collection, m.index)] = _record(m, value_mac)
        return cls(
            version=data["version"],
            chain=b64u_decode(data["chain"], length=32, what="chain"),
            lthash=b64u_decode(data["lthash"], length=LTHASH_BYTES, what="lthash"),
            records=records,
            recent=tuple(recent),
        )


@dataclass(frozen=True)
class WrittenEntry:
    """An entry to POST as {version, kind, blob}, and the writer's state once it is stored."""

    kind: str
    version: int
    blob: bytes
    state: AccountState


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise MalformedMessage(message)


def _sort_key(collection: str, index: tuple[str, ...]) -> bytes:
    return canonical_json([collection, list(index)])


def _record(m: Mutation, value_mac: bytes) -> SyncRecord:
    return SyncRecord(m.collection, m.index, m.value, m.timestamp, m.device, value_mac)


def supersedes(new: Mutation | SyncRecord, old: SyncRecord) -> bool:
    """Last writer wins by (timestamp, device id as UTF-8 bytes); on a tie the later entry in
    the log wins, which every device sees in the same order (section 23.6)."""
    return (new.timestamp, new.device.encode()) >= (old.timestamp, old.device.encode())


def _merge(
    state: AccountState, opened: Iterable[tuple[Mutation, bytes]]
) -> tuple[dict[RecordKey, SyncRecord], bytes]:
    records = dict(state.records)
    added, removed = [], []
    for mutation, value_mac in opened:
        key = (mutation.collection, mutation.index)
        old = records.get(key)
        if old is not None:
            if not supersedes(mutation, old):
                continue  # a late older write loses
            removed.append(old.value_mac)
        records[key] = _record(mutation, value_mac)
        added.append(value_mac)
    return records, lthash_update(state.lthash, add=added, remove=removed)


def _advance(
    state: AccountState,
    version: int,
    chain: bytes,
    records: dict[RecordKey, SyncRecord],
    lthash: bytes,
) -> AccountState:
    recent = ((*state.recent, (state.version, state.chain)) if state.version else state.recent)[
        -RECENT_CHAINS:
    ]
    return AccountState(version, chain, lthash, records, recent)


def _check_writer_key(state: AccountState, version: int, key: SyncKey) -> None:
    _expect(
        version == state.version + 1,
        f"entry: expected version {state.version + 1} (the state's next), got {version}",
    )
    _expect(
        key.since_version <= version,
        f"entry: the sync key is in force from version {key.since_version}, not {version}",
    )


def build_patch(
    state: AccountState, mutations: Sequence[Mutation], *, version: int, key: SyncKey, rng: Rng
) -> WrittenEntry:
    """Seal each mutation in order (rng(24) each) into the patch at `version` (the state's
    next); the state in the result has them applied by the conflict rule."""
    _check_writer_key(state, version, key)
    subkeys = sync_subkeys(key)
    sealed = [seal_record(subkeys, m, rng) for m in mutations]
    records, lthash = _merge(state, zip(mutations, (vm for _, vm in sealed), strict=True))
    return _written("patch", state, key, version, sealed, records, lthash)


def build_snapshot(state: AccountState, *, version: int, key: SyncKey, rng: Rng) -> WrittenEntry:
    """Every record (tombstones too) sealed again under `key`, in ascending index-MAC order
    (rng(24) each in that order): the whole state at `version`, e.g. after a key rotation."""
    _check_writer_key(state, version, key)
    subkeys = sync_subkeys(key)
    ordered = sorted(
        state.records.values(), key=lambda r: index_mac(subkeys, r.collection, r.index)
    )
    mutations = [Mutation(r.collection, r.index, r.value, r.timestamp, r.device) for r in ordered]
    sealed = [seal_record(subkeys, m, rng) for m in mutations]
    records = {
        (m.collection, m.index): _record(m, vm)
        for m, (_, vm) in zip(mutations, sealed, strict=True)
    }
    lthash = lthash_update(EMPTY_LTHASH, add=[vm for _, vm in sealed])
    return _written("snapshot", state, key, version, sealed, records, lthash)


def _written(
    kind: str,
    state: AccountState,
    key: SyncKey,
    version: int,
    sealed: Sequence[tuple[SealedRecord, bytes]],
    records: dict[RecordKey, SyncRecord],
    lthash: bytes,
) -> WrittenEntry:
    """The entry at `version` after `state` (chained to its last entry), and the state it makes."""
    blob = encode_entry(
        kind=kind,
        key=key,
        version=version,
        previous=state.chain,
        state_hash=state_hash(lthash),
        records=[record for record, _ in sealed],
    )
    return WrittenEntry(kind, version, blob, _advance(state, version, blob[-32:], records, lthash))


def _entry_key(entry: SyncEntry, keys: Sequence[SyncKey]) -> SyncKey:
    key = next((k for k in keys if k.key_id == entry.key_id), None)
    if key is None:
        raise SyncKeyUnknown(
            f"the change listed at version {entry.version} is under a sync key this device "
            "does not hold (yet)"
        )
    return key


def _check_key_in_force(entry: SyncEntry, key: SyncKey, keys: Sequence[SyncKey]) -> None:
    if key.since_version > entry.version:
        raise SyncKeyRetired(
            f"the change at version {entry.version} is under a sync key in force only from "
            f"version {key.since_version}"
        )
    newer = [k.since_version for k in keys if key.since_version < k.since_version <= entry.version]
    if newer:
        raise SyncKeyRetired(
            f"the change at version {entry.version} is under a sync key retired at version "
            f"{min(newer)}"
        )


def _check_position(state: AccountState, entry: SyncEntry) -> None:
    expected = state.version + 1
    if entry.kind == "patch" and entry.version <= state.version:
        raise SyncEntryReplayed(
            f"the server replayed an old change: version {entry.version} again, this device "
            f"is at version {state.version}"
        )
    if entry.kind == "patch" and entry.version > expected:
        raise SyncEntryMissing(
            f"the server left out a change: expected version {expected}, got version "
            f"{entry.version}"
        )
    if entry.kind == "snapshot" and entry.version <= state.version:
        raise SyncStaleState(
            f"the server served a stale snapshot: version {entry.version}, this device is at "
            f"version {state.version}"
        )
    if entry.version == expected and not primitives.mac_equal(entry.previous, state.chain):
        raise SyncLogForked(
            f"the server forked the log: the change at version {entry.version} follows another "
            f"version {state.version} than this device's"
        )


def apply_entry(
    state: AccountState, blob: bytes, *, version: int, keys: Sequence[SyncKey]
) -> AccountState:
    """The state after the entry the server listed at `version`; raises a SyncRefused
    subclass (or MalformedMessage) naming the first failed check of section 23.7."""
    entry = decode_entry(blob)
    _expect(is_uint(version), f"entry: expected a listed version, got {version!r}")
    key = _entry_key(entry, keys)
    subkeys = sync_subkeys(key)
    if not primitives.mac_equal(entry_mac(subkeys, entry.signed), entry.mac):
        raise SyncEntryForged(
            f"the change listed at version {version} was altered or not written by an own "
            "device (its MAC does not verify)"
        )
    _check_key_in_force(entry, key, keys)
    _check_position(state, entry)
    if entry.version != version:
        raise SyncEntryForged(
            f"the server listed the change written as version {entry.version} at version {version}"
        )
    opened = [open_record(subkeys, record) for record in entry.records]
    if entry.kind == "patch":
        records, lthash = _merge(state, opened)
    else:
        records = {(m.collection, m.index): _record(m, vm) for m, vm in opened}
        lthash = lthash_update(EMPTY_LTHASH, add=[vm for _, vm in opened])
    if not primitives.mac_equal(state_hash(lthash), entry.state_hash):
        raise SyncStateMismatch(
            f"after version {entry.version} this device's state differs from the writer's"
        )
    return _advance(state, entry.version, entry.mac, records, lthash)
