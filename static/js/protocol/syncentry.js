// Account-state sync on the wire (docs/protocol.md section 23), mirror of
// protocol/syncentry.py: the sync key and its sub-keys, a mutation and its sealed record, and
// the patch or snapshot entry around them.

import { bytesEqual, compareBytes, concatBytes, encStr, label, Reader, u8, u32, u64, utf8Encode } from "./encoding.js";
import { canonicalJson, isPlainObject, parseJson } from "./strictjson.js";
import { DecryptionFailed, InvalidJson, MalformedMessage, SyncEntryForged } from "./exceptions.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./rng.js").Rng} Rng */

export const SYNC_FORMAT = 1;
export const ENTRY_KINDS = Object.freeze(["patch", "snapshot"]); // u8 1 and 2 on the wire
export const MAX_PATCH_BYTES = 65536;
export const MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024;
export const MAX_RECORD_BYTES = 16384;
export const MAX_INDEX_PARTS = 8;
export const MAX_INDEX_BYTES = 1024;
export const MAX_DEVICE_ID_BYTES = 64;
// The collections of this version; a decoder accepts any name of the same form, so a newer
// device's collection still counts in the state hash of an older one.
export const COLLECTIONS = Object.freeze([
  "archived",
  "blocked",
  "contacts",
  "conversations",
  "devices",
  "groups",
  "muted",
  "pinned",
  "profile",
  "settings",
]);
export const ZERO_CHAIN = new Uint8Array(32);

export const KEY_LABELS = Object.freeze({
  index: "Parley v1 sync index key",
  value: "Parley v1 sync value key",
  value_mac: "Parley v1 sync value mac key",
  entry: "Parley v1 sync entry key",
});
export const INDEX_MAC_LABEL = "Parley v1 sync index";
export const VALUE_AD_LABEL = "Parley v1 sync value";
export const VALUE_MAC_LABEL = "Parley v1 sync value mac";
export const ENTRY_MAC_LABEL = "Parley v1 sync entry";

const COLLECTION = /^[a-z][a-z0-9_]{0,31}$/;
const MUTATION_KEYS = ["collection", "device", "index", "timestamp", "value"];
// KDF(key, label, data, 32) of section 1.1 with the label's encoding computed once.
const INDEX_MAC_PREFIX = label(INDEX_MAC_LABEL);
const VALUE_MAC_PREFIX = label(VALUE_MAC_LABEL);
const VALUE_AD_PREFIX = label(VALUE_AD_LABEL);
const MIN_RECORD_BYTES = 32 + 24 + 4 + primitives.AEAD_TAG_BYTES;

/** @param {boolean} condition @param {string} message */
function expect(condition, message) {
  if (!condition) throw new MalformedMessage(message);
}

/** @param {unknown} value @returns {boolean} */
function isUint(value) {
  return Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;
}

/**
 * The account sync key: random, shared with own devices over pairwise sessions only; in
 * force from `sinceVersion` until the next key's.
 */
export class SyncKey {
  /** @param {{keyId: Uint8Array, key: Uint8Array, sinceVersion: number}} fields */
  constructor({ keyId, key, sinceVersion }) {
    this.keyId = keyId;
    this.key = key;
    this.sinceVersion = sinceVersion;
  }
}

/**
 * Draws rng(16) for the key id, then rng(32) for the key.
 * @param {Rng} rng
 * @param {{sinceVersion: number}} options
 * @returns {SyncKey}
 */
export function newSyncKey(rng, { sinceVersion }) {
  if (!isUint(sinceVersion) || sinceVersion < 1) {
    throw new MalformedMessage(`sync key: expected since_version >= 1, got ${sinceVersion}`);
  }
  const keyId = rng(16);
  return new SyncKey({ keyId, key: rng(32), sinceVersion });
}

export class SyncSubkeys {
  /**
   * @param {{keyId: Uint8Array, index: Uint8Array, value: Uint8Array, valueMac: Uint8Array,
   *          entry: Uint8Array}} fields
   */
  constructor({ keyId, index, value, valueMac, entry }) {
    this.keyId = keyId;
    this.index = index;
    this.value = value;
    this.valueMac = valueMac;
    this.entry = entry;
  }
}

/**
 * sub-key = KDF(key, label, key_id, 32) for each label of KEY_LABELS (section 23.2).
 * @param {SyncKey} key
 * @returns {SyncSubkeys}
 */
