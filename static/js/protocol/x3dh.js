// X3DH key agreement (docs/protocol.md section 5).

import { concatBytes } from "./encoding.js";
import { X25519KeyPair } from "./keys.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./keys.js").IdentityKeyPair} IdentityKeyPair */
/** @typedef {import("./keys.js").PrekeyBundle} PrekeyBundle */
/** @typedef {import("./rng.js").Rng} Rng */

export const X3DH_LABEL = "Parley v1 X3DH";
const F = new Uint8Array(32).fill(0xff);
const ZERO_KEY = new Uint8Array(32);

export class X3DHResult {
  /**
   * @param {{sharedSecret: Uint8Array, associatedData: Uint8Array, dhOutputs: Uint8Array[],
   *          baseKey?: X25519KeyPair | null}} fields baseKey: the initiator's ephemeral key
   */
  constructor({ sharedSecret, associatedData, dhOutputs, baseKey = null }) {
    this.sharedSecret = sharedSecret;
    this.associatedData = associatedData;
    this.dhOutputs = dhOutputs;
    this.baseKey = baseKey;
  }
}

/** @param {Uint8Array[]} dhOutputs @returns {Uint8Array} */
export function deriveSharedSecret(dhOutputs) {
  return primitives.kdf(ZERO_KEY, X3DH_LABEL, concatBytes(F, ...dhOutputs), 32);
}

/**
 * Alice's side; `bundle` must already be verified (verifyPrekeyBundle). Draws rng(32).
 * @param {{identity: IdentityKeyPair, bundle: PrekeyBundle, rng: Rng}} options
 * @returns {X3DHResult}
 */
export function initiate({ identity, bundle, rng }) {
  const ephemeral = X25519KeyPair.generate(rng);
  const remoteIdentity = primitives.ed25519PkToX25519(bundle.identityKey);
  const outputs = [
    primitives.dh(identity.x25519Private, bundle.signedPrekey),
    primitives.dh(ephemeral.private, remoteIdentity),
    primitives.dh(ephemeral.private, bundle.signedPrekey),
  ];
  if (bundle.oneTimePrekey !== null) {
    outputs.push(primitives.dh(ephemeral.private, bundle.oneTimePrekey));
  }
  return new X3DHResult({
    sharedSecret: deriveSharedSecret(outputs),
    associatedData: concatBytes(identity.public, bundle.identityKey),
    dhOutputs: outputs,
    baseKey: ephemeral,
  });
}

/**
 * Bob's side, from the fields of a prekey message.
 * @param {{identity: IdentityKeyPair, signedPrekey: X25519KeyPair,
 *          oneTimePrekey: X25519KeyPair | null, initiatorIdentityKey: Uint8Array,
 *          baseKey: Uint8Array}} options
 * @returns {X3DHResult}
 */
export function respond({ identity, signedPrekey, oneTimePrekey, initiatorIdentityKey, baseKey }) {
  const remoteIdentity = primitives.ed25519PkToX25519(initiatorIdentityKey);
  const outputs = [
    primitives.dh(signedPrekey.private, remoteIdentity),
    primitives.dh(identity.x25519Private, baseKey),
    primitives.dh(signedPrekey.private, baseKey),
  ];
  if (oneTimePrekey !== null && oneTimePrekey !== undefined) {
    outputs.push(primitives.dh(oneTimePrekey.private, baseKey));
  }
  return new X3DHResult({
    sharedSecret: deriveSharedSecret(outputs),
    associatedData: concatBytes(initiatorIdentityKey, identity.public),
    dhOutputs: outputs,
  });
}
