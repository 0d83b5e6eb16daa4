// Reading the account's log as a whole (docs/protocol.md section 23.8), mirror of
// protocol/synclog.py: a listing applied in order, the checks after a fetch, and checkpoints
// compared between own devices.

import { applyEntry } from "./accountstate.js";
import {
  MalformedMessage,
  SyncEntriesReordered,
  SyncEntryMissing,
  SyncLogForked,
  SyncStaleState,
} from "./exceptions.js";
import * as primitives from "./primitives.js";
import { decodeEntry, ZERO_CHAIN } from "./syncentry.js";

/** @typedef {import("./accountstate.js").AccountState} AccountState */
/** @typedef {import("./accountstate.js").Checkpoint} Checkpoint */
/** @typedef {import("./syncentry.js").SyncKey} SyncKey */

/**
 * Apply a listing's [version, blob] pairs in order, all or nothing; an entry missing here
 * that comes later in the same listing is SyncEntriesReordered.
 * @param {AccountState} state
 * @param {[number, Uint8Array][]} entries
 * @param {{keys: SyncKey[]}} options
 * @returns {AccountState}
 */
export function applyEntries(state, entries, { keys }) {
  const written = entries.map(([, blob]) => {
    try {
      return decodeEntry(blob).version;
    } catch (error) {
      if (error instanceof MalformedMessage) return null;
      throw error;
    }
  });
  entries.forEach(([version, blob], position) => {
    try {
      state = applyEntry(state, blob, { version, keys });
    } catch (error) {
      const expected = state.version + 1;
      if (error instanceof SyncEntryMissing && written.slice(position + 1).includes(expected)) {
        throw new SyncEntriesReordered(
          `the server reordered the changes: version ${written[position]} came before ` +
            `version ${expected}`,
        );
      }
      throw error;
    }
  });
  return state;
}

/**
 * Where an own device's checkpoint stands against this state: "same", "ahead" (this device
 * is past it and agrees), "behind" (fetch, then compare again) or "unknown" (too old to
 * remember); SyncLogForked when the chains differ.
 * @param {AccountState} state
 * @param {Checkpoint} checkpoint
 * @returns {string}
 */
export function compareCheckpoint(state, checkpoint) {
  if (checkpoint.version > state.version) return "behind";
  let known;
  if (checkpoint.version === state.version) known = state.chain;
  else if (checkpoint.version === 0) known = ZERO_CHAIN;
  else known = state.recent.find(([v]) => v === checkpoint.version)?.[1];
  if (known === undefined) return "unknown";
  if (!primitives.macEqual(known, checkpoint.chain)) {
    throw new SyncLogForked(
      "the server forked the log: another own device has a different change at version " +
        `${checkpoint.version}`,
    );
  }
  return checkpoint.version === state.version ? "same" : "ahead";
}

/**
 * After the last page of a fetch: the state must reach the server's version, the newest sync
 * key's since_version and an own device's checkpoint, and agree with the checkpoint.
 * @param {AccountState} state
 * @param {{serverVersion: number, keys: SyncKey[], checkpoint?: Checkpoint | null}} options
 */
export function checkFetched(state, { serverVersion, keys, checkpoint = null }) {
  if (serverVersion > state.version) {
    throw new SyncEntryMissing(
      `the server left out changes: its log is at version ${serverVersion}, it served ` +
        `up to version ${state.version}`,
    );
  }
  if (serverVersion < state.version) {
    throw new SyncStaleState(
      `the server serves a stale state: version ${serverVersion}, this device is at ` +
        `version ${state.version}`,
    );
  }
  const floor = Math.max(0, ...keys.map((k) => k.sinceVersion));
  if (floor > state.version) {
    throw new SyncStaleState(
      "the server serves a stale state: the newest sync key is in force from version " +
        `${floor}, the log ends at version ${state.version}`,
    );
  }
  if (checkpoint !== null) {
    if (checkpoint.version > state.version) {
      throw new SyncStaleState(
        `the server serves a stale state: an own device is at version ${checkpoint.version}, ` +
          `the log ends at version ${state.version}`,
      );
    }
    compareCheckpoint(state, checkpoint);
  }
}
