// Pairwise sessions with other devices (docs/protocol.md sections 6-8): which session a
// message goes through, and how an incoming message is decrypted (7.1). Pure logic over
// records read from IndexedDB; the caller stores what comes back in one transaction.

import {
  acceptPrekeyMessage,
  DecryptionFailed,
  decodeMessage,
  encoding,
  PrekeyMessage,
  Session,
  systemRng,
  UnknownSession,
  UntrustedIdentity,
} from "../protocol/index.js";

const { b64uEncode, bytesEqual } = encoding;

/**
 * @typedef {object} SessionRecord one per remote device (device ids are unique across accounts)
 * @property {string} deviceId
 * @property {string} accountId
 * @property {any} current Session.toJSON() of the session in use
 * @property {any | null} previous the one before it, tried when the current one fails (7.1)
 */

/**
 * @param {SessionRecord | undefined} record
 * @param {Uint8Array} listedKey the device's identity key in its verified list
 * @returns {{session: Session, isCurrent: boolean}[]}
 */
function candidates(record, listedKey) {
  if (!record) return [];
  const found = [];
  for (const [json, isCurrent] of [
    [record.current, true],
    [record.previous, false],
  ]) {
    if (!json) continue;
    const session = Session.fromJSON(json);
    if (!bytesEqual(session.remoteIdentityKey, listedKey)) {
      throw new UntrustedIdentity(
        `session with device ${record.deviceId}: identity key differs from the signed list`,
      );
    }
    found.push({ session, isCurrent });
  }
  return found;
}

/**
 * The record after `session` was used: kept in place, or promoted when it was the previous one.
 * @param {SessionRecord | undefined} record @param {string} accountId @param {string} deviceId
 * @param {Session} session @param {boolean} isCurrent
 * @returns {SessionRecord}
 */
function keep(record, accountId, deviceId, session, isCurrent) {
  if (isCurrent || !record) {
    return { deviceId, accountId, current: session.toJSON(), previous: record?.previous ?? null };
  }
  return { deviceId, accountId, current: session.toJSON(), previous: record.current };
}

/**
 * @typedef {object} Decrypted
 * @property {Uint8Array} plaintext
 * @property {SessionRecord} record the session record to store
 * @property {string | null} baseKey b64u base key to remember as used (a new inbound session)
 * @property {number | null} oneTimePrekeyId the one-time prekey to delete
 */

/**
 * Decrypt one message from a device of a verified list (section 7.1). Nothing is stored here.
 * @param {{data: Uint8Array, accountId: string, deviceId: string, listedKey: Uint8Array,
 *          record: SessionRecord | undefined, keys: import("../protocol/index.js").DeviceKeys,
 *          baseKeyUsed: boolean}} input
 * @returns {Decrypted}
 */
export function decryptFrom({ data, accountId, deviceId, listedKey, record, keys, baseKeyUsed }) {
  const message = decodeMessage(data);
  const sessions = candidates(record, listedKey);
  if (message instanceof PrekeyMessage) {
    for (const { session, isCurrent } of sessions) {
      // The sender has not heard back yet and keeps sending prekey messages on this session.
      if (session.role === "responder" && bytesEqual(session.baseKey, message.baseKey)) {
        const plaintext = session.decrypt(data, systemRng);
        return {
          plaintext,
          record: keep(record, accountId, deviceId, session, isCurrent),
          baseKey: null,
          oneTimePrekeyId: null,
        };
      }
    }
    const inbound = acceptPrekeyMessage(data, {
      identity: keys.identity,
      signedPrekeys: { [keys.signedPrekey.id]: keys.signedPrekey.key },
      oneTimePrekeys: Object.fromEntries(keys.oneTimePrekeys.map((k) => [k.id, k.key])),
      senderIdentityKey: listedKey,
      usedBaseKeys: baseKeyUsed ? [message.baseKey] : [],
      rng: systemRng,
    });
    return {
      plaintext: inbound.plaintext,
      record: {
        deviceId,
        accountId,
        current: inbound.session.toJSON(),
        previous: record?.current ?? null,
      },
      baseKey: b64uEncode(inbound.baseKey),
      oneTimePrekeyId: inbound.oneTimePrekeyId,
    };
  }
  if (sessions.length === 0) throw new UnknownSession(`no session with device ${deviceId}`);
  /** @type {any} */
  let failure = null;
  for (const { session, isCurrent } of sessions) {
    try {
      const plaintext = session.decrypt(data, systemRng);
      return {
        plaintext,
        record: keep(record, accountId, deviceId, session, isCurrent),
        baseKey: null,
        oneTimePrekeyId: null,
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
 * @param {{record: SessionRecord | undefined, listedKey: Uint8Array, bundle: any,
 *          keys: import("../protocol/index.js").DeviceKeys}} input
 * @returns {Session | null} null when there is no session and no bundle
 */
export function sessionForSending({ record, listedKey, bundle, keys }) {
  const [existing] = candidates(record, listedKey).filter((c) => c.isCurrent);
  if (existing) return existing.session;
  if (!bundle) return null;
  return Session.initiate({
    identity: keys.identity,
    bundle,
    listedIdentityKey: listedKey,
    rng: systemRng,
  });
}