export function syncSubkeys(key) {
  if (!(key.keyId instanceof Uint8Array) || key.keyId.length !== 16) {
    throw new MalformedMessage("sync key: expected a 16-byte key id");
  }
  const derive = (/** @type {string} */ text) => primitives.kdf(key.key, text, key.keyId, 32);
  return new SyncSubkeys({
    keyId: key.keyId,
    index: derive(KEY_LABELS.index),
    value: derive(KEY_LABELS.value),
    valueMac: derive(KEY_LABELS.value_mac),
    entry: derive(KEY_LABELS.entry),
  });
}

/**
 * Set `value` (a JSON object) at (collection, index), or remove it (`value` null: a
 * tombstone); `timestamp` (ms) and `device` decide conflicts (section 23.6).
 */
export class Mutation {
  /**
   * @param {string} collection
   * @param {string[]} index
   * @param {Record<string, any> | null} value
   * @param {number} timestamp
   * @param {string} device
   */
  constructor(collection, index, value, timestamp, device) {
    this.collection = collection;
    this.index = index;
    this.value = value;
    this.timestamp = timestamp;
    this.device = device;
  }
}

/** @param {unknown} collection @param {unknown} index @returns {Uint8Array} */
function indexJson(collection, index) {
  expect(
    typeof collection === "string" && COLLECTION.test(collection),
    `mutation: expected a collection of 1 to 32 of a-z 0-9 _, got ${JSON.stringify(collection)?.slice(0, 40)}`,
  );
  expect(
    Array.isArray(index) &&
      index.length >= 1 &&
      index.length <= MAX_INDEX_PARTS &&
      index.every((part) => typeof part === "string"),
    `mutation: expected an index of 1 to ${MAX_INDEX_PARTS} strings`,
  );
  const raw = canonicalJson(index);
  expect(raw.length <= MAX_INDEX_BYTES, `mutation: expected an index of at most ${MAX_INDEX_BYTES} bytes`);
  return raw;
}

/**
 * @param {unknown} value @param {unknown} timestamp @param {unknown} device
 */
function checkFields(value, timestamp, device) {
  expect(
    value === null || isPlainObject(value),
    "mutation: expected a JSON object or null (a removal) as value",
  );
  expect(isUint(timestamp), "mutation: expected a timestamp in 0..2^53-1");
  const size = utf8Encode(/** @type {string} */ (device)).length;
  expect(
    size >= 1 && size <= MAX_DEVICE_ID_BYTES,
    `mutation: expected a device id of 1 to ${MAX_DEVICE_ID_BYTES} bytes`,
  );
}

/**
 * The record plaintext: canonical JSON {collection, device, index, timestamp, value}.
 * @param {Mutation} mutation
 * @returns {Uint8Array}
 */
export function encodeMutation(mutation) {
  indexJson(mutation.collection, mutation.index);
  checkFields(mutation.value, mutation.timestamp, mutation.device);
  const raw = canonicalJson({
    collection: mutation.collection,
    device: mutation.device,
    index: [...mutation.index],
    timestamp: mutation.timestamp,
    value: mutation.value,
  });
  expect(raw.length <= MAX_RECORD_BYTES, `mutation: expected at most ${MAX_RECORD_BYTES} bytes`);
  return raw;
}

/**
 * The mutation and its canonical index JSON.
 * @param {Uint8Array} data
 * @returns {[Mutation, Uint8Array]}
 */
function decodeWithIndex(data) {
  let body;
  try {
    body = parseJson(data, { maxBytes: MAX_RECORD_BYTES });
  } catch (error) {
    if (error instanceof InvalidJson) throw new MalformedMessage(`mutation: ${error.message}`);
    throw error;
  }
  const keys = isPlainObject(body) ? Object.keys(body).sort() : [];
  expect(
    keys.length === MUTATION_KEYS.length && keys.every((k, i) => k === MUTATION_KEYS[i]),
    `mutation: expected keys ${JSON.stringify(MUTATION_KEYS)}`,
  );
  const index = indexJson(body.collection, body.index);
  checkFields(body.value, body.timestamp, body.device);
  expect(bytesEqual(canonicalJson(body), data), "mutation: expected canonical JSON");
  return [new Mutation(body.collection, body.index, body.value, body.timestamp, body.device), index];
}

/**
 * Parse a record plaintext; refuses anything encodeMutation would not write.
 * @param {Uint8Array} data
 * @returns {Mutation}
 */
