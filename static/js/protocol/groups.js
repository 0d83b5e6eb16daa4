// Group membership as a log of entries signed by admin devices and chained by hash
// (docs/protocol.md sections 25.1 to 25.3). Pure: the caller passes the verified device lists.

import {
  b64uDecode,
  b64uEncode,
  bytesEqual,
  compareBytes,
  concatBytes,
  encStr,
  label,
  Reader,
  toHex,
  u8,
  u16,
  u64,
  utf8Encode,
} from "./encoding.js";
import {
  GroupChainBroken,
  GroupChainForked,
  GroupEntryForged,
  GroupEntryWithheld,
  GroupNotAdmin,
  GroupRuleBroken,
  GroupSignerUnlisted,
  GroupTooLarge,
  InvalidSignature,
  MalformedMessage,
} from "./exceptions.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./keys.js").IdentityKeyPair} IdentityKeyPair */
/** @typedef {import("./rng.js").Rng} Rng */
/** @typedef {Map<string, Iterable<Uint8Array>>} DeviceLists account id → identity keys of its verified list */

export const MAX_GROUP_MEMBERS = 256;
export const MAX_GROUP_NAME_BYTES = 256;
export const MAX_GROUP_ENTRY_BYTES = 65536;
export const ZERO_HASH = new Uint8Array(32);
export const ENTRY_LABEL = "Parley v1 group entry";
export const ENTRY_HASH_LABEL = "Parley v1 group entry hash";
const ENTRY_PREFIX = label(ENTRY_LABEL);
const SIGNATURE_BYTES = 64;

/** @enum {number} */
export const EntryKind = Object.freeze({
  CREATE: 1,
  ADD: 2,
  REMOVE: 3,
  LEAVE: 4,
  PROMOTE: 5,
  DEMOTE: 6,
  RENAME: 7,
});
const KIND_NAMES = Object.fromEntries(Object.entries(EntryKind).map(([k, v]) => [v, k]));
/** @type {number[]} */
const NAMED = [EntryKind.CREATE, EntryKind.RENAME];
/** @type {number[]} */
const WITHOUT_ACCOUNTS = [EntryKind.LEAVE, EntryKind.RENAME];

/** One decoded entry of a group's log (section 25.1). */
export class GroupEntry {
  /**
   * @param {{groupId: Uint8Array, seq: number, previous: Uint8Array, kind: number, actor: string,
   *          actorKey: Uint8Array, timestamp: number, accounts: string[], name: string,
   *          signature: Uint8Array}} fields
   */
  constructor({ groupId, seq, previous, kind, actor, actorKey, timestamp, accounts, name, signature }) {
    this.groupId = groupId;
    this.seq = seq;
    this.previous = previous;
    this.kind = kind;
    this.actor = actor;
    this.actorKey = actorKey;
    this.timestamp = timestamp;
    this.accounts = accounts;
    this.name = name;
    this.signature = signature;
  }
}

/** @param {Iterable<string>} accounts @returns {string[]} ascending by UTF-8 bytes */
function sortedAccounts(accounts) {
  return [...accounts].sort((a, b) => compareBytes(utf8Encode(a), utf8Encode(b)));
}

/**
 * Membership after the entries up to `seq`; `head` is the hash of entry `seq` and `hashes`
 * every entry's hash by seq (section 25.2).
 */
export class GroupState {
  /**
   * @param {{groupId: Uint8Array, seq: number, head: Uint8Array, name: string,
   *          members: Set<string>, admins: Set<string>, hashes: Uint8Array[]}} fields
   */
  constructor({ groupId, seq, head, name, members, admins, hashes }) {
    this.groupId = groupId;
    this.seq = seq;
    this.head = head;
    this.name = name;
    this.members = members;
    this.admins = admins;
    this.hashes = hashes;
  }

  toJSON() {
    return {
      group_id: b64uEncode(this.groupId),
      seq: this.seq,
      head: b64uEncode(this.head),
      name: this.name,
      members: sortedAccounts(this.members),
      admins: sortedAccounts(this.admins),
      hashes: this.hashes.map((h) => b64uEncode(h)),
    };
  }

