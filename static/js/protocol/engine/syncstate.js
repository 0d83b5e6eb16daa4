// The sync machine's state (docs/protocol.md section 22.8), mirror of
// protocol/engine/syncstate.py: the account's sync keys, its synced state, the person's
// changes not yet written, the request in flight and the last refusal, as one value with a
// strict JSON form (the adapter stores it, scenario files spell it out).

import { AccountState, Checkpoint } from "../accountstate.js";
import { b64uDecode, b64uEncode } from "../encoding.js";
import { MalformedMessage } from "../exceptions.js";
import { encodeMutation, Mutation, SyncKey } from "../syncentry.js";

/** @param {SyncKey} key */
export function keyToJSON(key) {
  return { key_id: b64uEncode(key.keyId), key: b64uEncode(key.key), since_version: key.sinceVersion };
}

/** @param {any} data @returns {SyncKey} */
export function keyFromJSON(data) {
  const since = data?.since_version;
  if (!Number.isSafeInteger(since) || since < 1) throw new MalformedMessage("sync key: expected since_version >= 1");
  return new SyncKey({
    keyId: b64uDecode(data.key_id, { length: 16, what: "sync key id" }),
    key: b64uDecode(data.key, { length: 32, what: "sync key" }),
    sinceVersion: since,
  });
}

/** @param {Mutation} m */
export function mutationToJSON(m) {
  return { collection: m.collection, index: [...m.index], value: m.value, timestamp: m.timestamp, device: m.device };
}

/** @param {any} data @returns {Mutation} */
export function mutationFromJSON(data) {
  const m = new Mutation(data.collection, data.index, data.value, data.timestamp, data.device);
  encodeMutation(m); // the same checks as every mutation on the wire
  return m;
}

/** @param {SyncKey[]} keys */
export const bySince = (keys) => [...keys].sort((a, b) => a.sinceVersion - b.sinceVersion);

/**
 * The one request in flight: a fetch (`version` = the `after` asked for) or a write of
 * `entry` (patch | snapshot) at `version`, its `blob`, how many pending mutations it carries
 * (`count`) and the new key it introduces (a first key or a rotation).
 */
export class SyncRequest {
  /**
   * @param {{requestId: string, kind: string, version: number, entry?: string | null,
   *          blob?: Uint8Array | null, count?: number, newKey?: SyncKey | null}} fields
   */
  constructor({ requestId, kind, version, entry = null, blob = null, count = 0, newKey = null }) {
    this.requestId = requestId;
    this.kind = kind; // fetch | write
    this.version = version;
    this.entry = entry;
    this.blob = blob;
    this.count = count;
    this.newKey = newKey;
  }

  toJSON() {
    return {
      request_id: this.requestId,
      kind: this.kind,
      version: this.version,
      entry: this.entry,
      blob: this.blob === null ? null : b64uEncode(this.blob),
      count: this.count,
      new_key: this.newKey === null ? null : keyToJSON(this.newKey),
    };
  }

  /** @param {any} data */
  static fromJSON(data) {
    return new SyncRequest({
      requestId: data.request_id,
      kind: data.kind,
      version: Number(data.version),
      entry: data.entry ?? null,
      blob: data.blob == null ? null : b64uDecode(data.blob, { what: "sync entry" }),
      count: Number(data.count ?? 0),
      newKey: data.new_key == null ? null : keyFromJSON(data.new_key),
    });
  }
}

/**
 * @typedef {{accountId: string, deviceId: string, keys: SyncKey[], account: AccountState,
 *   pending: Mutation[], request: SyncRequest | null, fetch: boolean, rotate: boolean,
 *   rotateAfter: number, share: boolean, compact: boolean, writeFailed: boolean,
 *   announce: boolean, refused: [string, string] | null,
 *   checkpoint: Checkpoint | null, proposed: SyncKey | null, nextRequest: number,
 *   devices: string[]}} SyncFields
 */

