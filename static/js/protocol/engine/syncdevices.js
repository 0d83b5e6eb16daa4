// The sync machine's rules about the account's own devices (docs/protocol.md section 22.8),
// mirror of protocol/engine/syncdevices.py: each device writes its own last use into the
// synced state, throttled; and a device that sees an own device leave asks for a new sync
// key, unless another device's rotation made since is already in the log. Pure functions over
// `SyncState`, called by `sync.js`'s `handle`.

import { Mutation } from "../syncentry.js";
import { StoreSync } from "./effects.js";

/** @typedef {import("./syncstate.js").SyncState} SyncState */
/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {import("./events.js").SyncDevicesListed} SyncDevicesListed */
/** @typedef {import("./events.js").SyncDeviceUsed} SyncDeviceUsed */
/** @typedef {[SyncState, Effect[]]} Result */

// A device in use writes its last use at most this often (and on load when the last one is
// older). Five devices in use all day make at most 720 patches a day: under the server's
// 1,000 patches between snapshots, so last use alone compacts the log at most about daily.
export const LAST_USE_EVERY_MS = 10 * 60 * 1000;
export const DEVICES = "devices"; // devices [device_id] {last_used}: the device's own last use, ms

/**
 * The `last_used` of a `devices` value, or null when there is none (or not a time).
 * @param {any} value @returns {number | null}
 */
export function lastUsed(value) {
  const used = value !== null && typeof value === "object" ? value.last_used : null;
  return Number.isSafeInteger(used) && used >= 0 ? used : null;
}

/**
 * Write `devices [this device] {last_used: now}` when neither the synced state nor the changes
 * waiting to be written hold a last use of this device from the last LAST_USE_EVERY_MS (a
 * clock set back waits until it is past the last one again).
 * @param {SyncState} state @param {SyncDeviceUsed} event @returns {Result}
 */
export function deviceUsed(state, event) {
  const index = [state.deviceId];
  const times = [lastUsed(state.account.get(DEVICES, index))];
  for (const m of state.pending) {
    if (m.collection === DEVICES && m.index.length === 1 && m.index[0] === state.deviceId) times.push(lastUsed(m.value));
  }
  const known = times.filter((t) => t !== null);
  const newest = known.length ? Math.max(...known) : null;
  if (newest !== null && event.now - newest < LAST_USE_EVERY_MS) return [state, []];
  const mutation = new Mutation(DEVICES, index, { last_used: event.now }, event.now, state.deviceId);
  state = state.with({ pending: [...state.pending, mutation] });
  return [state, [new StoreSync(state)]];
}

/**
 * Read the log, then re-key, unless the log then holds a key in force after the version this
 * device had read when it asked (another device rotated meanwhile: the compare-and-swap let
 * one of two rotations through, and the other device takes the winner's key).
 * @param {SyncState} state
 */
export function rotationWanted(state) {
  return state.with({ rotate: true, fetch: true, rotateAfter: state.account.version });
}

/**
 * After a read that passed: a wanted rotation is dropped when a key newer than the state it
 * was asked on is in force already.
 * @param {SyncState} state
 */
export function rotationSettled(state) {
  const key = state.newestKey;
  if (state.rotate && key !== null && key.sinceVersion > state.rotateAfter) return state.with({ rotate: false });
  return state;
}

/**
 * The own devices that may hold the key are those listed and not suspended. One that was
 * among them when this device last looked and is not now (logged itself out, removed by
 * another device, dropped from a re-signed list) holds the current key: re-key. The first
 * list a device sees only sets what it compares with next time; a device not among them
 * itself is logged out and does nothing.
 * @param {SyncState} state @param {SyncDevicesListed} event @returns {Result}
 */
export function devicesListed(state, event) {
  const suspended = new Set(event.suspended);
  const live = [...new Set(event.listed)].filter((d) => !suspended.has(d)).sort(byCodeUnit);
  if (live.length === state.devices.length && live.every((d, i) => d === state.devices[i])) return [state, []];
  const now = new Set(live);
  const left = state.devices.filter((d) => !now.has(d) && d !== state.deviceId);
  const known = state.devices.length > 0;
  state = state.with({ devices: live });
  if (known && left.length && now.has(state.deviceId)) state = rotationWanted(state);
  return [state, [new StoreSync(state)]];
}

/** Device ids are ASCII: their code units sort as Python sorts str. @param {string} a @param {string} b */
const byCodeUnit = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