export function decodeMutation(data) {
  return decodeWithIndex(data)[0];
}

/** @param {SyncSubkeys} subkeys @param {string} collection @param {Uint8Array} index */
function indexMacOf(subkeys, collection, index) {
  const data = concatBytes(INDEX_MAC_PREFIX, encStr(collection), index);
  return primitives.blake2b(data, { size: 32, key: subkeys.index });
}

/**
 * KDF(index key, "Parley v1 sync index", enc_str(collection) ‖ canonical index, 32).
 * @param {SyncSubkeys} subkeys
 * @param {string} collection
 * @param {string[]} index
 * @returns {Uint8Array}
 */
export function indexMac(subkeys, collection, index) {
  return indexMacOf(subkeys, collection, indexJson(collection, index));
}

/**
 * KDF(value MAC key, "Parley v1 sync value mac", index_mac ‖ plaintext, 32).
 * @param {SyncSubkeys} subkeys
 * @param {Uint8Array} recordIndexMac
 * @param {Uint8Array} plaintext
 * @returns {Uint8Array}
 */
export function valueMac(subkeys, recordIndexMac, plaintext) {
  const data = concatBytes(VALUE_MAC_PREFIX, recordIndexMac, plaintext);
  return primitives.blake2b(data, { size: 32, key: subkeys.valueMac });
}

/** @param {SyncSubkeys} subkeys @param {Uint8Array} recordIndexMac */
function valueAd(subkeys, recordIndexMac) {
  return concatBytes(VALUE_AD_PREFIX, subkeys.keyId, recordIndexMac);
}

export class SealedRecord {
  /** @param {Uint8Array} indexMac @param {Uint8Array} nonce @param {Uint8Array} ciphertext */
  constructor(indexMac, nonce, ciphertext) {
    this.indexMac = indexMac;
    this.nonce = nonce;
    this.ciphertext = ciphertext;
  }

  /** @returns {Uint8Array} */
  encode() {
    return concatBytes(this.indexMac, this.nonce, u32(this.ciphertext.length), this.ciphertext);
  }
}

/**
 * Encrypt one mutation (draws rng(24) for the nonce); returns it with its value MAC.
 * @param {SyncSubkeys} subkeys
 * @param {Mutation} mutation
 * @param {Rng} rng
 * @returns {[SealedRecord, Uint8Array]}
 */
export function sealRecord(subkeys, mutation, rng) {
  const plaintext = encodeMutation(mutation);
  const mac = indexMac(subkeys, mutation.collection, mutation.index);
  const nonce = rng(primitives.AEAD_NONCE_BYTES);
  const ciphertext = primitives.aeadEncrypt(subkeys.value, nonce, plaintext, valueAd(subkeys, mac));
  return [new SealedRecord(mac, nonce, ciphertext), valueMac(subkeys, mac, plaintext)];
}

/**
 * Decrypt and check that the mutation inside belongs at the record's index MAC.
 * @param {SyncSubkeys} subkeys
 * @param {SealedRecord} record
 * @returns {[Mutation, Uint8Array]}
 */
export function openRecord(subkeys, record) {
  let plaintext;
  try {
    plaintext = primitives.aeadDecrypt(
      subkeys.value,
      record.nonce,
      record.ciphertext,
      valueAd(subkeys, record.indexMac),
    );
  } catch (error) {
    if (error instanceof DecryptionFailed) {
      throw new SyncEntryForged(
        "a value does not decrypt under its index and sync key (moved or altered)",
      );
    }
    throw error;
  }
  const [mutation, index] = decodeWithIndex(plaintext);
  if (!primitives.macEqual(indexMacOf(subkeys, mutation.collection, index), record.indexMac)) {
    throw new SyncEntryForged("a value was moved to another index");
  }
  return [mutation, valueMac(subkeys, record.indexMac, plaintext)];
}

/** A decoded patch or snapshot; `signed` is every byte before `mac`. */
export class SyncEntry {
  /**
   * @param {{kind: string, keyId: Uint8Array, version: number, previous: Uint8Array,
   *          stateHash: Uint8Array, records: SealedRecord[], mac: Uint8Array,
   *          signed: Uint8Array}} fields
   */
  constructor({ kind, keyId, version, previous, stateHash, records, mac, signed }) {
    this.kind = kind;
    this.keyId = keyId;
    this.version = version;
    this.previous = previous;
    this.stateHash = stateHash;
    this.records = records;
    this.mac = mac;
    this.signed = signed;
  }
}

