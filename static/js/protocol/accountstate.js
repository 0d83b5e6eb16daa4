// The synced account state as a value, and how log entries change it (docs/protocol.md
// section 23), mirror of protocol/accountstate.py: build a patch or a snapshot, and apply
// one, refusing what a server may have done to the log.

import { b64uDecode, b64uEncode, compareBytes, utf8Encode } from "./encoding.js";
import { canonicalJson, isPlainObject } from "./strictjson.js";
import {
  MalformedMessage,
  SyncEntryForged,
  SyncEntryMissing,
  SyncEntryReplayed,
  SyncKeyRetired,
  SyncKeyUnknown,
  SyncLogForked,
  SyncStaleState,
  SyncStateMismatch,
} from "./exceptions.js";
import * as primitives from "./primitives.js";
import { EMPTY_LTHASH, LTHASH_BYTES, lthashUpdate, stateHash } from "./statehash.js";
import {
  decodeEntry,
  encodeEntry,
  encodeMutation,
  entryMac,
  indexMac,
  Mutation,
  openRecord,
  sealRecord,
  syncSubkeys,
  ZERO_CHAIN,
} from "./syncentry.js";

/** @typedef {import("./rng.js").Rng} Rng */
/** @typedef {import("./syncentry.js").SyncKey} SyncKey */
/** @typedef {import("./syncentry.js").SyncEntry} SyncEntry */
/** @typedef {string} RecordKey */

// How many (version, chain) pairs a state remembers for comparing older checkpoints.
export const RECENT_CHAINS = 64;

/** @param {string} collection @param {string[]} index @returns {RecordKey} */
function recordKey(collection, index) {
  return JSON.stringify([collection, index]);
}

/**
 * What the state holds at one (collection, index): the winning mutation (value null is a
 * tombstone) and its value MAC, the element it contributes to the state hash.
 */
export class SyncRecord {
  /**
   * @param {string} collection
   * @param {string[]} index
   * @param {Record<string, any> | null} value
   * @param {number} timestamp
   * @param {string} device
   * @param {Uint8Array} valueMac
   */
  constructor(collection, index, value, timestamp, device, valueMac) {
    this.collection = collection;
    this.index = index;
    this.value = value;
    this.timestamp = timestamp;
    this.device = device;
    this.valueMac = valueMac;
  }
}

/** A device's position in the log, exchanged between own devices (section 23.8). */
export class Checkpoint {
  /** @param {number} version @param {Uint8Array} chain */
  constructor(version, chain) {
    this.version = version;
    this.chain = chain;
  }
}

/** @param {boolean} condition @param {string} message */
function expect(condition, message) {
  if (!condition) throw new MalformedMessage(message);
}

/** The state after the entry at `version`; `chain` is that entry's MAC (zero at 0). */
export class AccountState {
  /**
   * @param {{version?: number, chain?: Uint8Array, lthash?: Uint8Array,
   *          records?: Map<RecordKey, SyncRecord>, recent?: [number, Uint8Array][]}} [fields]
   */
  constructor({
    version = 0,
    chain = ZERO_CHAIN,
    lthash = EMPTY_LTHASH,
    records = new Map(),
    recent = [],
  } = {}) {
    this.version = version;
    this.chain = chain;
    this.lthash = lthash;
    this.records = records;
    this.recent = recent;
  }

  /** @returns {Uint8Array} */
  get hash() {
    return stateHash(this.lthash);
  }

  /** @returns {Checkpoint} */
  get checkpoint() {
    return new Checkpoint(this.version, this.chain);
  }

  /**
   * The value at (collection, index); null when absent or removed.
   * @param {string} collection
   * @param {string[]} index
   * @returns {Record<string, any> | null}
   */
  get(collection, index) {
    return this.records.get(recordKey(collection, index))?.value ?? null;
  }

  /**
   * Every present (not removed) value of a collection, as [index, value] pairs.
   * @param {string} name
   * @returns {[string[], Record<string, any>][]}
   */
  collection(name) {
    /** @type {[string[], Record<string, any>][]} */
    const out = [];
    for (const r of this.records.values()) {
      if (r.collection === name && r.value !== null) out.push([r.index, r.value]);
    }
    return out;
  }

