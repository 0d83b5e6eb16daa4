"""Scenarios of the sync machine (docs/protocol.md section 22.8): writing, rebasing, refusing,
the first key, rotation, compaction, a new device. The expected entries are built here with
the pure functions of section 23 (protocol/accountstate.py), from the seed each event
carries, as the machine must; nothing here imports the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol.accountstate import AccountState, WrittenEntry, build_patch, build_snapshot
from protocol.rng import TestRng
from protocol.syncentry import Mutation, SyncKey, new_sync_key
from tests.vectors.scenarios.builders import SEEDS, T0, b64, seed

PATH = "/api/state"


def event_seed(name: str) -> bytes:
    return seed(f"scenario sync {name}")


def key(name: str, since: int) -> SyncKey:
    return new_sync_key(TestRng(seed(f"scenario sync key {name}")), since_version=since)


K1 = key("one", 1)


def key_json(k: SyncKey) -> dict[str, Any]:
    return {"key_id": b64(k.key_id), "key": b64(k.key), "since_version": k.since_version}


def mutation_json(m: Mutation) -> dict[str, Any]:
    return {
        "collection": m.collection,
        "index": list(m.index),
        "value": m.value,
        "timestamp": m.timestamp,
        "device": m.device,
    }


def sync_state(
    device: str,
    account: AccountState,
    keys: tuple[SyncKey, ...] = (K1,),
    pending: tuple[Mutation, ...] = (),
) -> dict[str, Any]:
    return {
        "account_id": "alice",
        "device_id": device,
        "keys": [key_json(k) for k in keys],
        "account": account.to_dict(),
        "pending": [mutation_json(m) for m in pending],
        "request": None,
        "fetch": False,
        "rotate": False,
        "share": False,
        "compact": False,
        "announce": False,
        "refused": None,
        "checkpoint": None,
        "proposed": None,
        "next_request": 1,
    }


@dataclass
class Log:
    """A log as the server holds it, written with the protocol's own functions."""

    state: AccountState = field(default_factory=AccountState)
    entries: list[WrittenEntry] = field(default_factory=list)

    def snapshot(self, k: SyncKey, rng_name: str) -> WrittenEntry:
        written = build_snapshot(
            self.state, version=self.state.version + 1, key=k, rng=TestRng(event_seed(rng_name))
        )
        self.state = written.state
        self.entries.append(written)
        return written

    def patch(self, k: SyncKey, mutations: list[Mutation], rng_name: str) -> WrittenEntry:
        written = build_patch(
            self.state,
            mutations,
            version=self.state.version + 1,
            key=k,
            rng=TestRng(event_seed(rng_name)),
        )
        self.state = written.state
        self.entries.append(written)
        return written


def contact(name: str, at: int, device: str) -> Mutation:
    return Mutation(
        "contacts", (name,), {"account_key": b64(bytes(32)), "added_at": at}, at, device
    )


def read_up_to(peer: str, up_to: int, at: int, device: str) -> Mutation:
    return Mutation("conversations", (peer,), {"read_up_to": up_to}, at, device)


# ------------------------------------------------------------------ events and effects


def mutated(mutations: list[Mutation], rng_name: str) -> dict[str, Any]:
    return {
        "type": "sync_mutated",
        "mutations": [
            {"collection": m.collection, "index": list(m.index), "value": m.value}
            for m in mutations
        ],
        "now": mutations[0].timestamp,
        "seed": b64(event_seed(rng_name)),
    }


def simple(kind: str, rng_name: str, now: int, **more: Any) -> dict[str, Any]:
    return {"type": kind, **more, "now": now, "seed": b64(event_seed(rng_name))}


def answered(request_id: str, status: int, body: Any, rng_name: str, now: int) -> dict[str, Any]:
    return simple("sync_answered", rng_name, now, request_id=request_id, status=status, body=body)


def listing(entries: list[WrittenEntry], version: int, more: bool = False) -> dict[str, Any]:
    return {
        "version": version,
        "entries": [
            {"version": e.version, "kind": e.kind, "blob": b64(e.blob), "device": "x"}
            for e in entries
        ],
        "more": more,
    }


def conflict(code: str, version: int) -> dict[str, Any]:
    return {"error": {"code": code, "message": "…", "data": {"version": version}}}


