// The group machine's record (docs/protocol.md section 25.8), mirror of
// protocol/engine/groupstate.py: all a device keeps of one group, as one value with a strict
// JSON form (the adapter stores it, scenario files spell it out).

import { b64uDecode, b64uEncode, compareBytes, fromHex, toHex } from "../encoding.js";
import { MalformedMessage } from "../exceptions.js";
import { GroupState } from "../groups.js";
import { ReceivingKey, SenderKey } from "../senderkeys.js";

export const MAX_WRITE_ATTEMPTS = 3; // signings of one change: the first, and two after the head moved
export const RECEIVING_CHAINS = 2; // per sending device: its current key and the one before it
export const MAX_HELD = 100; // messages and distributions waiting; as many sends waiting for lists

/** account id -> device id -> identity key: the active devices of verified lists (25.8)
 * @typedef {Map<string, Map<string, Uint8Array>>} Lists */

/** @param {boolean} condition @param {string} message */
function expect(condition, message) {
  if (!condition) throw new MalformedMessage(message);
}

/** @param {any} value */
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** A group message (`kind` "message") or a distribution ("key") that waits. */
export class Held {
  /**
   * @param {string} kind
   * @param {{data?: Uint8Array, sender?: string, senderDevice?: string, body?: Record<string, any>}} fields
   */
  constructor(kind, { data = new Uint8Array(0), sender = "", senderDevice = "", body = {} } = {}) {
    this.kind = kind;
    this.data = data;
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.body = body;
  }

  toJSON() {
    if (this.kind === "message") return { kind: "message", message: b64uEncode(this.data) };
    return { kind: "key", sender: this.sender, sender_device: this.senderDevice, body: this.body };
  }

  /** @param {any} data */
  static fromJSON(data) {
    expect(isObject(data), "group record: expected a held item");
    if (data.kind === "message") return new Held("message", { data: b64uDecode(data.message, { what: "held message" }) });
    expect(data.kind === "key" && isObject(data.body), "group record: expected a held message or key");
    return new Held("key", { sender: data.sender, senderDevice: data.sender_device, body: { ...data.body } });
  }
}

/** A send that waits for the members' lists. */
export class WaitingSend {
  /** @param {string} sendId @param {Uint8Array} plaintext */
  constructor(sendId, plaintext) {
    this.sendId = sendId;
    this.plaintext = plaintext;
  }

  toJSON() {
    return { send_id: this.sendId, plaintext: b64uEncode(this.plaintext) };
  }

  /** @param {any} data */
  static fromJSON(data) {
    return new WaitingSend(data.send_id, b64uDecode(data.plaintext, { what: "waiting send" }));
  }
}

/**
 * A group send out to the server: what to plan again after `mismatched_devices`, and the
 * devices (identity keys, as hex) it was the first to give the key (taken back then).
 */
export class Outgoing {
  /** @param {string} sendId @param {Uint8Array} plaintext @param {Set<string>} distributed @param {number} [attempt] */
  constructor(sendId, plaintext, distributed, attempt = 1) {
    this.sendId = sendId;
    this.plaintext = plaintext;
    this.distributed = distributed;
    this.attempt = attempt;
  }

  toJSON() {
    return {
      send_id: this.sendId,
      plaintext: b64uEncode(this.plaintext),
      distributed: [...this.distributed].map(fromHex).sort(compareBytes).map((k) => b64uEncode(k)),
      attempt: this.attempt,
    };
  }

  /** @param {any} data */
  static fromJSON(data) {
    expect(isObject(data) && Array.isArray(data.distributed), "group record: expected an outgoing send");
    return new Outgoing(
      data.send_id,
      b64uDecode(data.plaintext, { what: "outgoing send" }),
      new Set(data.distributed.map((/** @type {unknown} */ k) => toHex(b64uDecode(k, { length: 32, what: "identity key" })))),
      Number(data.attempt),
    );
  }
}

/**
 * A change this device writes to the log: `stage` signing (the adapter signs `data`), posting
 * (`entry` is out as `request`) or waiting (the head moved: signed again on the head the next
 * fetch ends at).
 */
