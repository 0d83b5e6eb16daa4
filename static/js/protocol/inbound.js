// Bob's side of starting a session: accepting the first prekey message from a device
// (docs/protocol.md section 7.1).

import { b64uEncode, bytesEqual } from "./encoding.js";
import {
  DowngradeRefused,
  ReplayDetected,
  UnknownPrekey,
  UnknownSession,
  UntrustedIdentity,
} from "./exceptions.js";
import { decodeMessage, PrekeyMessage } from "./message.js";
import { KemState } from "./pqratchet.js";
import { Session } from "./ratchet.js";
import * as x3dh from "./x3dh.js";

/** @typedef {import("./keys.js").IdentityKeyPair} IdentityKeyPair */
/** @typedef {import("./keys.js").X25519KeyPair} X25519KeyPair */
/** @typedef {import("./keys.js").KemPrekey} KemPrekey */
/** @typedef {import("./rng.js").Rng} Rng */

/**
 * Result of accepting a prekey message. The caller then records `baseKey` as used, deletes
 * one-time prekey `oneTimePrekeyId` and the one-time KEM prekey `oneTimeKemPrekeyId` (never
 * the last-resort one) and stores `session`.
 */
export class InboundSession {
  /**
   * @param {{session: Session, plaintext: Uint8Array, baseKey: Uint8Array,
   *          oneTimePrekeyId: number | null, oneTimeKemPrekeyId?: number | null}} fields
   */
  constructor({ session, plaintext, baseKey, oneTimePrekeyId, oneTimeKemPrekeyId = null }) {
    this.session = session;
    this.plaintext = plaintext;
    this.baseKey = baseKey;
    this.oneTimePrekeyId = oneTimePrekeyId;
    this.oneTimeKemPrekeyId = oneTimeKemPrekeyId;
  }
}

/**
 * @template T
 * @param {Map<number, T> | Record<string, T>} keys
 * @param {number} id
 * @returns {T | undefined}
 */
function prekey(keys, id) {
  if (keys instanceof Map) return keys.get(id);
  return Object.hasOwn(keys, String(id)) ? keys[String(id)] : undefined;
}

/**
 * @param {Iterable<Uint8Array | string>} used byte strings, or their base64url forms
 * @param {Uint8Array} baseKey
 * @returns {boolean}
 */
function containsKey(used, baseKey) {
  const text = b64uEncode(baseKey);
  for (const key of used) {
    if (typeof key === "string" ? key === text : bytesEqual(key, baseKey)) return true;
  }
  return false;
}

/**
 * Start a responder session from a prekey message (section 7.1, step 2; version 2 in 27.2,
 * with `kemPrekeys`: the one-time and the last-resort KEM prekeys by id).
 *
 * `senderIdentityKey` comes from the sender's verified device list, and so does
 * `senderSpeaksV2` (its entry lists version 2): a version-1 prekey message from such a device
 * is DowngradeRefused (section 27.5). Nothing is consumed here: on success the caller records
 * the base key and deletes the one-time prekeys.
 * @param {Uint8Array} data
 * @param {{identity: IdentityKeyPair,
 *          signedPrekeys: Map<number, X25519KeyPair> | Record<string, X25519KeyPair>,
 *          oneTimePrekeys: Map<number, X25519KeyPair> | Record<string, X25519KeyPair>,
 *          senderIdentityKey: Uint8Array, usedBaseKeys: Iterable<Uint8Array | string>,
 *          rng: Rng, kemPrekeys?: Map<number, KemPrekey> | Record<string, KemPrekey>,
 *          senderSpeaksV2?: boolean}} options
 * @returns {InboundSession}
 */
export function acceptPrekeyMessage(
  data,
  {
    identity,
    signedPrekeys,
    oneTimePrekeys,
    senderIdentityKey,
    usedBaseKeys,
    rng,
    kemPrekeys = new Map(),
    senderSpeaksV2 = false,
  },
) {
  const message = decodeMessage(data);
  if (!(message instanceof PrekeyMessage)) {
    throw new UnknownSession(
      "message: expected a prekey message to start a session, got a ratchet message",
    );
  }
  if (message.version === 1 && senderSpeaksV2) {
    throw new DowngradeRefused(
      "prekey message: version 1 from a device whose signed entry lists version 2",
    );
  }
  if (!bytesEqual(message.identityKey, senderIdentityKey)) {
    throw new UntrustedIdentity(
      "prekey message: sender identity key differs from the signed device list",
    );
  }
  if (containsKey(usedBaseKeys, message.baseKey)) {
    throw new ReplayDetected("prekey message: base key already used");
  }
  const signedPrekey = prekey(signedPrekeys, message.signedPrekeyId);
  if (signedPrekey === undefined) {
    throw new UnknownPrekey(`prekey message: no signed prekey with id ${message.signedPrekeyId}`);
  }
  let oneTimePrekey = null;
  if (message.oneTimePrekeyId !== null) {
    oneTimePrekey = prekey(oneTimePrekeys, message.oneTimePrekeyId) ?? null;
    if (oneTimePrekey === null) {
      throw new UnknownPrekey(
        `prekey message: no one-time prekey with id ${message.oneTimePrekeyId}`,
      );
    }
  }
  let kemPrekey = null;
  if (message.kemPrekeyId !== null) {
    kemPrekey = prekey(kemPrekeys, message.kemPrekeyId) ?? null;
    if (kemPrekey === null) {
      throw new UnknownPrekey(`prekey message: no KEM prekey with id ${message.kemPrekeyId}`);
    }
  }
  const agreement = x3dh.respond({
    identity,
    signedPrekey,
    oneTimePrekey,
    initiatorIdentityKey: message.identityKey,
    baseKey: message.baseKey,
    signedPrekeyId: message.signedPrekeyId,
    oneTimePrekeyId: message.oneTimePrekeyId,
    kemPrekey,
    kemCiphertext: message.kemCiphertext,
  });
  const session = new Session({
    role: "responder",
    localIdentityKey: identity.public,
    remoteIdentityKey: message.identityKey,
    baseKey: message.baseKey,
    rootKey: agreement.sharedSecret,
    dhSelf: signedPrekey,
    dhRemote: null,
    sendChainKey: null,
    recvChainKey: null,
    version: agreement.version,
    binding: agreement.binding,
    kem: agreement.version === 1 ? null : new KemState(),
  });
  const plaintext = session.decryptRatchetMessage(message.message, rng);
  return new InboundSession({
    session,
    plaintext,
    baseKey: message.baseKey,
    oneTimePrekeyId: message.oneTimePrekeyId,
    oneTimeKemPrekeyId: kemPrekey === null || kemPrekey.lastResort ? null : kemPrekey.id,
  });
}