def stored(
    account: AccountState,
    keys: tuple[SyncKey, ...] = (K1,),
    pending: int = 0,
    refused: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "store_sync",
        "version": account.version,
        "chain": b64(account.chain),
        "hash": b64(account.hash),
        "key_ids": [b64(k.key_id) for k in keys],
        "pending": pending,
        "refused": refused,
    }


def get(request_id: str, after: int) -> dict[str, Any]:
    return {
        "type": "http_request",
        "request_id": request_id,
        "method": "GET",
        "path": f"{PATH}?after={after}",
        "body": None,
    }


def post(request_id: str, written: WrittenEntry) -> dict[str, Any]:
    return {
        "type": "http_request",
        "request_id": request_id,
        "method": "POST",
        "path": PATH,
        "body": {"version": written.version, "kind": written.kind, "blob": b64(written.blob)},
    }


def changed(state: AccountState, *keys: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "sync_changed",
        "changes": [{"collection": c, "index": [i], "value": state.get(c, (i,))} for c, i in keys],
    }


def refused(error: str, message: str) -> dict[str, Any]:
    return {
        "type": "notice",
        "account_id": "alice",
        "code": "sync_key_awaited" if error == "SyncKeyUnknown" else "sync_refused",
        "data": {"error": error, "message": message},
    }


def shared(k: SyncKey, state: AccountState) -> dict[str, Any]:
    return {
        "type": "share_sync_key",
        "body": {**key_json(k), "version": state.version, "chain": b64(state.chain)},
    }


def announced(state: AccountState) -> dict[str, Any]:
    """This device's checkpoint, for its other own devices (section 23.8)."""
    return {
        "type": "share_sync_checkpoint",
        "body": {"version": state.version, "chain": b64(state.chain)},
    }


def checkpoint_json(state: AccountState) -> dict[str, Any]:
    return {"version": state.version, "chain": b64(state.chain)}


def sync_scenario(
    description: str,
    initial: dict[str, Any],
    steps: list[tuple[str, dict[str, Any], list[dict[str, Any]]]],
) -> dict[str, Any]:
    return {
        "description": description,
        "machine": "sync",
        "seeds": {**SEEDS, "events": "scenario sync <name>", "keys": "scenario sync key <name>"},
        "state": initial,
        "steps": [{"note": n, "event": e, "effects": fx} for n, e, fx in steps],
    }


T1, T2, T3, T4 = T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000


def base_log() -> Log:
    log = Log()
    log.snapshot(K1, "base snapshot")
    return log


# ------------------------------------------------------------------ the scenarios


def mutation_written() -> dict[str, Any]:
    log = base_log()
    start = log.state
    bob = contact("bob", T1, "alice-phone")
    written = log.patch(K1, [bob], "add bob")
    return sync_scenario(
        "A change the person makes is stored first (pending), written as a patch at the next version, and adopted on 201; the doorbell for a version this device holds fetches nothing, a newer one fetches.",
        sync_state("alice-phone", start),
        [
            (
                "alice adds bob: pending, then the patch at version 2",
                mutated([bob], "add bob"),
                [stored(start, pending=1), post("s1", written)],
            ),
            (
                "201: adopted, and this device's checkpoint sent to its other devices",
                answered("s1", 201, {"version": 2}, "after add", T1),
                [
                    stored(written.state),
                    changed(written.state, ("contacts", "bob")),
                    announced(written.state),
                ],
            ),
            (
                "state_changed at version 2 (this device's own write): nothing to read",
                simple("sync_fetch_wanted", "bell 2", T1, version=2),
                [],
            ),
            (
                "state_changed at version 3: read what follows version 2",
                simple("sync_fetch_wanted", "bell 3", T2, version=3),
                [get("s2", 2)],
            ),
        ],
    )


