// Account state sync in the device engine (docs/protocol.md section 22.8), mirror of
// protocol/engine/sync.py: a sans-I/O machine of its own, `handle(SyncState, event) ->
// [SyncState, effects]`, beside the device engine's `handle` (whose state the adapters
// rebuild per event; the synced state may be megabytes).
//
// It reads the log (`GET /api/state?after=V`) and applies it with the checks of section 23,
// writes the person's changes as patches with compare-and-swap (`POST /api/state`), rebases
// them on what it missed, creates the first sync key and rotates it, and says what to store,
// what changed and what to send, and compares the checkpoints own devices exchange (section
// 23.8) with its own position. Randomness is the event's `seed` (32 fresh bytes from the
// adapter), expanded with the TestRng stream, so a scenario replays exactly.

import { applyEntry, buildPatch, buildSnapshot, Checkpoint } from "../accountstate.js";
import { b64uDecode, b64uEncode, bytesEqual, compareBytes } from "../encoding.js";
import {
  MalformedMessage,
  ProtocolError,
  SyncKeyUnknown,
  SyncLogForked,
  SyncRefused,
  SyncStaleState,
} from "../exceptions.js";
import { TestRng } from "../rng.js";
import { canonicalJson, isPlainObject } from "../strictjson.js";
import { decodeEntry, newSyncKey } from "../syncentry.js";
import { applyEntries, checkFetched, compareCheckpoint } from "../synclog.js";
import { HttpRequest, Notice, ShareSyncCheckpoint, ShareSyncKey, StoreSync, SyncChanged } from "./effects.js";
import {
  SyncAnswered,
  SyncCheckpointReceived,
  SyncDevicesListed,
  SyncDeviceUsed,
  SyncFetchWanted,
  SyncKeyReceived,
  SyncKeyShareWanted,
  SyncMutated,
  SyncRotateWanted,
} from "./events.js";
import { deviceUsed, devicesListed, rotationSettled, rotationWanted } from "./syncdevices.js";
import { bySince, keyFromJSON, mutationFromJSON, SyncRequest } from "./syncstate.js";

/** @typedef {import("./syncstate.js").SyncState} SyncState */
/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {import("./events.js").SyncEvent} SyncEvent */
/** @typedef {import("../accountstate.js").AccountState} AccountState */
/** @typedef {import("../accountstate.js").WrittenEntry} WrittenEntry */
/** @typedef {import("../syncentry.js").Mutation} Mutation */
/** @typedef {import("../syncentry.js").SyncKey} SyncKey */
/** @typedef {import("../rng.js").Rng} Rng */
/** @typedef {[SyncState, Effect[]]} Result */

export const STATE_PATH = "/api/state";
export const MAX_PATCH_MUTATIONS = 32; // a patch carries at most this many (and fewer if over 64 KiB)

const isUint = (/** @type {any} */ v) => Number.isSafeInteger(v) && v >= 0;

/** @param {SyncState} state @param {SyncEvent} event @returns {Result} */
export function handle(state, event) {
  const rng = TestRng(event.seed);
  /** @type {Effect[]} */
  let effects = [];
  if (state.writeFailed && !(event instanceof SyncAnswered)) state = state.with({ writeFailed: false }); // another event: writing may be tried again
  if (event instanceof SyncMutated) [state, effects] = mutated(state, event);
  else if (event instanceof SyncFetchWanted) {
    if (event.version === null) state = reconnected(state);
    else if (event.version > state.account.version) state = state.with({ fetch: true });
  } else if (event instanceof SyncKeyReceived) [state, effects] = keyReceived(state, event);
  else if (event instanceof SyncCheckpointReceived) [state, effects] = checkpointReceived(state, event);
  else if (event instanceof SyncKeyShareWanted) state = state.with({ share: true });
  else if (event instanceof SyncRotateWanted) state = rotationWanted(state);
  else if (event instanceof SyncDevicesListed) [state, effects] = devicesListed(state, event);
  else if (event instanceof SyncDeviceUsed) [state, effects] = deviceUsed(state, event);
  else if (event instanceof SyncAnswered) [state, effects] = answered(state, event);
  else throw new TypeError(`not a sync event: ${event}`);
  let more;
  [state, more] = next(state, rng);
  return [state, storedOnce(state, [...effects, ...more])];
}