export class SyncState {
  /** @param {Partial<SyncFields> & {accountId: string, deviceId: string}} fields */
  constructor({
    accountId,
    deviceId,
    keys = [],
    account = new AccountState(),
    pending = [],
    request = null,
    fetch = false,
    rotate = false,
    rotateAfter = 0,
    share = false,
    compact = false,
    writeFailed = false,
    announce = false,
    refused = null,
    checkpoint = null,
    proposed = null,
    nextRequest = 1,
    devices = [],
  }) {
    this.accountId = accountId;
    this.deviceId = deviceId; // the `device` of every mutation this device writes
    this.keys = keys; // every sync key held, by since_version
    this.account = account;
    this.pending = pending; // the person's changes, not yet stored by the server
    this.request = request;
    this.fetch = fetch; // read the log before anything else (doorbell, key, conflict)
    this.rotate = rotate; // write the state under a new key (a device left)
    // the log version this device had read when the rotation was asked for: a key in force
    // after it is another device's rotation, which makes this one needless
    this.rotateAfter = rotateAfter;
    this.share = share; // send the newest key to the own devices
    this.compact = compact; // the server asked for a snapshot
    // the last write got no 201 and no conflict (no answer, a 5xx, a limit): the next write
    // waits for another event (a change, a doorbell, a reconnect, a minute of use)
    this.writeFailed = writeFailed;
    this.announce = announce; // send this device's checkpoint to the own devices (23.8)
    this.refused = refused; // the last refusal: [error class, message]
    this.checkpoint = checkpoint; // the newest an own device sent
    // a key this device created whose write got no 201 (a conflict, a lost answer): the
    // next fetch tells whether the server stored it (an entry under its key id)
    this.proposed = proposed;
    this.nextRequest = nextRequest;
    this.devices = devices; // the own devices that may hold the sync key, as last listed (listed, not suspended)
  }

  /** @returns {SyncKey | null} */
  get newestKey() {
    return this.keys.reduce((/** @type {SyncKey | null} */ best, k) => (best === null || k.sinceVersion > best.sinceVersion ? k : best), null);
  }

  /** @param {Partial<SyncFields>} changes */
  with(changes) {
    return new SyncState({ ...this, ...changes });
  }

  toJSON() {
    return {
      account_id: this.accountId,
      device_id: this.deviceId,
      keys: this.keys.map(keyToJSON),
      account: this.account.toJSON(),
      pending: this.pending.map(mutationToJSON),
      request: this.request === null ? null : this.request.toJSON(),
      fetch: this.fetch,
      rotate: this.rotate,
      rotate_after: this.rotateAfter,
      share: this.share,
      compact: this.compact,
      write_failed: this.writeFailed,
      announce: this.announce,
      refused: this.refused === null ? null : { error: this.refused[0], message: this.refused[1] },
      checkpoint:
        this.checkpoint === null ? null : { version: this.checkpoint.version, chain: b64uEncode(this.checkpoint.chain) },
      proposed: this.proposed === null ? null : keyToJSON(this.proposed),
      next_request: this.nextRequest,
      devices: this.devices,
    };
  }

  /** @param {any} data @returns {SyncState} */
  static fromJSON(data) {
    const { request, refused, checkpoint, account, proposed } = data;
    return new SyncState({
      accountId: data.account_id,
      deviceId: data.device_id,
      keys: (data.keys ?? []).map(keyFromJSON),
      account: account == null ? new AccountState() : AccountState.fromJSON(account),
      pending: (data.pending ?? []).map(mutationFromJSON),
      request: request == null ? null : SyncRequest.fromJSON(request),
      fetch: Boolean(data.fetch),
      rotate: Boolean(data.rotate),
      rotateAfter: Number(data.rotate_after ?? 0),
      share: Boolean(data.share),
      compact: Boolean(data.compact),
      writeFailed: Boolean(data.write_failed),
      announce: Boolean(data.announce),
      refused: refused == null ? null : [refused.error, refused.message],
      checkpoint:
        checkpoint == null
          ? null
          : new Checkpoint(Number(checkpoint.version), b64uDecode(checkpoint.chain, { length: 32, what: "checkpoint chain" })),
      proposed: proposed == null ? null : keyFromJSON(proposed),
      nextRequest: Number(data.next_request ?? 1),
      devices: (data.devices ?? []).map(String),
    });
  }
}