def conflict_rebased() -> dict[str, Any]:
    """The laptop wrote version 2 first; the phone's patch is built again on it, and the
    laptop's later read position wins over the phone's earlier one."""
    log = base_log()
    start = log.state
    phone_read = read_up_to("bob", T0 + 100, T1, "alice-phone")
    carol = contact("carol", T1, "alice-phone")
    stale = build_patch(
        start, [phone_read, carol], version=2, key=K1, rng=TestRng(event_seed("phone change"))
    )
    laptop = log.patch(K1, [read_up_to("bob", T0 + 900, T2, "alice-laptop")], "laptop change")
    rebased = log.patch(K1, [phone_read, carol], "laptop's patch")
    return sync_scenario(
        "409 state_version_conflict: the device reads what it missed, applies it, and writes its pending changes again on the new state; per index the last writer by (timestamp, device id) decides.",
        sync_state("alice-phone", start),
        [
            (
                "the phone marks bob's chat read and adds carol",
                mutated([phone_read, carol], "phone change"),
                [stored(start, pending=2), post("s1", stale)],
            ),
            (
                "409: the laptop wrote version 2 first",
                answered("s1", 409, conflict("state_version_conflict", 2), "conflict", T2),
                [get("s2", 1)],
            ),
            (
                "the laptop's patch, applied; the phone's changes rebased as version 3",
                answered("s2", 200, listing([laptop], 2), "laptop's patch", T2),
                [
                    stored(laptop.state, pending=2),
                    changed(laptop.state, ("conversations", "bob")),
                    post("s3", rebased),
                ],
            ),
            (
                "201: bob's read position is the laptop's (written later), carol is added; one checkpoint for the read and the write",
                answered("s3", 201, {"version": 3}, "after rebase", T3),
                [
                    stored(rebased.state),
                    changed(rebased.state, ("contacts", "carol"), ("conversations", "bob")),
                    announced(rebased.state),
                ],
            ),
        ],
    )


def refusals_keep_state() -> dict[str, Any]:
    log = base_log()
    log.patch(K1, [contact("bob", T1, "alice-laptop")], "bob")
    good = log.state  # version 2
    fork = Log(state=log.entries[0].state)
    fork.patch(K1, [contact("mallory", T1, "alice-laptop")], "fork 2")
    forked = fork.patch(K1, [contact("eve", T1, "alice-laptop")], "fork 3")
    v3 = log.patch(K1, [contact("carol", T2, "alice-laptop")], "carol")
    v4 = log.patch(K1, [contact("dave", T2, "alice-laptop")], "dave")
    after = Log(state=log.state)
    erin = contact("erin", T3, "alice-phone")
    v5 = after.patch(K1, [erin], "all good")
    missing = "the server left out a change: expected version 3, got version 4"
    replayed = "the server replayed an old change: version 2 again, this device is at version 2"
    forked_msg = (
        "the server forked the log: the change at version 3 follows another version 2 than "
        "this device's"
    )
    return sync_scenario(
        "A dropped, replayed or forked entry is refused with its named reason; the device keeps its last good state, says why, and writes nothing until a read passes.",
        sync_state("alice-phone", good),
        [
            ("the doorbell", simple("sync_fetch_wanted", "bell", T2, version=4), [get("s1", 2)]),
            (
                "version 3 left out (dropped)",
                answered("s1", 200, listing([v4], 4), "dropped", T2),
                [stored(good, refused="SyncEntryMissing"), refused("SyncEntryMissing", missing)],
            ),
            (
                "a change made meanwhile waits",
                mutated([erin], "erin"),
                [stored(good, pending=1, refused="SyncEntryMissing")],
            ),
            (
                "reconnected: read again",
                simple("sync_fetch_wanted", "again", T3, version=None),
                [get("s2", 2)],
            ),
            (
                "version 2 served again (replayed)",
                answered("s2", 200, listing([log.entries[1]], 4), "replayed", T3),
                [
                    stored(good, pending=1, refused="SyncEntryReplayed"),
                    refused("SyncEntryReplayed", replayed),
                ],
            ),
            ("the doorbell", simple("sync_fetch_wanted", "bell 2", T3, version=4), [get("s3", 2)]),
            (
                "another branch's version 3 (forked)",
                answered("s3", 200, listing([forked], 4), "forked", T3),
                [
                    stored(good, pending=1, refused="SyncLogForked"),
                    refused("SyncLogForked", forked_msg),
                ],
            ),
            ("the doorbell", simple("sync_fetch_wanted", "bell 3", T3, version=4), [get("s4", 2)]),
            (
                "the true log: applied, and the waiting change written",
                answered("s4", 200, listing([v3, v4], 4), "all good", T3),
                [
                    stored(v4.state, pending=1),
                    changed(v4.state, ("contacts", "carol"), ("contacts", "dave")),
                    post("s5", v5),
                ],
            ),
        ],
    )