  toJSON() {
    const sortKey = (/** @type {SyncRecord} */ r) => canonicalJson([r.collection, r.index]);
    const records = [...this.records.values()].sort((a, b) => compareBytes(sortKey(a), sortKey(b)));
    return {
      version: this.version,
      chain: b64uEncode(this.chain),
      lthash: b64uEncode(this.lthash),
      recent: this.recent.map(([v, c]) => [v, b64uEncode(c)]),
      records: records.map((r) => ({
        collection: r.collection,
        index: [...r.index],
        value: r.value,
        timestamp: r.timestamp,
        device: r.device,
        value_mac: b64uEncode(r.valueMac),
      })),
    };
  }

  /**
   * Strict (MalformedMessage), as every serialized state of this protocol.
   * @param {any} data
   * @returns {AccountState}
   */
  static fromJSON(data) {
    const keys = isPlainObject(data) ? Object.keys(data).sort().join(",") : "";
    expect(
      keys === "chain,lthash,recent,records,version",
      "account state: expected keys chain, lthash, recent, records, version",
    );
    expect(Number.isSafeInteger(data.version) && data.version >= 0, "account state: expected an integer version");
    expect(Array.isArray(data.recent), "account state: expected a recent list");
    expect(Array.isArray(data.records), "account state: expected a records list");
    /** @type {[number, Uint8Array][]} */
    const recent = data.recent.map((/** @type {any} */ item) => {
      expect(
        Array.isArray(item) && item.length === 2 && Number.isSafeInteger(item[0]) && item[0] >= 0,
        "account state: expected [version, chain] pairs",
      );
      return [item[0], b64uDecode(item[1], { length: 32, what: "recent chain" })];
    });
    /** @type {Map<RecordKey, SyncRecord>} */
    const records = new Map();
    for (const item of data.records) {
      const itemKeys = isPlainObject(item) ? Object.keys(item).sort().join(",") : "";
      expect(
        itemKeys === "collection,device,index,timestamp,value,value_mac",
        "account state: expected record keys",
      );
      const valueMac = b64uDecode(item.value_mac, { length: 32, what: "value MAC" });
      const m = new Mutation(item.collection, item.index, item.value, item.timestamp, item.device);
      encodeMutation(m);
      records.set(recordKey(m.collection, m.index), record(m, valueMac));
    }
    return new AccountState({
      version: data.version,
      chain: b64uDecode(data.chain, { length: 32, what: "chain" }),
      lthash: b64uDecode(data.lthash, { length: LTHASH_BYTES, what: "lthash" }),
      records,
      recent,
    });
  }
}

/** An entry to POST as {version, kind, blob}, and the writer's state once it is stored. */
export class WrittenEntry {
  /** @param {string} kind @param {number} version @param {Uint8Array} blob @param {AccountState} state */
  constructor(kind, version, blob, state) {
    this.kind = kind;
    this.version = version;
    this.blob = blob;
    this.state = state;
  }
}

/** @param {Mutation} m @param {Uint8Array} valueMac @returns {SyncRecord} */
function record(m, valueMac) {
  return new SyncRecord(m.collection, [...m.index], m.value, m.timestamp, m.device, valueMac);
}

/**
 * Last writer wins by (timestamp, device id as UTF-8 bytes); on a tie the later entry in the
 * log wins, which every device sees in the same order (section 23.6).
 * @param {Mutation | SyncRecord} newer
 * @param {SyncRecord} old
 * @returns {boolean}
 */
export function supersedes(newer, old) {
  if (newer.timestamp !== old.timestamp) return newer.timestamp > old.timestamp;
  return compareBytes(utf8Encode(newer.device), utf8Encode(old.device)) >= 0;
}

/**
 * @param {AccountState} state
 * @param {Iterable<[Mutation, Uint8Array]>} opened
 * @returns {[Map<RecordKey, SyncRecord>, Uint8Array]}
 */
