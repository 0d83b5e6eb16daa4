"""The sync machine's rules about the account's own devices (docs/protocol.md section 22.8):
each device writes its own last use into the synced state, throttled; and a device that sees
an own device leave asks for a new sync key, unless another device's rotation made since is
already in the log. Pure functions over `SyncState`, called by `sync.handle`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from protocol.engine.effects import Effect, StoreSync
from protocol.engine.events import SyncDevicesListed, SyncDeviceUsed
from protocol.engine.syncstate import SyncState
from protocol.syncentry import Mutation

# A device in use writes its last use at most this often (and on load when the last one is
# older). Five devices in use all day make at most 720 patches a day: under the server's
# 1,000 patches between snapshots, so last use alone compacts the log at most about daily.
LAST_USE_EVERY_MS = 10 * 60 * 1000
DEVICES = "devices"  # devices [device_id] {last_used}: the device's own last use, ms

Result = tuple[SyncState, list[Effect]]


def last_used(value: Any) -> int | None:
    """The `last_used` of a `devices` value, or None when there is none (or not a time)."""
    used = value.get("last_used") if isinstance(value, dict) else None
    ok = isinstance(used, int) and not isinstance(used, bool) and used >= 0
    return used if ok else None


def device_used(state: SyncState, event: SyncDeviceUsed) -> Result:
    """Write `devices [this device] {last_used: now}` when neither the synced state nor the
    changes waiting to be written hold a last use of this device from the last
    LAST_USE_EVERY_MS (a clock set back waits until it is past the last one again)."""
    index = (state.device_id,)
    times = [last_used(state.account.get(DEVICES, index))]
    times += [
        last_used(m.value) for m in state.pending if (m.collection, m.index) == (DEVICES, index)
    ]
    newest = max((t for t in times if t is not None), default=None)
    if newest is not None and event.now - newest < LAST_USE_EVERY_MS:
        return state, []
    mutation = Mutation(DEVICES, index, {"last_used": event.now}, event.now, state.device_id)
    state = replace(state, pending=(*state.pending, mutation))
    return state, [StoreSync(state)]


def rotation_wanted(state: SyncState) -> SyncState:
    """Read the log, then re-key, unless the log then holds a key in force after the version
    this device had read when it asked (another device rotated meanwhile: the compare-and-swap
    let one of two rotations through, and the other device takes the winner's key)."""
    return replace(state, rotate=True, fetch=True, rotate_after=state.account.version)


def rotation_settled(state: SyncState) -> SyncState:
    """After a read that passed: a wanted rotation is dropped when a key newer than the state
    it was asked on is in force already."""
    key = state.newest_key
    if state.rotate and key is not None and key.since_version > state.rotate_after:
        return replace(state, rotate=False)
    return state


def devices_listed(state: SyncState, event: SyncDevicesListed) -> Result:
    """The own devices that may hold the key are those listed and not suspended. One that was
    among them when this device last looked and is not now (logged itself out, removed by
    another device, dropped from a re-signed list) holds the current key: re-key. The first
    list a device sees only sets what it compares with next time; a device not among them
    itself is logged out and does nothing."""
    live = tuple(sorted(set(event.listed) - set(event.suspended)))
    if live == state.devices:
        return state, []
    left = set(state.devices) - set(live) - {state.device_id}
    known = bool(state.devices)
    state = replace(state, devices=live)
    if known and left and state.device_id in live:
        state = rotation_wanted(state)
    return state, [StoreSync(state)]