def new_device_whole_state() -> dict[str, Any]:
    log = base_log()
    log.patch(K1, [contact("bob", T1, "alice-phone")], "bob")
    log.patch(
        K1,
        [
            Mutation("settings", ("read_receipts",), {"on": True}, T1, "alice-phone"),
            contact("carol", T1, "alice-phone"),
        ],
        "settings",
    )
    full = log.state
    key_body = {**key_json(K1), "version": full.version, "chain": b64(full.chain)}
    stale = (
        "the server serves a stale state: an own device is at version 3, the log ends at version 2"
    )
    empty = AccountState()
    return sync_scenario(
        "A newly linked device gets the sync key from its approver and reads the whole state at once; a log that ends before the version the key's sender was at is refused (a stale state), and nothing is applied.",
        sync_state("alice-laptop", empty, keys=()),
        [
            (
                "the page loads: read the log from the start",
                simple("sync_fetch_wanted", "load", T1, version=None),
                [get("s1", 0)],
            ),
            (
                "the log has entries under a key this device does not hold",
                answered("s1", 200, listing(log.entries[:1], 3), "no key", T1),
                [
                    stored(empty, keys=(), refused="SyncKeyUnknown"),
                    refused(
                        "SyncKeyUnknown",
                        "the change listed at version 1 is under a sync key this device does "
                        "not hold (yet)",
                    ),
                ],
            ),
            (
                "the key arrives from the approving phone: read from the start",
                simple("sync_key_received", "key", T2, sender_device="alice-phone", body=key_body),
                [stored(empty, refused="SyncKeyUnknown"), get("s2", 0)],
            ),
            (
                "the server withholds version 3: refused as stale, nothing applied",
                answered("s2", 200, listing(log.entries[:2], 2), "stale", T2),
                [stored(empty, refused="SyncStaleState"), refused("SyncStaleState", stale)],
            ),
            ("the doorbell", simple("sync_fetch_wanted", "bell", T3, version=3), [get("s3", 0)]),
            (
                "the whole log: every contact and setting at once; its new position told to the own devices",
                answered("s3", 200, listing(log.entries, 3), "whole", T3),
                [
                    stored(full),
                    changed(
                        full,
                        ("contacts", "bob"),
                        ("contacts", "carol"),
                        ("settings", "read_receipts"),
                    ),
                    announced(full),
                ],
            ),
        ],
    )


def compaction_snapshot() -> dict[str, Any]:
    log = base_log()
    log.patch(K1, [contact("bob", T1, "alice-phone")], "bob")
    start = log.state
    dave = contact("dave", T2, "alice-phone")
    refused_patch = build_patch(start, [dave], version=3, key=K1, rng=TestRng(event_seed("dave")))
    snapshot = log.snapshot(K1, "compact")
    patch = log.patch(K1, [dave], "snapshot stored")
    return sync_scenario(
        "409 state_compaction_needed: the device writes a snapshot of its state at that version, then its pending change after it.",
        sync_state("alice-phone", start),
        [
            (
                "alice adds dave",
                mutated([dave], "dave"),
                [stored(start, pending=1), post("s1", refused_patch)],
            ),
            (
                "409: too many patches since the last snapshot",
                answered("s1", 409, conflict("state_compaction_needed", 2), "compact", T2),
                [stored(start, pending=1), post("s2", snapshot)],
            ),
            (
                "201: the snapshot is version 3; the change follows as version 4",
                answered("s2", 201, {"version": 3}, "snapshot stored", T2),
                [stored(snapshot.state, pending=1), post("s3", patch)],
            ),
            (
                "201: one checkpoint for the snapshot and the patch",
                answered("s3", 201, {"version": 4}, "done", T2),
                [
                    stored(patch.state),
                    changed(patch.state, ("contacts", "dave")),
                    announced(patch.state),
                ],
            ),
        ],
    )