  /**
   * Parse the JSON form; anything out of shape is MalformedMessage.
   * @param {any} data
   * @returns {GroupState}
   */
  static fromJSON(data) {
    expect(data !== null && typeof data === "object", "group state: expected an object");
    for (const name of ["hashes", "members", "admins"]) {
      expect(Array.isArray(data[name]), `group state: expected an array ${name}`);
    }
    const hashes = data.hashes.map((/** @type {unknown} */ h) => b64uDecode(h, { length: 32, what: "group hash" }));
    const state = new GroupState({
      groupId: b64uDecode(data.group_id, { length: 16, what: "group id" }),
      seq: data.seq,
      head: b64uDecode(data.head, { length: 32, what: "group head" }),
      name: data.name,
      members: new Set(data.members),
      admins: new Set(data.admins),
      hashes,
    });
    expect(
      isUint(state.seq) && hashes.length === state.seq + 1 && bytesEqual(hashes[hashes.length - 1], state.head),
      "group state: expected one hash per entry, the last one the head",
    );
    expect(typeof state.name === "string", "group state: expected a string name");
    const names = [...state.members, ...state.admins];
    expect(names.every((a) => typeof a === "string"), "group state: expected account ids");
    expect([...state.admins].every((a) => state.members.has(a)), "group state: expected admins among members");
    return state;
  }
}

/** @param {Rng} rng @returns {Uint8Array} */
export function newGroupId(rng) {
  return rng(16);
}

/** @param {unknown} value @returns {boolean} */
function isUint(value) {
  return Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;
}

/** @param {boolean} condition @param {string} message */
function expect(condition, message) {
  if (!condition) throw new MalformedMessage(message);
}

/** @param {unknown} value @param {number} length @returns {boolean} */
function isBytes(value, length) {
  return value instanceof Uint8Array && value.length === length;
}

/** @param {GroupEntry} entry */
function checkStructure(entry) {
  expect(isBytes(entry.groupId, 16), "group entry: expected a 16-byte group id");
  expect(isBytes(entry.previous, 32), "group entry: expected a 32-byte previous hash");
  expect(isBytes(entry.actorKey, 32), "group entry: expected a 32-byte actor key");
  expect(
    Number.isInteger(entry.kind) && entry.kind in KIND_NAMES,
    `group entry: expected a kind from 1 to 7, got ${entry.kind}`,
  );
  const kind = KIND_NAMES[entry.kind];
  expect(
    utf8Encode(entry.name).length <= MAX_GROUP_NAME_BYTES,
    `group entry: expected a name of at most ${MAX_GROUP_NAME_BYTES} bytes`,
  );
  expect(NAMED.includes(entry.kind) || entry.name === "", `group entry: expected no name on ${kind}`);
  const count = entry.accounts.length;
  if (WITHOUT_ACCOUNTS.includes(entry.kind)) {
    expect(count === 0, `group entry: expected no accounts on ${kind}, got ${count}`);
  } else {
    expect(
      count >= 1 && count <= MAX_GROUP_MEMBERS,
      `group entry: expected 1 to ${MAX_GROUP_MEMBERS} accounts, got ${count}`,
    );
  }
  const raw = entry.accounts.map((a) => utf8Encode(a));
  expect(
    raw.every((a, i) => i === 0 || compareBytes(raw[i - 1], a) < 0),
    "group entry: expected accounts in strictly ascending order of their UTF-8 bytes",
  );
}

/**
 * The signed bytes of an entry: everything but its signature (section 25.1).
 * @param {GroupEntry} entry
 * @returns {Uint8Array}
 */
export function entryBytes(entry) {
  checkStructure(entry);
  const out = concatBytes(
    ENTRY_PREFIX,
    entry.groupId,
    u64(entry.seq),
    entry.previous,
    u8(entry.kind),
    encStr(entry.actor),
    entry.actorKey,
    u64(entry.timestamp),
    u16(entry.accounts.length),
    ...entry.accounts.map((a) => encStr(a)),
    encStr(entry.name),
  );
  expect(
    out.length + SIGNATURE_BYTES <= MAX_GROUP_ENTRY_BYTES,
    `group entry: expected at most ${MAX_GROUP_ENTRY_BYTES} bytes`,
  );
  return out;
}

/**
 * H("Parley v1 group entry hash", entry bytes ‖ signature): covers the signature too.
 * @param {Uint8Array} wire
 * @returns {Uint8Array}
 */
export function entryHash(wire) {
  return primitives.hash32(ENTRY_HASH_LABEL, wire);
}

/**
 * The wire form (entry bytes ‖ signature) of an entry signed by the acting device; `accounts`
 * in any order (a repeated one is refused).
 * @param {{groupId: Uint8Array, seq: number, previous: Uint8Array, kind: number, actor: string,
 *          identity: IdentityKeyPair, timestamp: number, accounts?: string[], name?: string}} fields
 * @returns {Uint8Array}
 */
export function signEntry({ groupId, seq, previous, kind, actor, identity, timestamp, accounts = [], name = "" }) {
  const entry = new GroupEntry({
    groupId,
    seq,
    previous,
    kind,
    actor,
    actorKey: identity.public,
    timestamp,
    accounts: accounts.every((a) => typeof a === "string") ? sortedAccounts(accounts) : accounts,
    name,
    signature: new Uint8Array(0),
  });
  const signed = entryBytes(entry);
  return concatBytes(signed, primitives.ed25519Sign(identity.secret, signed));
}

