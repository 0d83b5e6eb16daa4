// The device engine's state (docs/protocol.md section 22), mirror of protocol/engine/state.py:
// what a device knows, as values. Rebuilt by an adapter from its store before an event and
// changed only by `handle`; every field has a JSON form, so scenario files can spell it out.

import { DeviceList } from "../devicelist.js";
import { b64uDecode, b64uEncode } from "../encoding.js";
import { MalformedMessage } from "../exceptions.js";

/** A cached list older than this (ms) is refetched before use. */
export const LIST_MAX_AGE_MS = 5 * 60 * 1000;

/** @param {Map<string, any>} map @param {(v: any) => any} fn */
function sortedObject(map, fn) {
  return Object.fromEntries([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, fn(v)]));
}

/** @param {any} value @returns {[string, any][]} */
function entriesOf(value) {
  if (value === null || value === undefined) return [];
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new MalformedMessage("engine state: expected an object");
  }
  return Object.entries(value);
}

/**
 * The newest list this device accepted for an account, and what it must remember of every
 * list accepted before: each device id's key, and the pinned account key.
 */
export class ListRecord {
  /**
   * @param {{deviceList: DeviceList, accountKey: Uint8Array, knownDevices: Map<string, Uint8Array>,
   *          suspended?: Set<string>, checkedAt?: number}} fields
   */
  constructor({ deviceList, accountKey, knownDevices, suspended = new Set(), checkedAt = 0 }) {
    this.deviceList = deviceList;
    this.accountKey = accountKey; // pinned: the own key, or the contact's key at first use
    this.knownDevices = knownDevices; // every device id ever accepted -> identity key
    this.suspended = suspended; // listed, but logged out until re-signed
    this.checkedAt = checkedAt; // when the server last served this list (ms)
    this._hash = /** @type {Uint8Array | null} */ (null);
  }

  get version() {
    return this.deviceList.version;
  }

  /** @returns {Uint8Array} */
  get hash() {
    this._hash ??= this.deviceList.hash;
    return this._hash;
  }

  /** @param {Partial<{suspended: Set<string>, checkedAt: number}>} changes */
  with(changes) {
    return new ListRecord({ ...this, ...changes });
  }

  toJSON() {
    return {
      device_list: this.deviceList.toJSON(),
      account_key: b64uEncode(this.accountKey),
      known_devices: sortedObject(this.knownDevices, b64uEncode),
      suspended: [...this.suspended].sort(),
      checked_at: this.checkedAt,
    };
  }

  /** @param {any} data @returns {ListRecord} */
  static fromJSON(data) {
    return new ListRecord({
      deviceList: DeviceList.fromJSON(data.device_list),
      accountKey: b64uDecode(data.account_key, { length: 32, what: "account key" }),
      knownDevices: new Map(
        entriesOf(data.known_devices).map(([d, k]) => [
          d,
          b64uDecode(k, { length: 32, what: "known device key" }),
        ]),
      ),
      suspended: new Set(data.suspended ?? []),
      checkedAt: Number(data.checked_at ?? 0),
    });
  }
}

/** A device-list request the engine issued and has no answer for yet. */
export class PendingFetch {
  /**
   * @param {string} accountId
   * @param {string} reason missing | stale | refresh | unknown_device | freeze | notice | devices_changed
   * @param {number | null} [claimed] freeze: the version the sender's device signed with
   */
  constructor(accountId, reason, claimed = null) {
    this.accountId = accountId;
    this.reason = reason;
    this.claimed = claimed;
  }

  toJSON() {
    return { account_id: this.accountId, reason: this.reason, claimed: this.claimed };
  }

  /** @param {any} data */
  static fromJSON(data) {
    return new PendingFetch(data.account_id, data.reason, data.claimed ?? null);
  }
}

/**
 * A send the engine plans (section 22.4): its recipient, how many plans it has had, the
 * accounts whose lists it waits for, and the devices the server called stale.
 */
export class PendingSend {
  /**
   * @param {string} recipient @param {number} [attempt] @param {string[]} [waiting]
   * @param {Set<string>} [stale]
   */
  constructor(recipient, attempt = 1, waiting = [], stale = new Set()) {
    this.recipient = recipient;
    this.attempt = attempt;
    this.waiting = waiting;
    this.stale = stale;
  }

  /** @param {Partial<{attempt: number, waiting: string[], stale: Set<string>}>} changes */
  with(changes) {
    const next = { ...this, ...changes };
    return new PendingSend(next.recipient, next.attempt, next.waiting, next.stale);
  }

  toJSON() {
    return { recipient: this.recipient, attempt: this.attempt, waiting: [...this.waiting], stale: [...this.stale].sort() };
  }

  /** @param {any} data */
  static fromJSON(data) {
    return new PendingSend(data.recipient, Number(data.attempt ?? 1), [...(data.waiting ?? [])], new Set(data.stale ?? []));
  }
}

/**
 * An envelope that did not decrypt, and the asks for it (docs/protocol.md 24.2): `sentAt` is
 * the deliver entry's (where the line stands in the conversation), `count` the asks made,
 * `state` waiting | failed.
 */