def first_key_and_rotation() -> dict[str, Any]:
    log = Log()
    # the machine draws the key and then the snapshot's nonces from one stream
    rng = TestRng(event_seed("linked"))
    first = new_sync_key(rng, since_version=1)
    snap = build_snapshot(AccountState(), version=1, key=first, rng=rng)
    log.state, log.entries = snap.state, [snap]
    bob = contact("bob", T2, "alice-phone")
    patch = log.patch(first, [bob], "bob")
    rng = TestRng(event_seed("nothing missed"))
    second = new_sync_key(rng, since_version=3)
    rotated = build_snapshot(log.state, version=3, key=second, rng=rng)
    empty = AccountState()
    return sync_scenario(
        "The first key: an account without one creates it (in force from version 1) when a device is linked, writes the empty state as version 1 under it, and only after the 201 sends the key to its own devices. Rotation after a device is removed: read to the current version V, a new key in force from V+1, every record written again under it as a snapshot, then the new key sent.",
        sync_state("alice-phone", empty, keys=()),
        [
            (
                "a device was linked: the account has no key yet",
                simple("sync_key_share_wanted", "linked", T1),
                [stored(empty, keys=()), post("s1", snap)],
            ),
            (
                "201: the key is the account's; now it is sent (with the checkpoint, so no type 8)",
                answered("s1", 201, {"version": 1}, "first stored", T1),
                [stored(snap.state, keys=(first,)), shared(first, snap.state)],
            ),
            (
                "alice adds bob",
                mutated([bob], "bob"),
                [stored(snap.state, keys=(first,), pending=1), post("s2", patch)],
            ),
            (
                "201: the checkpoint sent",
                answered("s2", 201, {"version": 2}, "bob stored", T2),
                [
                    stored(patch.state, keys=(first,)),
                    changed(patch.state, ("contacts", "bob")),
                    announced(patch.state),
                ],
            ),
            (
                "alice removed her laptop: read to the current version first",
                simple("sync_rotate_wanted", "removed", T3),
                [get("s3", 2)],
            ),
            (
                "nothing missed: the state under a new key, as version 3",
                answered("s3", 200, listing([], 2), "nothing missed", T3),
                [stored(patch.state, keys=(first,)), post("s4", rotated)],
            ),
            (
                "201: the new key is sent to the remaining devices",
                answered("s4", 201, {"version": 3}, "rotated", T3),
                [stored(rotated.state, keys=(first, second)), shared(second, rotated.state)],
            ),
        ],
    )


def first_key_race() -> dict[str, Any]:
    """Two devices without a key write a first one at once: the compare-and-swap keeps one."""
    rng = TestRng(event_seed("laptop linked"))
    mine = new_sync_key(rng, since_version=1)
    lost = build_snapshot(AccountState(), version=1, key=mine, rng=rng)
    log = base_log()  # the phone's, under K1
    empty = AccountState()
    body = {**key_json(K1), "version": 1, "chain": b64(log.state.chain)}
    return sync_scenario(
        "Two devices create a first key at once: the server stores one snapshot at version 1; the other device forgets its key once the log shows another key there, and waits for the winner's key.",
        sync_state("alice-laptop", empty, keys=()),
        [
            (
                "the laptop approves a link and has no key",
                simple("sync_key_share_wanted", "laptop linked", T1),
                [stored(empty, keys=()), post("s1", lost)],
            ),
            (
                "409: the phone wrote version 1 first",
                answered("s1", 409, conflict("state_version_conflict", 1), "lost", T1),
                [stored(empty, keys=()), get("s2", 0)],
            ),
            (
                "version 1 is under the phone's key: not this device's, which is forgotten",
                answered("s2", 200, listing(log.entries, 1), "other key", T1),
                [
                    stored(empty, keys=(), refused="SyncKeyUnknown"),
                    refused(
                        "SyncKeyUnknown",
                        "the change listed at version 1 is under a sync key this device does "
                        "not hold (yet)",
                    ),
                ],
            ),
            (
                "the phone's key arrives: read, then pass it on to the new device",
                simple("sync_key_received", "key", T2, sender_device="alice-phone", body=body),
                [stored(empty, refused="SyncKeyUnknown"), get("s3", 0)],
            ),
            (
                "the log applies; the share that was asked for goes out with the phone's key",
                answered("s3", 200, listing(log.entries, 1), "applied", T2),
                [stored(log.state), shared(K1, log.state)],
            ),
        ],
    )