export class Writing {
  /**
   * @param {{changeId: string, kind: string, accounts: string[], name: string, actorKey: Uint8Array,
   *          timestamp: number, stage: string, seq: number, data?: Uint8Array, entry?: Uint8Array,
   *          request?: string | null, attempts?: number}} fields
   */
  constructor({
    changeId,
    kind,
    accounts,
    name,
    actorKey,
    timestamp,
    stage,
    seq,
    data = new Uint8Array(0),
    entry = new Uint8Array(0),
    request = null,
    attempts = 1,
  }) {
    this.changeId = changeId;
    this.kind = kind; // create | add | remove | leave | promote | demote | rename
    this.accounts = accounts;
    this.name = name;
    this.actorKey = actorKey;
    this.timestamp = timestamp;
    this.stage = stage;
    this.seq = seq;
    this.data = data; // the entry bytes to sign
    this.entry = entry; // the wire entry
    this.request = request;
    this.attempts = attempts;
  }

  /** @param {Partial<ConstructorParameters<typeof Writing>[0]>} changes */
  with(changes) {
    return new Writing({ ...this, ...changes });
  }

  toJSON() {
    return {
      change_id: this.changeId,
      kind: this.kind,
      accounts: this.accounts,
      name: this.name,
      actor_key: b64uEncode(this.actorKey),
      timestamp: this.timestamp,
      stage: this.stage,
      seq: this.seq,
      data: b64uEncode(this.data),
      entry: b64uEncode(this.entry),
      request: this.request,
      attempts: this.attempts,
    };
  }

  /** @param {any} data */
  static fromJSON(data) {
    expect(isObject(data) && ["signing", "posting", "waiting"].includes(data.stage), "group record: bad stage");
    expect(Array.isArray(data.accounts), "group record: expected an array of accounts");
    return new Writing({
      changeId: data.change_id,
      kind: data.kind,
      accounts: [...data.accounts],
      name: data.name,
      actorKey: b64uDecode(data.actor_key, { length: 32, what: "actor key" }),
      timestamp: data.timestamp,
      stage: data.stage,
      seq: data.seq,
      data: b64uDecode(data.data, { what: "entry bytes" }),
      entry: b64uDecode(data.entry, { what: "group entry" }),
      request: data.request ?? null,
      attempts: Number(data.attempts),
    });
  }
}

export class GroupRecord {
  /**
   * @param {{accountId: string, deviceId: string, groupId: Uint8Array, chain?: GroupState | null,
   *          wanted?: number, conflict?: {seq: number, hash: Uint8Array} | null, withheld?: boolean,
   *          request?: string | null, nextRequest?: number, fetchAgain?: boolean,
   *          page?: Uint8Array[], pageMore?: boolean, sending?: SenderKey | null,
   *          receiving?: Map<string, ReceivingKey[]>, held?: Held[], sends?: WaitingSend[],
   *          writing?: Writing | null, outgoing?: Outgoing[]}} fields
   */
  constructor({
    accountId,
    deviceId,
    groupId,
    chain = null,
    wanted = -1,
    conflict = null,
    withheld = false,
    request = null,
    nextRequest = 1,
    fetchAgain = false,
    page = [],
    pageMore = false,
    sending = null,
    receiving = new Map(),
    held = [],
    sends = [],
    writing = null,
    outgoing = [],
  }) {
    this.accountId = accountId;
    this.deviceId = deviceId;
    this.groupId = groupId;
    this.chain = chain;
    this.wanted = wanted; // the highest head seq seen in a signed message or a distribution
    this.conflict = conflict; // a head that forked from the chain
    this.withheld = withheld;
    this.request = request; // the fetch in flight
    this.nextRequest = nextRequest;
    this.fetchAgain = fetchAgain;
    this.page = page; // fetched entries waiting for lists
    this.pageMore = pageMore;
    this.sending = sending;
    this.receiving = receiving; // device id -> its sender's receiving chains, newest first
    this.held = held;
    this.sends = sends;
    this.writing = writing;
    this.outgoing = outgoing;
  }

  /** @param {Partial<ConstructorParameters<typeof GroupRecord>[0]>} changes */
  with(changes) {
    return new GroupRecord({ ...this, ...changes });
  }