/** One StoreSync of the final state, first (stored before any request goes out). @param {SyncState} state @param {Effect[]} effects */
function storedOnce(state, effects) {
  const rest = effects.filter((e) => !(e instanceof StoreSync));
  return rest.length === effects.length ? rest : [new StoreSync(state), ...rest];
}

/** @param {SyncState} state @param {SyncMutated} event @returns {Result} */
function mutated(state, event) {
  const added = [];
  for (const [collection, index, value] of event.mutations) {
    const raw = { collection, index: [...index], value, timestamp: event.now, device: state.deviceId };
    try {
      added.push(mutationFromJSON(raw));
    } catch (error) {
      if (!(error instanceof ProtocolError || error instanceof TypeError)) throw error;
      const data = { collection, error: error.name };
      return [state, [new Notice(state.accountId, "sync_mutation_invalid", data, error.message)]];
    }
  }
  state = state.with({ pending: [...state.pending, ...added] });
  return [state, [new StoreSync(state)]];
}

/**
 * The socket (re)connected or the page loaded: a request in flight is given up (its answer,
 * if one comes, is ignored; a write that was stored is read back by the fetch).
 * @param {SyncState} state
 */
function reconnected(state) {
  const { request } = state;
  if (request !== null && request.newKey !== null) state = state.with({ proposed: request.newKey });
  return state.with({ request: null, fetch: true });
}

/**
 * A key joins the ring once (by key id); its checkpoint is where the sender was when it sent
 * it, so the log must reach at least that far (section 23.8). Then read the log.
 * @param {SyncState} state @param {SyncKeyReceived} event @returns {Result}
 */
function keyReceived(state, event) {
  const { body } = event;
  const key = keyFromJSON(body);
  if (state.keys.every((k) => !bytesEqual(k.keyId, key.keyId))) {
    state = state.with({ keys: bySince([...state.keys, key]) });
  }
  const checkpoint = checkpointOf(body);
  if (state.checkpoint === null || checkpoint.version > state.checkpoint.version) state = state.with({ checkpoint });
  state = state.with({ fetch: true });
  return [state, [new StoreSync(state)]];
}

/**
 * An own device's position (section 23.8). Behind it: keep it and read the log (after the
 * last page `checkFetched` refuses a log that ends before it, or differs at it). Another
 * chain at a version both know: the server forked the log; the checkpoint is kept, so every
 * later read is refused again. Same or ahead: nothing, and nothing is sent back (only a
 * change of this device's state is announced).
 * @param {SyncState} state @param {SyncCheckpointReceived} event @returns {Result}
 */
function checkpointReceived(state, event) {
  const checkpoint = checkpointOf(event.body);
  let standing;
  try {
    standing = compareCheckpoint(state.account, checkpoint);
  } catch (error) {
    if (!(error instanceof SyncLogForked)) throw error;
    return refusedWith(state.with({ checkpoint }), error);
  }
  if (standing !== "behind") return [state, []];
  if (state.checkpoint === null || checkpoint.version > state.checkpoint.version) state = state.with({ checkpoint });
  state = state.with({ fetch: true });
  return [state, [new StoreSync(state)]];
}

/** @param {Record<string, any>} body */
function checkpointOf(body) {
  return new Checkpoint(Number(body.version), b64uDecode(body.chain, { length: 32 }));
}

/**
 * The state is left as it was: the device keeps its last good state and says why.
 * @param {SyncState} state @param {Error} error @returns {Result}
 */
function refusedWith(state, error) {
  state = state.with({ refused: [error.name, error.message] });
  const data = { error: error.name, message: error.message };
  // a key still to come from an own device is no misbehaviour of the server's
  const code = error instanceof SyncKeyUnknown ? "sync_key_awaited" : "sync_refused";
  return [state, [new StoreSync(state), new Notice(state.accountId, code, data)]];
}