def checkpoint_sent() -> dict[str, Any]:
    log = base_log()
    log.patch(K1, [contact("bob", T1, "alice-phone")], "bob")
    start = log.state
    carol = contact("carol", T1, "alice-phone")
    dave = contact("dave", T2, "alice-phone")
    v3 = log.patch(K1, [carol], "carol")
    v4 = log.patch(K1, [dave], "carol stored")
    v5 = log.patch(K1, [contact("erin", T3, "alice-laptop")], "laptop's erin")
    return sync_scenario(
        "After each entry this device writes, and after a read that moved it, it sends its checkpoint {version, chain} to its other own devices (content type 8, section 23.8): once, when nothing else is left to do, so that writes and reads in a row send one; a read that moved nothing sends none.",
        sync_state("alice-phone", start),
        [
            (
                "alice adds carol",
                mutated([carol], "carol"),
                [stored(start, pending=1), post("s1", v3)],
            ),
            (
                "and dave, while carol's write is in flight",
                mutated([dave], "dave"),
                [stored(start, pending=2)],
            ),
            (
                "201: dave follows at once; no checkpoint yet",
                answered("s1", 201, {"version": 3}, "carol stored", T2),
                [
                    stored(v3.state, pending=1),
                    changed(v3.state, ("contacts", "carol")),
                    post("s2", v4),
                ],
            ),
            (
                "201: one checkpoint for both writes",
                answered("s2", 201, {"version": 4}, "dave stored", T2),
                [stored(v4.state), changed(v4.state, ("contacts", "dave")), announced(v4.state)],
            ),
            (
                "the socket reconnected: read",
                simple("sync_fetch_wanted", "reconnected", T3, version=None),
                [get("s3", 4)],
            ),
            (
                "nothing new: no checkpoint",
                answered("s3", 200, listing([], 4), "nothing new", T3),
                [stored(v4.state)],
            ),
            (
                "the laptop wrote version 5",
                simple("sync_fetch_wanted", "bell 5", T3, version=5),
                [get("s4", 4)],
            ),
            (
                "applied: this device's new position told",
                answered("s4", 200, listing([v5], 5), "laptop's patch", T3),
                [stored(v5.state), changed(v5.state, ("contacts", "erin")), announced(v5.state)],
            ),
        ],
    )


def checkpoint_received() -> dict[str, Any]:
    log = base_log()
    v1 = log.state
    log.patch(K1, [contact("bob", T1, "alice-laptop")], "bob")
    start = log.state  # version 2
    fork = Log(state=start)
    fork.patch(K1, [contact("mallory", T2, "alice-tablet")], "tablet's branch")
    v3 = log.patch(K1, [contact("carol", T2, "alice-laptop")], "laptop's carol")
    v4 = log.patch(K1, [contact("dave", T3, "alice-laptop")], "laptop's dave")
    erin = contact("erin", T3, "alice-phone")
    stale = (
        "the server serves a stale state: an own device is at version 3, the log ends at version 2"
    )
    forked = "the server forked the log: another own device has a different change at version 3"

    def told(rng_name: str, state: AccountState, device: str = "alice-laptop") -> dict[str, Any]:
        return simple(
            "sync_checkpoint_received",
            rng_name,
            T3,
            sender_device=device,
            body=checkpoint_json(state),
        )

    return sync_scenario(
        "A checkpoint from an own device (type 8, section 23.8) is compared with this device's position: the same or an older agreeing one does nothing and sends nothing back; one ahead makes it read the log, which must then reach it (a server that withholds the newest entries is refused, stale); another chain at a version both know is a fork, refused and kept, so later reads of that branch are refused too.",
        sync_state("alice-phone", start),
        [
            ("the laptop is where this device is: nothing", told("same", start), []),
            ("an older checkpoint that agrees: nothing", told("older", v1), []),
            (
                "the laptop is at version 3: read the log",
                told("ahead", v3.state),
                [stored(start), get("s1", 2)],
            ),
            (
                "the server's log ends at version 2: it withholds version 3",
                answered("s1", 200, listing([], 2), "withheld", T3),
                [stored(start, refused="SyncStaleState"), refused("SyncStaleState", stale)],
            ),
            (
                "the doorbell: read again",
                simple("sync_fetch_wanted", "bell 3", T3, version=3),
                [get("s2", 2)],
            ),
            (
                "version 3 served: applied, and this device's position told",
                answered("s2", 200, listing([v3], 3), "served", T3),
                [stored(v3.state), changed(v3.state, ("contacts", "carol")), announced(v3.state)],
            ),
            (
                "the laptop's checkpoint at version 3 again: nothing sent back (no ping-pong)",
                told("same again", v3.state),
                [],
            ),
            (
                "the tablet's checkpoint: another change at version 3",
                told("fork", fork.state, "alice-tablet"),
                [stored(v3.state, refused="SyncLogForked"), refused("SyncLogForked", forked)],
            ),
            (
                "a change made meanwhile waits: no write while a refusal stands",
                mutated([erin], "erin"),
                [stored(v3.state, pending=1, refused="SyncLogForked")],
            ),
            (
                "the doorbell",
                simple("sync_fetch_wanted", "bell 4", T3, version=4),
                [get("s3", 3)],
            ),
            (
                "version 4 of this branch: still refused against the tablet's checkpoint",
                answered("s3", 200, listing([v4], 4), "branch", T3),
                [
                    stored(v3.state, pending=1, refused="SyncLogForked"),
                    refused("SyncLogForked", forked),
                ],
            ),
        ],
    )