/**
 * Parse the wire form; anything outside section 25.1 is MalformedMessage.
 * @param {Uint8Array} wire
 * @returns {GroupEntry}
 */
export function decodeEntry(wire) {
  expect(
    wire instanceof Uint8Array && wire.length <= MAX_GROUP_ENTRY_BYTES,
    `group entry: expected at most ${MAX_GROUP_ENTRY_BYTES} bytes`,
  );
  const reader = new Reader(wire, { what: "group entry" });
  expect(bytesEqual(reader.take(ENTRY_PREFIX.length), ENTRY_PREFIX), "group entry: expected its label");
  const groupId = reader.take(16).slice();
  const seq = reader.uint(8);
  const previous = reader.take(32).slice();
  const kind = reader.uint(1);
  expect(kind in KIND_NAMES, `group entry: expected a kind 1 to 7, got ${kind}`);
  const actor = reader.string();
  const actorKey = reader.take(32).slice();
  const timestamp = reader.uint(8);
  const count = reader.uint(2);
  expect(count <= MAX_GROUP_MEMBERS, `group entry: expected at most 256 accounts, got ${count}`);
  const accounts = Array.from({ length: count }, () => reader.string());
  const name = reader.string();
  const signature = reader.take(SIGNATURE_BYTES).slice();
  reader.end();
  const entry = new GroupEntry({ groupId, seq, previous, kind, actor, actorKey, timestamp, accounts, name, signature });
  checkStructure(entry);
  return entry;
}

/** @param {DeviceLists} deviceLists @param {string} account @returns {Set<string>} */
function listedKeys(deviceLists, account) {
  return new Set([...(deviceLists.get(account) ?? [])].map((k) => toHex(k)));
}

/**
 * The state after one more entry, checked in the order of section 25.2; `state` is null
 * before the create entry. `vouched`: a later entry of the chain, by a listed device, names
 * this one (through the hashes), so its signer need not be listed any more (25.2).
 * @param {GroupState | null} state
 * @param {Uint8Array} wire
 * @param {{deviceLists: DeviceLists, vouched?: boolean}} options
 * @returns {GroupState}
 */
export function applyEntry(state, wire, { deviceLists, vouched = false }) {
  const entry = decodeEntry(wire);
  const kind = entry.kind;
  if (state === null) {
    if (kind !== EntryKind.CREATE || entry.seq !== 0 || !bytesEqual(entry.previous, ZERO_HASH)) {
      throw new GroupChainBroken("group chain: expected a create entry at seq 0 first");
    }
  } else {
    if (!bytesEqual(entry.groupId, state.groupId)) {
      throw new GroupChainBroken("group chain: expected an entry of this group");
    }
    if (kind === EntryKind.CREATE || entry.seq !== state.seq + 1) {
      throw new GroupChainBroken(
        `group chain: expected an entry at seq ${state.seq + 1}, got ${KIND_NAMES[kind].toLowerCase()} ` +
          `at ${entry.seq}`,
      );
    }
    if (!bytesEqual(entry.previous, state.head)) {
      throw new GroupChainBroken(`group chain: entry ${entry.seq} names another previous hash`);
    }
  }
  if (!vouched && !isListed(entry, deviceLists)) {
    throw new GroupSignerUnlisted(
      `group entry ${entry.seq}: signing key is not in '${entry.actor}''s verified device list`,
    );
  }
  try {
    primitives.ed25519Verify(entry.actorKey, wire.subarray(0, wire.length - SIGNATURE_BYTES), entry.signature, {
      what: "group entry",
    });
  } catch (error) {
    if (error instanceof InvalidSignature) {
      throw new GroupEntryForged(`group entry ${entry.seq}: signature does not verify`);
    }
    throw error;
  }
  const [members, admins, name] = applyRules(state, entry);
  const hash = entryHash(wire);
  return new GroupState({
    groupId: entry.groupId,
    seq: entry.seq,
    head: hash,
    name,
    members,
    admins,
    hashes: [...(state ? state.hashes : []), hash],
  });
}

/** @param {boolean} condition @param {string} message */
function rule(condition, message) {
  if (!condition) throw new GroupRuleBroken(message);
}

/**
 * @param {GroupState | null} state
 * @param {GroupEntry} entry
 * @returns {[Set<string>, Set<string>, string]}
 */
