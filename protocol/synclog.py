"""Reading the account's log as a whole (docs/protocol.md section 23.8): a listing applied in
order, the checks after a fetch, and checkpoints compared between own devices."""

from __future__ import annotations

from collections.abc import Sequence

from protocol import primitives
from protocol.accountstate import AccountState, Checkpoint, apply_entry
from protocol.exceptions import (
    MalformedMessage,
    SyncEntriesReordered,
    SyncEntryMissing,
    SyncLogForked,
    SyncStaleState,
)
from protocol.syncentry import ZERO_CHAIN, SyncKey, decode_entry


def apply_entries(
    state: AccountState, entries: Sequence[tuple[int, bytes]], *, keys: Sequence[SyncKey]
) -> AccountState:
    """Apply a listing's (version, blob) pairs in order, all or nothing; an entry missing
    here that comes later in the same listing is SyncEntriesReordered."""
    written: list[int | None] = []
    for _, blob in entries:
        try:
            written.append(decode_entry(blob).version)
        except MalformedMessage:
            written.append(None)
    for position, (version, blob) in enumerate(entries):
        try:
            state = apply_entry(state, blob, version=version, keys=keys)
        except SyncEntryMissing as exc:
            expected = state.version + 1
            if expected in written[position + 1 :]:
                raise SyncEntriesReordered(
                    f"the server reordered the changes: version {written[position]} came "
                    f"before version {expected}"
                ) from exc
            raise
    return state


def compare_checkpoint(state: AccountState, checkpoint: Checkpoint) -> str:
    """Where an own device's checkpoint stands against this state: "same", "ahead" (this
    device is past it and agrees), "behind" (fetch, then compare again) or "unknown" (too old
    to remember); SyncLogForked when the chains differ."""
    if checkpoint.version > state.version:
        return "behind"
    if checkpoint.version == state.version:
        known: bytes | None = state.chain
    elif checkpoint.version == 0:
        known = ZERO_CHAIN
    else:
        known = dict(state.recent).get(checkpoint.version)
    if known is None:
        return "unknown"
    if not primitives.mac_equal(known, checkpoint.chain):
        raise SyncLogForked(
            f"the server forked the log: another own device has a different change at version "
            f"{checkpoint.version}"
        )
    return "same" if checkpoint.version == state.version else "ahead"


def check_fetched(
    state: AccountState,
    *,
    server_version: int,
    keys: Sequence[SyncKey],
    checkpoint: Checkpoint | None = None,
) -> None:
    """After the last page of a fetch: the state must reach the server's version, the newest
    sync key's since_version and an own device's checkpoint, and agree with the checkpoint."""
    if server_version > state.version:
        raise SyncEntryMissing(
            f"the server left out changes: its log is at version {server_version}, it served "
            f"up to version {state.version}"
        )
    if server_version < state.version:
        raise SyncStaleState(
            f"the server serves a stale state: version {server_version}, this device is at "
            f"version {state.version}"
        )
    floor = max((k.since_version for k in keys), default=0)
    if floor > state.version:
        raise SyncStaleState(
            f"the server serves a stale state: the newest sync key is in force from version "
            f"{floor}, the log ends at version {state.version}"
        )
    if checkpoint is not None:
        if checkpoint.version > state.version:
            raise SyncStaleState(
                f"the server serves a stale state: an own device is at version "
                f"{checkpoint.version}, the log ends at version {state.version}"
            )
        compare_checkpoint(state, checkpoint)
