// Pairwise sessions with other devices (docs/protocol.md sections 6-8): which session a
// message goes through, and how an incoming message is decrypted (7.1). Pure logic over
// records read from IndexedDB; the caller stores what comes back in one transaction.

import {
  acceptPrekeyMessage,
  ARCHIVED_SESSIONS,
  DecryptionFailed,
  decodeMessage,
  encoding,
  outdatedFor,
  PrekeyBundle,
  PrekeyMessage,
  PublicKemPrekey,
  Session,
  systemRng,
  UnknownSession,
  UntrustedIdentity,
} from "../protocol/index.js";

const { b64uDecode, b64uEncode, bytesEqual } = encoding;

/**
 * @typedef {object} SessionRecord one per remote device (device ids are unique across accounts)
 * @property {string} deviceId
 * @property {string} accountId
 * @property {any} current Session.toJSON() of the session in use
 * @property {any[]} [archived] the ones newer sessions replaced, newest first, at most
 *   ARCHIVED_SESSIONS, tried when the current one fails (7.1, 24.5)
 * @property {any | null} [previous] what records written before archived held: one archived
 */

/** @param {SessionRecord | undefined} record @returns {any[]} newest first */
function archivedOf(record) {
  if (record?.archived) return record.archived;
  return record?.previous ? [record.previous] : [];
}

/**
 * @param {SessionRecord | undefined} record
 * @param {Uint8Array} listedKey the device's identity key in its verified list
 * @returns {{session: Session, index: number | null}[]} the current one (index null), then
 *   the archived ones, newest first (their index in the archive)
 */
function candidates(record, listedKey) {
  if (!record) return [];
  /** @type {[any, number | null][]} */
  const held = [[record.current, null], ...archivedOf(record).map((json, i) => /** @type {[any, number]} */ ([json, i]))];
  const found = [];
  for (const [json, index] of held) {
    if (!json) continue;
    const session = Session.fromJSON(json);
    if (!bytesEqual(session.remoteIdentityKey, listedKey)) {
      throw new UntrustedIdentity(
        `session with device ${record.deviceId}: identity key differs from the signed list`,
      );
    }
    found.push({ session, index });
  }
  return found;
}

/**
 * The record with `session` as its current one, the one it replaces archived (the newest
 * ARCHIVED_SESSIONS are kept) and, when `session` was archived (at `index`: the other side
 * kept using it), out of the archive.
 * @param {SessionRecord | undefined} record @param {string} accountId @param {string} deviceId
 * @param {Session} session @param {number | null} [index]
 * @returns {SessionRecord}
 */
export function replaced(record, accountId, deviceId, session, index = null) {
  const archived = archivedOf(record).filter((_, i) => i !== index);
  if (record?.current) archived.unshift(record.current);
  return { deviceId, accountId, current: session.toJSON(), archived: archived.slice(0, ARCHIVED_SESSIONS) };
}

/**
 * The record after `session` was used: kept in place, or made current when it was archived.
 * @param {SessionRecord | undefined} record @param {string} accountId @param {string} deviceId
 * @param {Session} session @param {number | null} index
 * @returns {SessionRecord}
 */
function keep(record, accountId, deviceId, session, index) {
  if (index === null || !record) {
    return { deviceId, accountId, current: session.toJSON(), archived: archivedOf(record) };
  }
  return replaced(record, accountId, deviceId, session, index);
}

/**
 * @typedef {object} Decrypted
 * @property {Uint8Array} plaintext
 * @property {SessionRecord} record the session record to store
 * @property {string | null} baseKey b64u base key to remember as used (a new inbound session)
 * @property {number | null} oneTimePrekeyId the one-time prekey to delete
 * @property {number | null} oneTimeKemPrekeyId the one-time KEM prekey to delete (27.1)
 */

/**
 * Decrypt one message from a device of a verified list (section 7.1). Nothing is stored here.
 * @param {{data: Uint8Array, accountId: string, deviceId: string, listedKey: Uint8Array,
 *          speaksV2?: boolean, record: SessionRecord | undefined,
 *          keys: import("../protocol/index.js").DeviceKeys, baseKeyUsed: boolean}} input
 *          speaksV2: the sender's entry lists version 2 (27.5)
 * @returns {Decrypted}
 */