/**
 * KDF(entry key, "Parley v1 sync entry", signed, 32).
 * @param {SyncSubkeys} subkeys
 * @param {Uint8Array} signed
 * @returns {Uint8Array}
 */
export function entryMac(subkeys, signed) {
  return primitives.kdf(subkeys.entry, ENTRY_MAC_LABEL, signed, 32);
}

/**
 * Section 23.5 layout with its MAC; refuses what decodeEntry refuses (MalformedMessage).
 * @param {{kind: string, key: SyncKey, version: number, previous: Uint8Array,
 *          stateHash: Uint8Array, records: SealedRecord[]}} fields
 * @returns {Uint8Array}
 */
export function encodeEntry({ kind, key, version, previous, stateHash, records }) {
  expect(ENTRY_KINDS.includes(kind), `entry: expected kind patch or snapshot, got ${kind}`);
  expect(isUint(version) && version >= 1, `entry: expected version >= 1, got ${version}`);
  expect(previous.length === 32 && stateHash.length === 32, "entry: expected 32-byte hashes");
  const subkeys = syncSubkeys(key);
  const signed = concatBytes(
    u8(SYNC_FORMAT),
    u8(ENTRY_KINDS.indexOf(kind) + 1),
    subkeys.keyId,
    u64(version),
    previous,
    stateHash,
    u32(records.length),
    ...records.map((record) => record.encode()),
  );
  const blob = concatBytes(signed, entryMac(subkeys, signed));
  decodeEntry(blob); // the same limits for writer and reader
  return blob;
}

/**
 * Parse the structure (no key needed); MalformedMessage for anything outside 23.5.
 * @param {Uint8Array} blob
 * @returns {SyncEntry}
 */
export function decodeEntry(blob) {
  expect(blob instanceof Uint8Array, "entry: expected bytes");
  expect(
    blob.length <= MAX_SNAPSHOT_BYTES,
    `entry: expected at most ${MAX_SNAPSHOT_BYTES} bytes, got ${blob.length}`,
  );
  const reader = new Reader(blob, { what: "sync entry" });
  const format = reader.uint(1);
  expect(format === SYNC_FORMAT, `entry: expected format ${SYNC_FORMAT}, got ${format}`);
  const kindCode = reader.uint(1);
  expect(kindCode === 1 || kindCode === 2, `entry: expected kind 1 or 2, got ${kindCode}`);
  const kind = ENTRY_KINDS[kindCode - 1];
  expect(
    kind === "snapshot" || blob.length <= MAX_PATCH_BYTES,
    `patch: expected at most ${MAX_PATCH_BYTES} bytes, got ${blob.length}`,
  );
  const keyId = reader.take(16);
  const version = reader.uint(8);
  expect(version >= 1, "entry: expected version >= 1, got 0");
  const previous = reader.take(32);
  const hashAfter = reader.take(32);
  const count = reader.uint(4);
  expect(kind === "snapshot" || count >= 1, "patch: expected at least one record");
  expect(
    count * MIN_RECORD_BYTES <= reader.remaining() - 32,
    `entry: ${count} records cannot fit in ${blob.length} bytes`,
  );
  const records = [];
  for (let i = 0; i < count; i++) {
    const mac = reader.take(32);
    const nonce = reader.take(primitives.AEAD_NONCE_BYTES);
    const length = reader.uint(4);
    expect(
      length >= primitives.AEAD_TAG_BYTES && length <= MAX_RECORD_BYTES + primitives.AEAD_TAG_BYTES,
      `entry: expected a record ciphertext of 16 to ${MAX_RECORD_BYTES + 16} bytes`,
    );
    records.push(new SealedRecord(mac, nonce, reader.take(length)));
  }
  const signedLength = blob.length - reader.remaining();
  const mac = reader.take(32);
  reader.end();
  if (kind === "snapshot") {
    for (let i = 1; i < records.length; i++) {
      expect(
        compareBytes(records[i - 1].indexMac, records[i].indexMac) < 0,
        "snapshot: expected records in strictly ascending index MAC order",
      );
    }
  }
  return new SyncEntry({
    kind,
    keyId,
    version,
    previous,
    stateHash: hashAfter,
    records,
    mac,
    signed: blob.subarray(0, signedLength),
  });
}