def stale_snapshot_refused() -> dict[str, Any]:
    log = base_log()
    log.patch(K1, [contact("bob", T1, "alice-phone")], "bob")
    old = list(log.entries)  # versions 1 and 2, under the key in force before the rotation
    k2 = key("two", 3)
    rotated = log.snapshot(k2, "rotated")  # the server deleted the entries below it
    body = {**key_json(k2), "version": 3, "chain": b64(rotated.state.chain)}
    empty = AccountState()
    stale = (
        "the server serves a stale state: the newest sync key is in force from version 3, the "
        "log it served holds version 1"
    )
    return sync_scenario(
        "A device linked after a rotation holds only the newest key, whose first entry is a snapshot at its since_version (23.2); a log listed from below it is a stale snapshot, refused as such (not a key to await), and nothing is applied.",
        sync_state("alice-tablet", empty, keys=()),
        [
            (
                "the key from the phone: read from the start",
                simple("sync_key_received", "key", T2, sender_device="alice-phone", body=body),
                [stored(empty, keys=(k2,)), get("s1", 0)],
            ),
            (
                "the server serves the log from before the rotation",
                answered("s1", 200, listing(old, 2), "old", T2),
                [
                    stored(empty, keys=(k2,), refused="SyncStaleState"),
                    refused("SyncStaleState", stale),
                ],
            ),
            ("the doorbell", simple("sync_fetch_wanted", "bell", T3, version=3), [get("s2", 0)]),
            (
                "the log as it is: the rotation's snapshot",
                answered("s2", 200, listing([rotated], 3), "honest", T3),
                [
                    stored(rotated.state, keys=(k2,)),
                    changed(rotated.state, ("contacts", "bob")),
                    announced(rotated.state),
                ],
            ),
        ],
    )


def lost_write_written_again() -> dict[str, Any]:
    """The socket drops while the first key's snapshot is in flight: the read after the
    reconnect shows a log without it, which proves nothing (the write may still be on its
    way), so the state is written again under the same key, not a new one."""
    rng = TestRng(event_seed("bob"))
    first = new_sync_key(rng, since_version=1)
    lost = build_snapshot(AccountState(), version=1, key=first, rng=rng)
    log = Log()
    snap = build_snapshot(
        AccountState(), version=1, key=first, rng=TestRng(event_seed("nothing stored"))
    )
    log.state, log.entries = snap.state, [snap]
    bob = contact("bob", T1, "alice-phone")
    patch = log.patch(first, [bob], "first stored")
    empty = AccountState()
    return sync_scenario(
        "A write lost with its socket: after the reconnect the machine reads the log to its end and finds no entry under the key it proposed. That proves nothing (the write may still be on its way to the server), so the state is written again under the same key, whichever of the two the server stores; then the person's change.",
        sync_state("alice-phone", empty, keys=()),
        [
            (
                "alice adds bob: the account has no key yet",
                mutated([bob], "bob"),
                [stored(empty, keys=(), pending=1), post("s1", lost)],
            ),
            (
                "the socket drops before the answer: read the log",
                simple("sync_fetch_wanted", "reconnected", T2, version=None),
                [get("s2", 0)],
            ),
            (
                "the log is empty: written again under the same key",
                answered("s2", 200, listing([], 0), "nothing stored", T2),
                [stored(empty, keys=(), pending=1), post("s3", snap)],
            ),
            (
                "201: the key is the account's; then bob",
                answered("s3", 201, {"version": 1}, "first stored", T2),
                [stored(snap.state, keys=(first,), pending=1), post("s4", patch)],
            ),
            (
                "201: bob is written, and the key goes to the own devices",
                answered("s4", 201, {"version": 2}, "bob stored", T3),
                [
                    stored(patch.state, keys=(first,)),
                    changed(patch.state, ("contacts", "bob")),
                    shared(first, patch.state),
                ],
            ),
        ],
    )