export function decryptFrom({ data, accountId, deviceId, listedKey, speaksV2 = false, record, keys, baseKeyUsed }) {
  const message = decodeMessage(data);
  const sessions = candidates(record, listedKey);
  if (message instanceof PrekeyMessage) {
    for (const { session, index } of sessions) {
      // The sender has not heard back yet and keeps sending prekey messages on this session.
      if (session.role === "responder" && bytesEqual(session.baseKey, message.baseKey)) {
        const plaintext = session.decrypt(data, systemRng);
        return {
          plaintext,
          record: keep(record, accountId, deviceId, session, index),
          baseKey: null,
          oneTimePrekeyId: null,
          oneTimeKemPrekeyId: null,
        };
      }
    }
    // Its base key was used and no session holds it: the session was lost (storage cleared,
    // restored from a copy), so the message is asked for again (24.1), not dropped as a
    // replay; a replay of a session still held is refused by that session above.
    if (baseKeyUsed) throw new UnknownSession(`prekey message from device ${deviceId}: its session is no longer held here`);
    const inbound = acceptPrekeyMessage(data, {
      identity: keys.identity,
      signedPrekeys: { [keys.signedPrekey.id]: keys.signedPrekey.key },
      oneTimePrekeys: Object.fromEntries(keys.oneTimePrekeys.map((k) => [k.id, k.key])),
      kemPrekeys: new Map(
        [...keys.kemPrekeys, ...(keys.lastResortKemPrekey ? [keys.lastResortKemPrekey] : [])].map((k) => [k.id, k]),
      ),
      senderIdentityKey: listedKey,
      usedBaseKeys: [],
      rng: systemRng,
      senderSpeaksV2: speaksV2, // a version-1 start from a version-2 device is a downgrade (27.5)
    });
    return {
      plaintext: inbound.plaintext,
      record: replaced(record, accountId, deviceId, inbound.session),
      baseKey: b64uEncode(inbound.baseKey),
      oneTimePrekeyId: inbound.oneTimePrekeyId,
      oneTimeKemPrekeyId: inbound.oneTimeKemPrekeyId,
    };
  }
  if (sessions.length === 0) throw new UnknownSession(`no session with device ${deviceId}`);
  /** @type {any} */
  let failure = null;
  for (const { session, index } of sessions) {
    try {
      const plaintext = session.decrypt(data, systemRng);
      return {
        plaintext,
        record: keep(record, accountId, deviceId, session, index),
        baseKey: null,
        oneTimePrekeyId: null,
        oneTimeKemPrekeyId: null,
      };
    } catch (error) {
      if (!(error instanceof DecryptionFailed || error instanceof UnknownSession)) throw error;
      failure ??= error;
    }
  }
  throw failure;
}

/**
 * The session to encrypt with for one device of a verified list: the stored one, or a new
 * one from a bundle checked against the key in the signed list (never the server's key).
 * With `fresh`, always a new one (a retry request that may not use the stored one, 24.1).
 * A version-1 session with a device whose entry lists version 2 is not used (27.5).
 * @param {{record: SessionRecord | undefined, listedKey: Uint8Array, speaksV2?: boolean,
 *          bundle: any, keys: import("../protocol/index.js").DeviceKeys, fresh?: boolean}} input
 * @returns {Session | null} null when there is no session to use and no bundle
 */
export function sessionForSending({ record, listedKey, speaksV2 = false, bundle, keys, fresh = false }) {
  const [existing] = candidates(record, listedKey).filter((c) => c.index === null);
  if (existing && !fresh && !outdatedFor(existing.session, speaksV2)) return existing.session;
  if (!bundle) return null;
  // a version-2 device's bundle without a KEM prekey is DowngradeRefused (27.5)
  return Session.initiate({
    identity: keys.identity,
    bundle,
    listedIdentityKey: listedKey,
    rng: systemRng,
    deviceSpeaksV2: speaksV2,
  });
}

/**
 * Whether a retry request may go in the stored session (docs/protocol.md 24.1): only on the
 * first ask, and only in a session this device started and has not heard back on (it still
 * sends prekey messages, so the other side can start it afresh). A device whose state is
 * behind (a restored copy) has a stale sending chain too: otherwise the request goes in a
 * new session from a claimed bundle.
 * @param {SessionRecord | undefined} record
 * @param {{identityKey: Uint8Array, speaksV2: boolean}} entry the device's entry in the signed list
 * @param {number} count
 */
export function retryRequestReuses(record, entry, count) {
  if (count !== 1) return false;
  const [existing] = candidates(record, entry.identityKey).filter((c) => c.index === null);
  return Boolean(
    existing &&
      existing.session.role === "initiator" &&
      existing.session.pendingPrekey &&
      !outdatedFor(existing.session, entry.speaksV2),
  );
}

/**
 * A new session with a device from the signed prekey its retry request carried (24.1: X3DH
 * without a one-time prekey), the signature checked under the device's key in the signed
 * list; InvalidSignature otherwise. With the request's KEM prekey (its signature checked too),
 * version 2; a version-2 device's request without one is DowngradeRefused (27.5).
 * @param {{entry: import("../protocol/index.js").DeviceEntry,
 *          signedPrekey: {id: number, public_key: string, signature: string}, kemPrekey?: any,
 *          keys: import("../protocol/index.js").DeviceKeys}} input
 * @returns {Session}
 */
export function sessionFromSignedPrekey({ entry, signedPrekey, kemPrekey = null, keys }) {
  const bundle = new PrekeyBundle({
    deviceId: entry.deviceId,
    identityKey: entry.identityKey,
    signedPrekeyId: signedPrekey.id,
    signedPrekey: b64uDecode(signedPrekey.public_key, { length: 32, what: "signed prekey" }),
    signedPrekeySignature: b64uDecode(signedPrekey.signature, { length: 64, what: "signed prekey signature" }),
    kemPrekey: kemPrekey ? PublicKemPrekey.fromJSON(kemPrekey) : null,
  });
  return Session.initiate({
    identity: keys.identity,
    bundle,
    listedIdentityKey: entry.identityKey,
    rng: systemRng,
    deviceSpeaksV2: entry.speaksV2,
  });
}