/** @param {SyncState} state @param {SyncAnswered} event @returns {Result} */
function answered(state, event) {
  const { request } = state;
  if (request === null || request.requestId !== event.requestId) return [state, []]; // an answer to nothing this machine asked: ignored
  state = state.with({ request: null });
  if (request.kind === "fetch") return fetched(state, event);
  return written(state, request, event);
}

/** @param {SyncAnswered} event @returns {[string, Record<string, any>]} */
function errorOf(event) {
  const error = isPlainObject(event.body) ? event.body.error : null;
  const code = isPlainObject(error) ? error.code : null;
  const data = isPlainObject(error) ? error.data : null;
  return [code || `http_${event.status}`, isPlainObject(data) ? data : {}];
}

/**
 * The server's page (section 19.3): anything else is a MalformedMessage refusal.
 * @param {any} body @returns {[number, [number, Uint8Array][], boolean]}
 */
function listing(body) {
  if (!(isPlainObject(body) && isUint(body.version) && Array.isArray(body.entries) && typeof body.more === "boolean")) {
    throw new MalformedMessage("state log page: expected {version, entries, more}");
  }
  /** @type {[number, Uint8Array][]} */
  const entries = [];
  for (const item of body.entries) {
    if (!(isPlainObject(item) && isUint(item.version))) {
      throw new MalformedMessage("state log page: expected entries with a version");
    }
    entries.push([item.version, b64uDecode(item.blob, { what: "state entry" })]);
  }
  return [body.version, entries, body.more];
}

/** @param {SyncState} state @param {SyncAnswered} event @returns {Result} */
function fetched(state, event) {
  if (event.status !== 200) {
    const [code] = errorOf(event);
    return [state, [new Notice(state.accountId, "sync_unavailable", { status: event.status, code })]];
  }
  const before = state.account;
  let account;
  let more;
  try {
    let serverVersion;
    let entries;
    [serverVersion, entries, more] = listing(event.body);
    state = settleProposed(state, entries);
    checkFloor(state, entries);
    account = applyEntries(before, entries, { keys: state.keys });
    if (!more) checkFetched(account, { serverVersion, keys: state.keys, checkpoint: state.checkpoint });
  } catch (error) {
    if (!(error instanceof SyncRefused || error instanceof MalformedMessage)) throw error;
    return refusedWith(state, error);
  }
  const moved = account.version !== before.version || !bytesEqual(account.chain, before.chain);
  // a read that moved this device tells the others where it is now (23.8)
  state = state.with({ account, refused: null, announce: state.announce || moved });
  if (!more) state = rotationSettled(state);
  /** @type {Effect[]} */
  let moreEffects = [];
  if (more) [state, moreEffects] = request(state, "fetch", account.version);
  /** @type {Effect[]} */
  const effects = [new StoreSync(state)];
  const changes = changesOf(before, account, []);
  if (changes.length) effects.push(new SyncChanged(changes));
  return [state, [...effects, ...moreEffects]];
}

/**
 * The newest key's first entry is a snapshot at its since_version (23.2), and the server lists
 * nothing below its latest snapshot (19.3): an entry listed below it is a stale log (an old
 * snapshot served to a device that holds only newer keys), not a key to await.
 * @param {SyncState} state @param {[number, Uint8Array][]} entries
 */
function checkFloor(state, entries) {
  const key = state.newestKey;
  for (const [version] of entries) {
    if (key !== null && version < key.sinceVersion) {
      throw new SyncStaleState(
        `the server serves a stale state: the newest sync key is in force from version ${key.sinceVersion}, the log it served holds version ${version}`,
      );
    }
  }
}

/**
 * A key this device created joins the ring when the log holds an entry under it (its write
 * was stored after all), and is forgotten once the log holds another entry at or past its
 * version (that write can never be stored now: compare-and-swap). A log read to its end
 * without it proves nothing: the write may still be on its way to the server (the page that
 * sent it was left), so the key is kept and the next write is made under it again (whichever
 * of the two the server stores, this device holds its key).
 * @param {SyncState} state @param {[number, Uint8Array][]} entries
 */