  toJSON() {
    return {
      account_id: this.accountId,
      device_id: this.deviceId,
      group_id: b64uEncode(this.groupId),
      chain: this.chain === null ? null : this.chain.toJSON(),
      wanted: this.wanted,
      conflict: this.conflict === null ? null : { seq: this.conflict.seq, hash: b64uEncode(this.conflict.hash) },
      withheld: this.withheld,
      request: this.request,
      next_request: this.nextRequest,
      fetch_again: this.fetchAgain,
      page: this.page.map((e) => b64uEncode(e)),
      page_more: this.pageMore,
      sending: this.sending === null ? null : this.sending.toJSON(),
      receiving: Object.fromEntries(
        [...this.receiving.keys()].sort().map((d) => [d, (this.receiving.get(d) ?? []).map((k) => k.toJSON())]),
      ),
      held: this.held.map((h) => h.toJSON()),
      sends: this.sends.map((s) => s.toJSON()),
      writing: this.writing === null ? null : this.writing.toJSON(),
      outgoing: this.outgoing.map((o) => o.toJSON()),
    };
  }

  /** @param {any} data @returns {GroupRecord} */
  static fromJSON(data) {
    expect(isObject(data), "group record: expected an object");
    const wanted = data.wanted ?? -1;
    expect(wanted === -1 || (Number.isSafeInteger(wanted) && wanted >= 0), "group record: expected a wanted seq");
    const { conflict } = data;
    const receiving = data.receiving ?? {};
    expect(isObject(receiving), "group record: expected receiving chains");
    for (const name of ["page", "held", "sends", "outgoing"]) {
      expect(data[name] === undefined || Array.isArray(data[name]), `group record: expected an array ${name}`);
    }
    return new GroupRecord({
      accountId: data.account_id,
      deviceId: data.device_id,
      groupId: b64uDecode(data.group_id, { length: 16, what: "group id" }),
      chain: data.chain == null ? null : GroupState.fromJSON(data.chain),
      wanted,
      conflict:
        conflict == null ? null : { seq: conflict.seq, hash: b64uDecode(conflict.hash, { length: 32, what: "head" }) },
      withheld: Boolean(data.withheld),
      request: data.request ?? null,
      nextRequest: Number(data.next_request || 1),
      fetchAgain: Boolean(data.fetch_again),
      page: (data.page ?? []).map((/** @type {unknown} */ e) => b64uDecode(e, { what: "group entry" })),
      pageMore: Boolean(data.page_more),
      sending: data.sending == null ? null : SenderKey.fromJSON(data.sending),
      receiving: new Map(
        Object.entries(receiving).map(([d, keys]) => {
          expect(Array.isArray(keys), "group record: expected an array of chains");
          return [d, keys.map((/** @type {any} */ k) => ReceivingKey.fromJSON(k))];
        }),
      ),
      held: (data.held ?? []).map((/** @type {any} */ h) => Held.fromJSON(h)),
      sends: (data.sends ?? []).map((/** @type {any} */ s) => WaitingSend.fromJSON(s)),
      writing: data.writing == null ? null : Writing.fromJSON(data.writing),
      outgoing: (data.outgoing ?? []).map((/** @type {any} */ o) => Outgoing.fromJSON(o)),
    });
  }
}

/** @param {Lists} lists */
export function listsToJSON(lists) {
  return Object.fromEntries(
    [...lists.keys()].sort().map((a) => {
      const devices = /** @type {Map<string, Uint8Array>} */ (lists.get(a));
      return [a, Object.fromEntries([...devices.keys()].sort().map((d) => [d, b64uEncode(/** @type {Uint8Array} */ (devices.get(d)))]))];
    }),
  );
}

/** @param {any} data @returns {Lists} */
export function listsFromJSON(data) {
  expect(isObject(data), "group lists: expected an object");
  return new Map(
    Object.entries(data).map(([account, devices]) => {
      expect(isObject(devices), "group lists: expected objects");
      const keys = Object.entries(devices).map(([d, k]) => /** @type {[string, Uint8Array]} */ ([d, b64uDecode(k, { length: 32, what: "identity key" })]));
      return [account, new Map(keys)];
    }),
  );
}