function merge(state, opened) {
  const records = new Map(state.records);
  const added = [];
  const removed = [];
  for (const [mutation, valueMac] of opened) {
    const key = recordKey(mutation.collection, mutation.index);
    const old = records.get(key);
    if (old !== undefined) {
      if (!supersedes(mutation, old)) continue; // a late older write loses
      removed.push(old.valueMac);
    }
    records.set(key, record(mutation, valueMac));
    added.push(valueMac);
  }
  return [records, lthashUpdate(state.lthash, { add: added, remove: removed })];
}

/**
 * @param {AccountState} state
 * @param {number} version
 * @param {Uint8Array} chain
 * @param {Map<RecordKey, SyncRecord>} records
 * @param {Uint8Array} lthash
 * @returns {AccountState}
 */
function advance(state, version, chain, records, lthash) {
  /** @type {[number, Uint8Array][]} */
  const recent = state.version ? [...state.recent, [state.version, state.chain]] : [...state.recent];
  return new AccountState({ version, chain, lthash, records, recent: recent.slice(-RECENT_CHAINS) });
}

/** @param {AccountState} state @param {number} version @param {SyncKey} key */
function checkWriterKey(state, version, key) {
  expect(
    version === state.version + 1,
    `entry: expected version ${state.version + 1} (the state's next), got ${version}`,
  );
  expect(
    key.sinceVersion <= version,
    `entry: the sync key is in force from version ${key.sinceVersion}, not ${version}`,
  );
}

/**
 * Seal each mutation in order (rng(24) each) into the patch at `version` (the state's next);
 * the state in the result has them applied by the conflict rule.
 * @param {AccountState} state
 * @param {Mutation[]} mutations
 * @param {{version: number, key: SyncKey, rng: Rng}} options
 * @returns {WrittenEntry}
 */
export function buildPatch(state, mutations, { version, key, rng }) {
  checkWriterKey(state, version, key);
  const subkeys = syncSubkeys(key);
  const sealed = mutations.map((m) => sealRecord(subkeys, m, rng));
  const [records, lthash] = merge(
    state,
    mutations.map((m, i) => [m, sealed[i][1]]),
  );
  return written("patch", state, key, version, sealed, records, lthash);
}

/**
 * Every record (tombstones too) sealed again under `key`, in ascending index-MAC order
 * (rng(24) each in that order): the whole state at `version`, e.g. after a key rotation.
 * @param {AccountState} state
 * @param {{version: number, key: SyncKey, rng: Rng}} options
 * @returns {WrittenEntry}
 */
export function buildSnapshot(state, { version, key, rng }) {
  checkWriterKey(state, version, key);
  const subkeys = syncSubkeys(key);
  const ordered = [...state.records.values()]
    .map((r) => /** @type {[Uint8Array, SyncRecord]} */ ([indexMac(subkeys, r.collection, r.index), r]))
    .sort(([a], [b]) => compareBytes(a, b))
    .map(([, r]) => r);
  const mutations = ordered.map((r) => new Mutation(r.collection, r.index, r.value, r.timestamp, r.device));
  const sealed = mutations.map((m) => sealRecord(subkeys, m, rng));
  /** @type {Map<RecordKey, SyncRecord>} */
  const records = new Map(
    mutations.map((m, i) => [recordKey(m.collection, m.index), record(m, sealed[i][1])]),
  );
  const lthash = lthashUpdate(EMPTY_LTHASH, { add: sealed.map(([, vm]) => vm) });
  return written("snapshot", state, key, version, sealed, records, lthash);
}

/**
 * The entry at `version` after `state` (chained to its last entry), and the state it makes.
 * @param {"patch" | "snapshot"} kind @param {AccountState} state @param {SyncKey} key
 * @param {number} version @param {[any, Uint8Array][]} sealed @param {Map<RecordKey, SyncRecord>} records
 * @param {Uint8Array} lthash
 * @returns {WrittenEntry}
 */
function written(kind, state, key, version, sealed, records, lthash) {
  const blob = encodeEntry({
    kind,
    key,
    version,
    previous: state.chain,
    stateHash: stateHash(lthash),
    records: sealed.map(([r]) => r),
  });
  return new WrittenEntry(kind, version, blob, advance(state, version, blob.slice(-32), records, lthash));
}