def late_write_landed() -> dict[str, Any]:
    """The page that sent the first key's snapshot was left; the next page reads the log before
    that write reaches the server, writes again under the same key, and the late write lands
    first: the 409 is followed by a read that finds the entry under the proposed key."""
    rng = TestRng(event_seed("bob"))
    first = new_sync_key(rng, since_version=1)
    late = build_snapshot(AccountState(), version=1, key=first, rng=rng)
    again = build_snapshot(
        AccountState(), version=1, key=first, rng=TestRng(event_seed("nothing yet"))
    )
    log = Log()
    log.state, log.entries = late.state, [late]
    bob = contact("bob", T1, "alice-phone")
    patch = log.patch(first, [bob], "late write listed")
    empty = AccountState()
    return sync_scenario(
        "The page that wrote the first key's snapshot was left with the write on its way; the next page reads the log before the server stores it and writes again under the same key; the late write lands first: after the 409 the read finds an entry under the proposed key, which joins the ring (a new key would have left the log under a key nobody holds, refused for ever); then the person's change.",
        sync_state("alice-phone", empty, keys=()),
        [
            (
                "alice adds bob: the account has no key yet",
                mutated([bob], "bob"),
                [stored(empty, keys=(), pending=1), post("s1", late)],
            ),
            (
                "the page is left with the write on its way; the next one reads the log",
                simple("sync_fetch_wanted", "reconnected", T2, version=None),
                [get("s2", 0)],
            ),
            (
                "the log is still empty: written again under the same key",
                answered("s2", 200, listing([], 0), "nothing yet", T2),
                [stored(empty, keys=(), pending=1), post("s3", again)],
            ),
            (
                "409: the late write reached the log first",
                answered("s3", 409, conflict("state_version_conflict", 1), "late", T2),
                [stored(empty, keys=(), pending=1), get("s4", 0)],
            ),
            (
                "version 1 is under the proposed key: it joins the ring; then bob",
                answered("s4", 200, listing(log.entries[:1], 1), "late write listed", T2),
                [stored(late.state, keys=(first,), pending=1), post("s5", patch)],
            ),
            (
                "201: bob is written, and the key goes to the own devices",
                answered("s5", 201, {"version": 2}, "bob stored", T3),
                [
                    stored(patch.state, keys=(first,)),
                    changed(patch.state, ("contacts", "bob")),
                    shared(first, patch.state),
                ],
            ),
        ],
    )


SCENARIOS = {
    "sync_mutation_written.json": mutation_written,
    "sync_conflict_rebased.json": conflict_rebased,
    "sync_refusals_keep_state.json": refusals_keep_state,
    "sync_new_device_whole_state.json": new_device_whole_state,
    "sync_compaction_snapshot.json": compaction_snapshot,
    "sync_first_key_and_rotation.json": first_key_and_rotation,
    "sync_first_key_race.json": first_key_race,
    "sync_checkpoint_sent.json": checkpoint_sent,
    "sync_checkpoint_received.json": checkpoint_received,
    "sync_stale_snapshot_refused.json": stale_snapshot_refused,
    "sync_lost_write_written_again.json": lost_write_written_again,
    "sync_late_write_landed.json": late_write_landed,
}