export class RetryRecord {
  /**
   * @param {{sender: string, senderDevice: string, envelopeId: string, sentAt: number,
   *          count: number, askedAt: number, state?: string}} fields
   */
  constructor({ sender, senderDevice, envelopeId, sentAt, count, askedAt, state = "waiting" }) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.envelopeId = envelopeId;
    this.sentAt = sentAt;
    this.count = count;
    this.askedAt = askedAt;
    this.state = state; // waiting | failed
  }

  get key() {
    return retryKey(this.senderDevice, this.envelopeId);
  }

  /** @param {Partial<{count: number, askedAt: number, state: string}>} changes */
  with(changes) {
    return new RetryRecord({ ...this, ...changes });
  }

  toJSON() {
    return {
      sender: this.sender,
      sender_device: this.senderDevice,
      envelope_id: this.envelopeId,
      sent_at: this.sentAt,
      count: this.count,
      asked_at: this.askedAt,
      state: this.state,
    };
  }

  /** @param {any} data */
  static fromJSON(data) {
    return new RetryRecord({
      sender: data.sender,
      senderDevice: data.sender_device,
      envelopeId: data.envelope_id,
      sentAt: Number(data.sent_at),
      count: Number(data.count),
      askedAt: Number(data.asked_at),
      state: data.state || "waiting",
    });
  }
}

/** The key of a retry record: one per envelope of one sending device. @param {string} senderDevice @param {string} envelopeId */
export function retryKey(senderDevice, envelopeId) {
  return `${senderDevice}/${envelopeId}`;
}

export class DeviceState {
  /**
   * @param {{accountId: string, deviceId: string, accountKey: Uint8Array,
   *          lists?: Map<string, ListRecord>, pending?: Map<string, PendingFetch>,
   *          nextRequest?: number, sends?: Map<string, PendingSend>, contacts?: Set<string>,
   *          contactKeys?: Map<string, Uint8Array>, readReceipts?: boolean,
   *          seen?: Set<string>, historyFrom?: string | null, blocked?: Set<string>,
   *          retries?: Map<string, RetryRecord>}} fields
   */
  constructor({
    accountId,
    deviceId,
    accountKey,
    lists = new Map(),
    pending = new Map(),
    nextRequest = 1,
    sends = new Map(),
    contacts = new Set(),
    contactKeys = new Map(),
    readReceipts = false,
    seen = new Set(),
    historyFrom = null,
    blocked = new Set(),
    retries = new Map(),
  }) {
    this.accountId = accountId;
    this.deviceId = deviceId;
    this.accountKey = accountKey; // the own account key (the primary's identity key)
    this.lists = lists;
    this.pending = pending;
    this.nextRequest = nextRequest;
    this.sends = sends;
    // what receiving decides with (section 22.6)
    this.contacts = contacts; // accounts accepted as contacts (receipts go only there)
    // each contact's account key as the account's contact record holds it (verified by the
    // own device that added it): the first list fetched of a contact must be signed by it
    this.contactKeys = contactKeys;
    this.readReceipts = readReceipts; // the person's setting
    this.seen = seen; // "<sender device>/<message id>" already applied
    this.historyFrom = historyFrom; // the approving device, until its history key came
    this.blocked = blocked; // accounts the person blocked (synced, 22.8)
    this.retries = retries; // "<sender device>/<envelope id>" -> RetryRecord (24.2)
  }

  /**
   * @param {Partial<{lists: Map<string, ListRecord>, pending: Map<string, PendingFetch>,
   *   nextRequest: number, sends: Map<string, PendingSend>, contacts: Set<string>,
   *   contactKeys: Map<string, Uint8Array>, readReceipts: boolean, seen: Set<string>,
   *   historyFrom: string | null, blocked: Set<string>, retries: Map<string, RetryRecord>}>} changes
   */
  with(changes) {
    return new DeviceState({ ...this, ...changes });
  }

  toJSON() {
    return {
      account_id: this.accountId,
      device_id: this.deviceId,
      account_key: b64uEncode(this.accountKey),
      lists: sortedObject(this.lists, (r) => r.toJSON()),
      pending: sortedObject(this.pending, (p) => p.toJSON()),
      next_request: this.nextRequest,
      sends: sortedObject(this.sends, (s) => s.toJSON()),
      contacts: [...this.contacts].sort(),
      contact_keys: sortedObject(this.contactKeys, (k) => b64uEncode(k)),
      read_receipts: this.readReceipts,
      seen: [...this.seen].sort(),
      history_from: this.historyFrom,
      blocked: [...this.blocked].sort(),
      retries: sortedObject(this.retries, (r) => r.toJSON()),
    };
  }

  /** @param {any} data @returns {DeviceState} */
  static fromJSON(data) {
    return new DeviceState({
      accountId: data.account_id,
      deviceId: data.device_id,
      accountKey: b64uDecode(data.account_key, { length: 32, what: "account key" }),
      lists: new Map(entriesOf(data.lists).map(([a, r]) => [a, ListRecord.fromJSON(r)])),
      pending: new Map(entriesOf(data.pending).map(([i, p]) => [i, PendingFetch.fromJSON(p)])),
      nextRequest: Number(data.next_request ?? 1),
      sends: new Map(entriesOf(data.sends).map(([e, s]) => [e, PendingSend.fromJSON(s)])),
      contacts: new Set(data.contacts ?? []),
      contactKeys: new Map(
        entriesOf(data.contact_keys).map(([a, k]) => [a, b64uDecode(k, { length: 32, what: "contact account key" })]),
      ),
      readReceipts: Boolean(data.read_receipts),
      seen: new Set(data.seen ?? []),
      historyFrom: data.history_from ?? null,
      blocked: new Set(data.blocked ?? []),
      retries: new Map(entriesOf(data.retries).map(([k, r]) => [k, RetryRecord.fromJSON(r)])),
    });
  }
}

/** Whether the person blocked this account (the own account never is). @param {DeviceState} state @param {string} accountId */
export function isBlocked(state, accountId) {
  return accountId !== state.accountId && state.blocked.has(accountId);
}
