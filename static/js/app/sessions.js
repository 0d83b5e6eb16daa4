// Pairwise sessions with other devices (docs/protocol.md sections 6-8): which session a
// message goes through, and how an incoming message is decrypted (7.1). Pure logic over
// records read from IndexedDB; the caller stores what comes back in one transaction.

import {
  acceptPrekeyMessage,
  DecryptionFailed,
  decodeMessage,
  encoding,
  PrekeyBundle,
  PrekeyMessage,
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
    // Its base key was used and no session holds it: the session was lost (storage cleared,
    // restored from a copy), so the message is asked for again (24.1), not dropped as a
    // replay; a replay of a session still held is refused by that session above.
    if (baseKeyUsed) throw new UnknownSession(`prekey message from device ${deviceId}: its session is no longer held here`);
    const inbound = acceptPrekeyMessage(data, {
      identity: keys.identity,
      signedPrekeys: { [keys.signedPrekey.id]: keys.signedPrekey.key },
      oneTimePrekeys: Object.fromEntries(keys.oneTimePrekeys.map((k) => [k.id, k.key])),
      senderIdentityKey: listedKey,
      usedBaseKeys: [],
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
 * With `fresh`, always a new one (a retry request that may not use the stored one, 24.1).
 * @param {{record: SessionRecord | undefined, listedKey: Uint8Array, bundle: any,
 *          keys: import("../protocol/index.js").DeviceKeys, fresh?: boolean}} input
 * @returns {Session | null} null when there is no session to use and no bundle
 */
export function sessionForSending({ record, listedKey, bundle, keys, fresh = false }) {
  const [existing] = candidates(record, listedKey).filter((c) => c.isCurrent);
  if (existing && !fresh) return existing.session;
  if (!bundle) return null;
  return Session.initiate({
    identity: keys.identity,
    bundle,
    listedIdentityKey: listedKey,
    rng: systemRng,
  });
}

/**
 * Whether a retry request may go in the stored session (docs/protocol.md 24.1): only on the
 * first ask, and only in a session this device started and has not heard back on (it still
 * sends prekey messages, so the other side can start it afresh). A device whose state is
 * behind (a restored copy) has a stale sending chain too: otherwise the request goes in a
 * new session from a claimed bundle.
 * @param {SessionRecord | undefined} record @param {Uint8Array} listedKey @param {number} count
 */
export function retryRequestReuses(record, listedKey, count) {
  if (count !== 1) return false;
  const [existing] = candidates(record, listedKey).filter((c) => c.isCurrent);
  return Boolean(existing && existing.session.role === "initiator" && existing.session.pendingPrekey);
}

/**
 * A new session with a device from the signed prekey its retry request carried (24.1: X3DH
 * without a one-time prekey), the signature checked under the device's key in the signed
 * list; InvalidSignature otherwise.
 * @param {{deviceId: string, listedKey: Uint8Array, signedPrekey: {id: number, public_key: string, signature: string},
 *          keys: import("../protocol/index.js").DeviceKeys}} input
 * @returns {Session}
 */
export function sessionFromSignedPrekey({ deviceId, listedKey, signedPrekey, keys }) {
  const bundle = new PrekeyBundle({
    deviceId,
    identityKey: listedKey,
    signedPrekeyId: signedPrekey.id,
    signedPrekey: b64uDecode(signedPrekey.public_key, { length: 32, what: "signed prekey" }),
    signedPrekeySignature: b64uDecode(signedPrekey.signature, { length: 64, what: "signed prekey signature" }),
  });
  return Session.initiate({ identity: keys.identity, bundle, listedIdentityKey: listedKey, rng: systemRng });
}