function settleProposed(state, entries) {
  const { proposed } = state;
  if (proposed === null) return state;
  const writtenEntries = [];
  for (const [, blob] of entries) {
    try {
      writtenEntries.push(decodeEntry(blob));
    } catch (error) {
      if (!(error instanceof MalformedMessage)) throw error;
    }
  }
  if (writtenEntries.some((e) => bytesEqual(e.keyId, proposed.keyId))) {
    return state.with({ keys: bySince([...state.keys, proposed]), proposed: null, share: true, rotate: false });
  }
  if (writtenEntries.some((e) => e.version >= proposed.sinceVersion)) return state.with({ proposed: null });
  return state;
}

/** @param {SyncState} state @param {SyncRequest} req @param {SyncAnswered} event @returns {Result} */
function written(state, req, event) {
  if (event.status === 201) {
    const keys = req.newKey === null ? state.keys : [...state.keys, req.newKey];
    const before = state.account;
    const account = applyEntry(before, /** @type {Uint8Array} */ (req.blob), { version: req.version, keys });
    const writtenMutations = state.pending.slice(0, req.count);
    let { proposed } = state;
    if (proposed !== null && req.version >= proposed.sinceVersion) proposed = null; // stored under it (a write made again), or the log is past it
    state = state.with({
      keys: bySince(keys),
      account,
      pending: state.pending.slice(req.count),
      compact: state.compact && req.entry !== "snapshot",
      announce: true, // each entry written is announced to the own devices (23.8)
      proposed,
    });
    // a key is sent only once the entry at its since_version is stored (23.2)
    if (req.newKey !== null) state = state.with({ rotate: false, share: true });
    /** @type {Effect[]} */
    const effects = [new StoreSync(state)];
    const changes = changesOf(before, account, writtenMutations);
    if (changes.length) effects.push(new SyncChanged(changes));
    return [state, effects];
  }
  const [code] = errorOf(event);
  /** @type {Effect[]} */
  const effects = [];
  if (req.newKey !== null) {
    state = state.with({ proposed: req.newKey });
    effects.push(new StoreSync(state));
  }
  if (event.status === 409 && code === "state_version_conflict") return [state.with({ fetch: true }), effects]; // read what was missed, then write again
  if (event.status === 409 && code === "state_compaction_needed") return [state.with({ compact: true }), effects];
  // not again at once: a device offline would otherwise write in a loop
  state = state.with({ writeFailed: true });
  return [state, [new StoreSync(state), ...effects, new Notice(state.accountId, "sync_write_failed", { status: event.status, code })]];
}

/**
 * What to ask the server next, if nothing is in flight: read, then re-key, compact, write
 * the person's changes, share the key, and last announce the checkpoint: once, when nothing
 * else is left (a key carries the checkpoint too), so that writes and reads in a row send one.
 * @param {SyncState} state @param {Rng} rng @returns {Result}
 */
function next(state, rng) {
  if (state.request !== null) return [state, []];
  if (state.fetch) return request(state.with({ fetch: false }), "fetch", state.account.version);
  if (state.refused !== null) return [state, []]; // no write on a log this device refused; the next fetch may pass
  if (state.writeFailed) return [state, []];
  const version = state.account.version + 1;
  const key = state.newestKey;
  if (key === null || state.rotate) {
    if (key === null && state.account.version > 0) return [state, []]; // the account's key comes from an own device (23.2)
    if (key === null && !(state.pending.length || state.share)) return [state, []];
    const { proposed } = state;
    // a proposed key's write may still reach the log: written again under the same key
    const newKey = proposed !== null && proposed.sinceVersion === version ? proposed : newSyncKey(rng, { sinceVersion: version });
    return write(state, buildSnapshot(state.account, { version, key: newKey, rng }), 0, newKey);
  }
  if (key.sinceVersion > version) return request(state, "fetch", state.account.version); // the log must reach it
  if (state.compact) return write(state, buildSnapshot(state.account, { version, key, rng }));
  if (state.pending.length) {
    const [entry, count] = patchOf(state, version, key, rng);
    return write(state, entry, count);
  }
  if (state.share) {
    const body = {
      key_id: b64uEncode(key.keyId),
      key: b64uEncode(key.key),
      since_version: key.sinceVersion,
      ...checkpointBody(state.account),
    };
    state = state.with({ share: false, announce: false });
    return [state, [new StoreSync(state), new ShareSyncKey(body)]];
  }
  if (state.announce) {
    state = state.with({ announce: false });
    return [state, [new StoreSync(state), new ShareSyncCheckpoint(checkpointBody(state.account))]];
  }
  return [state, []];
}