/** @param {SyncEntry} entry @param {SyncKey[]} keys @returns {SyncKey} */
function entryKey(entry, keys) {
  const key = keys.find((k) => primitives.macEqual(k.keyId, entry.keyId));
  if (key === undefined) {
    throw new SyncKeyUnknown(
      `the change listed at version ${entry.version} is under a sync key this device ` +
        "does not hold (yet)",
    );
  }
  return key;
}

/** @param {SyncEntry} entry @param {SyncKey} key @param {SyncKey[]} keys */
function checkKeyInForce(entry, key, keys) {
  if (key.sinceVersion > entry.version) {
    throw new SyncKeyRetired(
      `the change at version ${entry.version} is under a sync key in force only from ` +
        `version ${key.sinceVersion}`,
    );
  }
  const newer = keys
    .map((k) => k.sinceVersion)
    .filter((since) => key.sinceVersion < since && since <= entry.version);
  if (newer.length) {
    throw new SyncKeyRetired(
      `the change at version ${entry.version} is under a sync key retired at version ` +
        `${Math.min(...newer)}`,
    );
  }
}

/** @param {AccountState} state @param {SyncEntry} entry */
function checkPosition(state, entry) {
  const expected = state.version + 1;
  if (entry.kind === "patch" && entry.version <= state.version) {
    throw new SyncEntryReplayed(
      `the server replayed an old change: version ${entry.version} again, this device ` +
        `is at version ${state.version}`,
    );
  }
  if (entry.kind === "patch" && entry.version > expected) {
    throw new SyncEntryMissing(
      `the server left out a change: expected version ${expected}, got version ${entry.version}`,
    );
  }
  if (entry.kind === "snapshot" && entry.version <= state.version) {
    throw new SyncStaleState(
      `the server served a stale snapshot: version ${entry.version}, this device is at ` +
        `version ${state.version}`,
    );
  }
  if (entry.version === expected && !primitives.macEqual(entry.previous, state.chain)) {
    throw new SyncLogForked(
      `the server forked the log: the change at version ${entry.version} follows another ` +
        `version ${state.version} than this device's`,
    );
  }
}

/**
 * The state after the entry the server listed at `version`; throws a SyncRefused subclass
 * (or MalformedMessage) naming the first failed check of section 23.7.
 * @param {AccountState} state
 * @param {Uint8Array} blob
 * @param {{version: number, keys: SyncKey[]}} options
 * @returns {AccountState}
 */
export function applyEntry(state, blob, { version, keys }) {
  const entry = decodeEntry(blob);
  expect(Number.isSafeInteger(version) && version >= 0, `entry: expected a listed version, got ${version}`);
  const key = entryKey(entry, keys);
  const subkeys = syncSubkeys(key);
  if (!primitives.macEqual(entryMac(subkeys, entry.signed), entry.mac)) {
    throw new SyncEntryForged(
      `the change listed at version ${version} was altered or not written by an own ` +
        "device (its MAC does not verify)",
    );
  }
  checkKeyInForce(entry, key, keys);
  checkPosition(state, entry);
  if (entry.version !== version) {
    throw new SyncEntryForged(
      `the server listed the change written as version ${entry.version} at version ${version}`,
    );
  }
  const opened = entry.records.map((r) => openRecord(subkeys, r));
  let records;
  let lthash;
  if (entry.kind === "patch") {
    [records, lthash] = merge(state, opened);
  } else {
    records = new Map(opened.map(([m, vm]) => [recordKey(m.collection, m.index), record(m, vm)]));
    lthash = lthashUpdate(EMPTY_LTHASH, { add: opened.map(([, vm]) => vm) });
  }
  if (!primitives.macEqual(stateHash(lthash), entry.stateHash)) {
    throw new SyncStateMismatch(
      `after version ${entry.version} this device's state differs from the writer's`,
    );
  }
  return advance(state, entry.version, entry.mac, records, lthash);
}
