"""Account state sync in the device engine (docs/protocol.md section 22.8): a sans-I/O machine
of its own, `handle(SyncState, event) -> (SyncState, effects)`, beside the device engine's
`handle` (whose state the adapters rebuild per event; the synced state may be megabytes).

It reads the log (`GET /api/state?after=V`) and applies it with the checks of section 23,
writes the person's changes as patches with compare-and-swap (`POST /api/state`), rebases
them on what it missed, creates the first sync key and rotates it, and says what to store,
what changed and what to send, and compares the checkpoints own devices exchange (section
23.8) with its own position. Randomness is the event's `seed` (32 fresh bytes from the
adapter), expanded with the TestRng stream, so a scenario replays exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from protocol.accountstate import (
    AccountState,
    Checkpoint,
    WrittenEntry,
    apply_entry,
    build_patch,
    build_snapshot,
)
from protocol.encoding import b64u_decode, b64u_encode, is_uint
from protocol.engine.effects import (
    Effect,
    HttpRequest,
    Notice,
    ShareSyncCheckpoint,
    ShareSyncKey,
    StoreSync,
    SyncChanged,
)
from protocol.engine.events import (
    SyncAnswered,
    SyncCheckpointReceived,
    SyncDevicesListed,
    SyncDeviceUsed,
    SyncEvent,
    SyncFetchWanted,
    SyncKeyReceived,
    SyncKeyShareWanted,
    SyncMutated,
    SyncRotateWanted,
)
from protocol.engine.syncdevices import (
    device_used,
    devices_listed,
    rotation_settled,
    rotation_wanted,
)
from protocol.engine.syncstate import (
    SyncRequest,
    SyncState,
    by_since,
    key_from_dict,
    mutation_from_dict,
)
from protocol.exceptions import (
    MalformedMessage,
    SyncKeyUnknown,
    SyncLogForked,
    SyncRefused,
    SyncStaleState,
)
from protocol.rng import Rng, TestRng
from protocol.strictjson import canonical_json
from protocol.syncentry import Mutation, SyncKey, decode_entry, new_sync_key
from protocol.synclog import apply_entries, check_fetched, compare_checkpoint

STATE_PATH = "/api/state"
MAX_PATCH_MUTATIONS = 32  # a patch carries at most this many (and fewer if over 64 KiB)

Result = tuple[SyncState, list[Effect]]


def handle(state: SyncState, event: SyncEvent) -> Result:
    rng: Rng = TestRng(event.seed)
    effects: list[Effect] = []
    if state.write_failed and not isinstance(event, SyncAnswered):
        state = replace(state, write_failed=False)  # another event: writing may be tried again
    if isinstance(event, SyncMutated):
        state, effects = _mutated(state, event)
    elif isinstance(event, SyncFetchWanted):
        if event.version is None:
            state = _reconnected(state)
        elif event.version > state.account.version:
            state = replace(state, fetch=True)
    elif isinstance(event, SyncKeyReceived):
        state, effects = _key_received(state, event)
    elif isinstance(event, SyncCheckpointReceived):
        state, effects = _checkpoint_received(state, event)
    elif isinstance(event, SyncKeyShareWanted):
        state = replace(state, share=True)
    elif isinstance(event, SyncRotateWanted):
        state = rotation_wanted(state)
    elif isinstance(event, SyncDevicesListed):
        state, effects = devices_listed(state, event)
    elif isinstance(event, SyncDeviceUsed):
        state, effects = device_used(state, event)
    elif isinstance(event, SyncAnswered):
        state, effects = _answered(state, event)
    else:
        raise TypeError(f"not a sync event: {event!r}")
    state, more = _next(state, rng)
    return state, _stored_once(state, effects + more)


def _stored_once(state: SyncState, effects: list[Effect]) -> list[Effect]:
    """One StoreSync of the final state, first (stored before any request goes out)."""
    rest: list[Effect] = [e for e in effects if not isinstance(e, StoreSync)]
    if len(rest) == len(effects):
        return rest
    return [StoreSync(state), *rest]


def _mutated(state: SyncState, event: SyncMutated) -> Result:
    added = []
    for collection, index, value in event.mutations:
        raw = {
            "collection": collection,
            "index": list(index),
            "value": value,
            "timestamp": event.now,
            "device": state.device_id,
        }
        try:
            added.append(mutation_from_dict(raw))
        except (MalformedMessage, KeyError, TypeError) as error:
            data = {"collection": collection, "error": type(error).__name__}
            return state, [Notice(state.account_id, "sync_mutation_invalid", data, str(error))]
    state = replace(state, pending=state.pending + tuple(added))
    return state, [StoreSync(state)]


def _reconnected(state: SyncState) -> SyncState:
    """The socket (re)connected or the page loaded: a request in flight is given up (its
    answer, if one comes, is ignored; a write that was stored is read back by the fetch)."""
    request = state.request
    if request is not None and request.new_key is not None:
        state = replace(state, proposed=request.new_key)
    return replace(state, request=None, fetch=True)


def _key_received(state: SyncState, event: SyncKeyReceived) -> Result:
    """A key joins the ring once (by key id); its checkpoint is where the sender was when it
    sent it, so the log must reach at least that far (section 23.8). Then read the log."""
    body = event.body
    key = key_from_dict(body)
    if all(k.key_id != key.key_id for k in state.keys):
        keys = by_since((*state.keys, key))
        state = replace(state, keys=keys)
    checkpoint = _checkpoint_of(body)
    if state.checkpoint is None or checkpoint.version > state.checkpoint.version:
        state = replace(state, checkpoint=checkpoint)
    state = replace(state, fetch=True)
    return state, [StoreSync(state)]


def _checkpoint_received(state: SyncState, event: SyncCheckpointReceived) -> Result:
    """An own device's position (section 23.8). Behind it: keep it and read the log (after the
    last page `check_fetched` refuses a log that ends before it, or differs at it). Another
    chain at a version both know: the server forked the log; the checkpoint is kept, so every
    later read is refused again. Same or ahead: nothing, and nothing is sent back (only a
    change of this device's state is announced)."""
    checkpoint = _checkpoint_of(event.body)
    try:
        standing = compare_checkpoint(state.account, checkpoint)
    except SyncLogForked as error:
        return _refused(replace(state, checkpoint=checkpoint), error)
    if standing != "behind":
        return state, []
    if state.checkpoint is None or checkpoint.version > state.checkpoint.version:
        state = replace(state, checkpoint=checkpoint)
    state = replace(state, fetch=True)
    return state, [StoreSync(state)]


def _checkpoint_of(body: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(int(body["version"]), b64u_decode(body["chain"], length=32))


def _refused(state: SyncState, error: SyncRefused | MalformedMessage) -> Result:
    """The state is left as it was: the device keeps its last good state and says why."""
    state = replace(state, refused=(type(error).__name__, str(error)))
    data = {"error": type(error).__name__, "message": str(error)}
    # a key still to come from an own device is no misbehaviour of the server's
    code = "sync_key_awaited" if isinstance(error, SyncKeyUnknown) else "sync_refused"
    return state, [StoreSync(state), Notice(state.account_id, code, data)]


def _answered(state: SyncState, event: SyncAnswered) -> Result:
    request = state.request
    if request is None or request.request_id != event.request_id:
        return state, []  # an answer to nothing this machine asked: ignored
    state = replace(state, request=None)
    if request.kind == "fetch":
        return _fetched(state, event)
    return _written(state, request, event)


def _error_of(event: SyncAnswered) -> tuple[str, Mapping[str, Any]]:
    error = event.body.get("error") if isinstance(event.body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    data = error.get("data") if isinstance(error, dict) else None
    return code or f"http_{event.status}", data if isinstance(data, dict) else {}


def _listing(body: Any) -> tuple[int, list[tuple[int, bytes]], bool]:
    """The server's page (section 19.3): anything else is a MalformedMessage refusal."""
    if not (
        isinstance(body, dict)
        and is_uint(body.get("version"))
        and isinstance(body.get("entries"), list)
        and isinstance(body.get("more"), bool)
    ):
        raise MalformedMessage("state log page: expected {version, entries, more}")
    entries = []
    for item in body["entries"]:
        if not (isinstance(item, dict) and is_uint(item.get("version"))):
            raise MalformedMessage("state log page: expected entries with a version")
        entries.append((item["version"], b64u_decode(item.get("blob"), what="state entry")))
    return body["version"], entries, body["more"]


def _fetched(state: SyncState, event: SyncAnswered) -> Result:
    if event.status != 200:
        code, _ = _error_of(event)
        data = {"status": event.status, "code": code}
        return state, [Notice(state.account_id, "sync_unavailable", data)]
    before = state.account
    try:
        server_version, entries, more = _listing(event.body)
        state = _settle_proposed(state, entries)
        _check_floor(state, entries)
        account = apply_entries(before, entries, keys=state.keys)
        if not more:
            check_fetched(
                account,
                server_version=server_version,
                keys=state.keys,
                checkpoint=state.checkpoint,
            )
    except (SyncRefused, MalformedMessage) as error:
        return _refused(state, error)
    moved = (account.version, account.chain) != (before.version, before.chain)
    # a read that moved this device tells the others where it is now (23.8)
    state = replace(state, account=account, refused=None, announce=state.announce or moved)
    if not more:
        state = rotation_settled(state)
    more_effects: list[Effect] = []
    if more:
        state, more_effects = _request(state, "fetch", account.version)
    effects: list[Effect] = [StoreSync(state)]
    changes = _changes(before, account, ())
    if changes:
        effects.append(SyncChanged(changes))
    return state, effects + more_effects


def _check_floor(state: SyncState, entries: list[tuple[int, bytes]]) -> None:
    """The newest key's first entry is a snapshot at its since_version (23.2), and the server
    lists nothing below its latest snapshot (19.3): an entry listed below it is a stale log
    (an old snapshot served to a device that holds only newer keys), not a key to await."""
    key = state.newest_key
    for version, _ in entries:
        if key is not None and version < key.since_version:
            raise SyncStaleState(
                f"the server serves a stale state: the newest sync key is in force from "
                f"version {key.since_version}, the log it served holds version {version}"
            )


def _settle_proposed(state: SyncState, entries: list[tuple[int, bytes]]) -> SyncState:
    """A key this device created joins the ring when the log holds an entry under it (its
    write was stored after all), and is forgotten once the log holds another entry at or
    past its version (that write can never be stored now: compare-and-swap). A log read to
    its end without it proves nothing: the write may still be on its way to the server (the
    page that sent it was left), so the key is kept and the next write is made under it
    again (whichever of the two the server stores, this device holds its key)."""
    proposed = state.proposed
    if proposed is None:
        return state
    written = []
    for _, blob in entries:
        try:
            written.append(decode_entry(blob))
        except MalformedMessage:
            continue
    if any(e.key_id == proposed.key_id for e in written):
        keys = by_since((*state.keys, proposed))
        return replace(state, keys=keys, proposed=None, share=True, rotate=False)
    if any(e.version >= proposed.since_version for e in written):
        return replace(state, proposed=None)
    return state


def _written(state: SyncState, request: SyncRequest, event: SyncAnswered) -> Result:
    if event.status == 201:
        keys = state.keys if request.new_key is None else (*state.keys, request.new_key)
        assert request.blob is not None
        before = state.account
        account = apply_entry(before, request.blob, version=request.version, keys=keys)
        written = state.pending[: request.count]
        proposed = state.proposed
        if proposed is not None and request.version >= proposed.since_version:
            proposed = None  # stored under it (a write made again), or the log is past it
        state = replace(
            state,
            keys=by_since(keys),
            account=account,
            pending=state.pending[request.count :],
            compact=state.compact and request.entry != "snapshot",
            announce=True,  # each entry written is announced to the own devices (23.8)
            proposed=proposed,
        )
        if request.new_key is not None:
            # a key is sent only once the entry at its since_version is stored (23.2)
            state = replace(state, rotate=False, share=True)
        effects: list[Effect] = [StoreSync(state)]
        changes = _changes(before, account, written)
        if changes:
            effects.append(SyncChanged(changes))
        return state, effects
    code, data = _error_of(event)
    effects = []
    if request.new_key is not None:
        state = replace(state, proposed=request.new_key)
        effects.append(StoreSync(state))
    if event.status == 409 and code == "state_version_conflict":
        return replace(state, fetch=True), effects  # read what was missed, then write again
    if event.status == 409 and code == "state_compaction_needed":
        return replace(state, compact=True), effects
    notice = {"status": event.status, "code": code}
    # not again at once: a device offline would otherwise write in a loop
    state = replace(state, write_failed=True)
    return state, [
        StoreSync(state),
        *effects,
        Notice(state.account_id, "sync_write_failed", notice),
    ]


def _next(state: SyncState, rng: Rng) -> Result:
    """What to ask the server next, if nothing is in flight: read, then re-key, compact,
    write the person's changes, share the key, and last announce the checkpoint: once, when
    nothing else is left (a key carries the checkpoint too), so that writes and reads in a
    row send one."""
    if state.request is not None:
        return state, []
    if state.fetch:
        return _request(replace(state, fetch=False), "fetch", state.account.version)
    if state.refused is not None:
        return state, []  # no write on a log this device refused; the next fetch may pass
    if state.write_failed:
        return state, []
    version = state.account.version + 1
    key = state.newest_key
    if key is None or state.rotate:
        if key is None and state.account.version > 0:
            return state, []  # the account's key comes from an own device (23.2)
        if key is None and not (state.pending or state.share):
            return state, []
        proposed = state.proposed
        if proposed is not None and proposed.since_version == version:
            # its write may still reach the log: written again under the same key
            new_key = proposed
        else:
            new_key = new_sync_key(rng, since_version=version)
        written = build_snapshot(state.account, version=version, key=new_key, rng=rng)
        return _write(state, written, new_key=new_key)
    if key.since_version > version:
        return _request(state, "fetch", state.account.version)  # the log must reach it
    if state.compact:
        return _write(state, build_snapshot(state.account, version=version, key=key, rng=rng))
    if state.pending:
        return _write(state, *_patch(state, version, key, rng))
    if state.share:
        body = {**_key_body(key), **_checkpoint_body(state.account)}
        state = replace(state, share=False, announce=False)
        return state, [StoreSync(state), ShareSyncKey(body)]
    if state.announce:
        state = replace(state, announce=False)
        return state, [StoreSync(state), ShareSyncCheckpoint(_checkpoint_body(state.account))]
    return state, []


def _checkpoint_body(account: AccountState) -> dict[str, Any]:
    return {"version": account.version, "chain": b64u_encode(account.chain)}


def _patch(state: SyncState, version: int, key: SyncKey, rng: Rng) -> tuple[WrittenEntry, int]:
    """The oldest pending mutations that fit in one patch (MAX_PATCH_BYTES)."""
    count = min(len(state.pending), MAX_PATCH_MUTATIONS)
    while True:
        try:
            patch = build_patch(
                state.account, state.pending[:count], version=version, key=key, rng=rng
            )
            return patch, count
        except MalformedMessage:
            if count == 1:
                raise
            count //= 2


def _write(
    state: SyncState, written: WrittenEntry, count: int = 0, *, new_key: SyncKey | None = None
) -> Result:
    body = {"version": written.version, "kind": written.kind, "blob": b64u_encode(written.blob)}
    request_id = f"s{state.next_request}"
    request = SyncRequest(
        request_id, "write", written.version, written.kind, written.blob, count, new_key
    )
    state = replace(state, request=request, next_request=state.next_request + 1)
    return state, [StoreSync(state), HttpRequest(request_id, "POST", STATE_PATH, body)]


def _request(state: SyncState, kind: str, after: int) -> Result:
    request_id = f"s{state.next_request}"
    state = replace(
        state,
        request=SyncRequest(request_id, kind, after),
        next_request=state.next_request + 1,
    )
    return state, [HttpRequest(request_id, "GET", f"{STATE_PATH}?after={after}")]


def _key_body(key: SyncKey) -> dict[str, Any]:
    return {
        "key_id": b64u_encode(key.key_id),
        "key": b64u_encode(key.key),
        "since_version": key.since_version,
    }


def _changes(
    before: AccountState, after: AccountState, written: tuple[Mutation, ...]
) -> tuple[dict[str, Any], ...]:
    """Every (collection, index) whose value differs, and those this device just wrote (its
    view showed its own value, which a later writer may have beaten)."""
    keys = {k for k in after.records if before.get(*k) != after.get(*k)}
    keys |= {k for k in before.records if k not in after.records}
    keys |= {(m.collection, m.index) for m in written}
    ordered = sorted(keys, key=lambda k: canonical_json([k[0], list(k[1])]))
    return tuple({"collection": c, "index": list(i), "value": after.get(c, i)} for c, i in ordered)