/** @param {AccountState} account */
function checkpointBody(account) {
  return { version: account.version, chain: b64uEncode(account.chain) };
}

/**
 * The oldest pending mutations that fit in one patch (MAX_PATCH_BYTES).
 * @param {SyncState} state @param {number} version @param {SyncKey} key @param {Rng} rng
 * @returns {[WrittenEntry, number]}
 */
function patchOf(state, version, key, rng) {
  let count = Math.min(state.pending.length, MAX_PATCH_MUTATIONS);
  for (;;) {
    try {
      return [buildPatch(state.account, state.pending.slice(0, count), { version, key, rng }), count];
    } catch (error) {
      if (!(error instanceof MalformedMessage) || count === 1) throw error;
      count = Math.floor(count / 2);
    }
  }
}

/**
 * @param {SyncState} state @param {WrittenEntry} entry @param {number} [count]
 * @param {SyncKey | null} [newKey] @returns {Result}
 */
function write(state, entry, count = 0, newKey = null) {
  const body = { version: entry.version, kind: entry.kind, blob: b64uEncode(entry.blob) };
  const requestId = `s${state.nextRequest}`;
  const req = new SyncRequest({
    requestId,
    kind: "write",
    version: entry.version,
    entry: entry.kind,
    blob: entry.blob,
    count,
    newKey,
  });
  state = state.with({ request: req, nextRequest: state.nextRequest + 1 });
  return [state, [new StoreSync(state), new HttpRequest(requestId, "POST", STATE_PATH, body)]];
}

/** @param {SyncState} state @param {string} kind @param {number} after @returns {Result} */
function request(state, kind, after) {
  const requestId = `s${state.nextRequest}`;
  state = state.with({
    request: new SyncRequest({ requestId, kind, version: after }),
    nextRequest: state.nextRequest + 1,
  });
  return [state, [new HttpRequest(requestId, "GET", `${STATE_PATH}?after=${after}`)]];
}

/**
 * Every (collection, index) whose value differs, and those this device just wrote (its view
 * showed its own value, which a later writer may have beaten).
 * @param {AccountState} before @param {AccountState} after @param {Mutation[]} writtenMutations
 */
function changesOf(before, after, writtenMutations) {
  const same = (/** @type {any} */ a, /** @type {any} */ b) => bytesEqual(canonicalJson(a), canonicalJson(b));
  /** @type {Map<string, [string, string[]]>} */
  const keys = new Map();
  const add = (/** @type {string} */ c, /** @type {string[]} */ i) => keys.set(JSON.stringify([c, i]), [c, [...i]]);
  for (const r of after.records.values()) {
    if (!same(before.get(r.collection, r.index), r.value)) add(r.collection, r.index);
  }
  for (const r of before.records.values()) {
    if (!after.records.has(JSON.stringify([r.collection, r.index]))) add(r.collection, r.index);
  }
  for (const m of writtenMutations) add(m.collection, m.index);
  const sortKey = (/** @type {[string, string[]]} */ [c, i]) => canonicalJson([c, i]);
  return [...keys.values()]
    .sort((a, b) => compareBytes(sortKey(a), sortKey(b)))
    .map(([collection, index]) => ({ collection, index, value: after.get(collection, index) }));
}