function applyRules(state, entry) {
  let members = new Set(state ? state.members : []);
  let admins = new Set(state ? state.admins : []);
  let name = state ? state.name : "";
  const accounts = entry.accounts;
  const { actor, kind } = entry;
  const what = `group entry ${entry.seq}`;
  if (kind === EntryKind.LEAVE) {
    if (!members.has(actor)) throw new GroupNotAdmin(`${what}: leave by '${actor}', who is not a member`);
  } else if (kind !== EntryKind.CREATE && !admins.has(actor)) {
    throw new GroupNotAdmin(`${what}: ${KIND_NAMES[kind].toLowerCase()} by '${actor}', who is not an admin`);
  }
  if (kind === EntryKind.CREATE) {
    rule(accounts.includes(actor), `${what}: expected the creator among the members`);
    members = new Set(accounts);
    admins = new Set([actor]);
    name = entry.name;
  } else if (kind === EntryKind.ADD) {
    rule(!accounts.some((a) => members.has(a)), `${what}: expected to add only non-members`);
    for (const a of accounts) members.add(a);
  } else if (kind === EntryKind.REMOVE) {
    rule(accounts.every((a) => members.has(a)), `${what}: expected to remove only members`);
    rule(!accounts.includes(actor), `${what}: expected a leave, not a removal of the actor`);
    for (const a of accounts) {
      members.delete(a);
      admins.delete(a);
    }
  } else if (kind === EntryKind.LEAVE) {
    members.delete(actor);
    admins.delete(actor);
  } else if (kind === EntryKind.PROMOTE) {
    rule(accounts.every((a) => members.has(a)), `${what}: expected to promote only members`);
    rule(!accounts.some((a) => admins.has(a)), `${what}: expected to promote only non-admins`);
    for (const a of accounts) admins.add(a);
  } else if (kind === EntryKind.DEMOTE) {
    rule(accounts.every((a) => admins.has(a)), `${what}: expected to demote only admins`);
    for (const a of accounts) admins.delete(a);
  } else {
    name = entry.name;
  }
  rule(members.size === 0 || admins.size > 0, `${what}: expected an admin to remain among the members`);
  if (members.size > MAX_GROUP_MEMBERS) {
    throw new GroupTooLarge(`${what}: expected at most ${MAX_GROUP_MEMBERS} members, got ${members.size}`);
  }
  return [members, admins, name];
}

/** @param {GroupEntry} entry @param {DeviceLists} deviceLists */
function isListed(entry, deviceLists) {
  return listedKeys(deviceLists, entry.actor).has(toHex(entry.actorKey));
}

/**
 * Whether the entry's signer is listed; a malformed entry is not (applying it, in order,
 * says what is wrong).
 * @param {Uint8Array} wire @param {DeviceLists} deviceLists
 */
function signerListed(wire, deviceLists) {
  try {
    return isListed(decodeEntry(wire), deviceLists);
  } catch (error) {
    if (error instanceof MalformedMessage) return false;
    throw error;
  }
}

/**
 * The state of a whole chain from its create entry, or of `state` extended by the entries
 * after it; the first bad entry decides. An entry before the last one signed by a listed
 * device is vouched for by it (25.2).
 * @param {Uint8Array[]} entries
 * @param {{deviceLists: DeviceLists, state?: GroupState | null}} options
 * @returns {GroupState}
 */
export function verifyChain(entries, { deviceLists, state = null }) {
  if (entries.length === 0 && state === null) {
    throw new GroupChainBroken("group chain: expected at least the create entry");
  }
  let lastListed = -1;
  entries.forEach((wire, i) => {
    if (signerListed(wire, deviceLists)) lastListed = i;
  });
  let current = state;
  for (const [i, wire] of entries.entries()) {
    current = applyEntry(current, wire, { deviceLists, vouched: i < lastListed });
  }
  return /** @type {GroupState} */ (current);
}

/**
 * "same", "behind" (the sender's head is an older entry of this chain) or "ahead" (the device
 * must fetch); a known seq with another hash is GroupChainForked (section 25.3).
 * @param {GroupState} state
 * @param {number} headSeq
 * @param {Uint8Array} headHash
 * @returns {"same" | "behind" | "ahead"}
 */
export function compareHead(state, headSeq, headHash) {
  expect(isUint(headSeq) && isBytes(headHash, 32), "group head: expected a seq and a 32-byte hash");
  if (headSeq > state.seq) return "ahead";
  if (!bytesEqual(state.hashes[headSeq], headHash)) {
    throw new GroupChainForked(`group chain: another entry at seq ${headSeq} than this device's`);
  }
  return headSeq === state.seq ? "same" : "behind";
}

/**
 * After a fetch: a chain still ending below a head a signed message carried means the server
 * withholds an entry (section 25.3).
 * @param {GroupState} state
 * @param {number} wantedSeq
 */
export function checkFetched(state, wantedSeq) {
  if (state.seq < wantedSeq) {
    throw new GroupEntryWithheld(
      `group chain: a message named seq ${wantedSeq}, the server's chain ends at ${state.seq}`,
    );
  }
}
