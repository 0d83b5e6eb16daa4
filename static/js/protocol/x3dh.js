// X3DH key agreement (docs/protocol.md section 5), and PQXDH for version 2 (section 27.2).

import { concatBytes, u8, u32 } from "./encoding.js";
import { X25519KeyPair } from "./keys.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./keys.js").IdentityKeyPair} IdentityKeyPair */
/** @typedef {import("./keys.js").KemPrekey} KemPrekey */
/** @typedef {import("./keys.js").PrekeyBundle} PrekeyBundle */
/** @typedef {import("./rng.js").Rng} Rng */

export const X3DH_LABEL = "Parley v1 X3DH";
export const PQXDH_LABEL = "Parley v2 PQXDH";
const F = new Uint8Array(32).fill(0xff);
const ZERO_KEY = new Uint8Array(32);
const EMPTY = new Uint8Array(0);

export class X3DHResult {
  /**
   * @param {{sharedSecret: Uint8Array, associatedData: Uint8Array, dhOutputs: Uint8Array[],
   *          baseKey?: X25519KeyPair | null, version?: number, binding?: Uint8Array,
   *          kemCiphertext?: Uint8Array | null}} fields
   *          baseKey: the initiator's ephemeral key; binding: version 2, in AD (section 27.2)
   */
  constructor({
    sharedSecret,
    associatedData,
    dhOutputs,
    baseKey = null,
    version = 1,
    binding = EMPTY,
    kemCiphertext = null,
  }) {
    this.sharedSecret = sharedSecret;
    this.associatedData = associatedData;
    this.dhOutputs = dhOutputs;
    this.baseKey = baseKey;
    this.version = version;
    this.binding = binding;
    this.kemCiphertext = kemCiphertext;
  }
}

/** @param {Uint8Array[]} dhOutputs @param {Uint8Array | null} [kemShared] @returns {Uint8Array} */
export function deriveSharedSecret(dhOutputs, kemShared = null) {
  if (kemShared === null) return primitives.kdf(ZERO_KEY, X3DH_LABEL, concatBytes(F, ...dhOutputs), 32);
  return primitives.kdf(ZERO_KEY, PQXDH_LABEL, concatBytes(F, ...dhOutputs, kemShared), 32);
}

/**
 * H("Parley v2 session", every field of the first message and the KEM key used).
 * @param {{baseKey: Uint8Array, signedPrekeyId: number, oneTimePrekeyId: number | null,
 *          kemPrekeyId: number, kemPublicKey: Uint8Array, kemCiphertext: Uint8Array}} fields
 * @returns {Uint8Array}
 */
export function sessionBinding({
  baseKey,
  signedPrekeyId,
  oneTimePrekeyId,
  kemPrekeyId,
  kemPublicKey,
  kemCiphertext,
}) {
  return primitives.hash32(
    "Parley v2 session",
    concatBytes(
      baseKey,
      u32(signedPrekeyId),
      u8(oneTimePrekeyId === null ? 0 : 1),
      u32(oneTimePrekeyId ?? 0),
      u32(kemPrekeyId),
      primitives.hash32("Parley v2 kem public key", kemPublicKey),
      kemCiphertext,
    ),
  );
}

/**
 * Alice's side; `bundle` must already be verified (verifyPrekeyBundle). Draws rng(32) for the
 * base key, then, for a bundle with a KEM prekey (version 2), rng(32) for the encapsulation.
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
  const ad = concatBytes(identity.public, bundle.identityKey);
  const kem = bundle.kemPrekey;
  if (kem === null) {
    return new X3DHResult({
      sharedSecret: deriveSharedSecret(outputs),
      associatedData: ad,
      dhOutputs: outputs,
      baseKey: ephemeral,
    });
  }
  const [ciphertext, shared] = primitives.mlkem768Encapsulate(kem.publicKey, rng);
  const binding = sessionBinding({
    baseKey: ephemeral.public,
    signedPrekeyId: bundle.signedPrekeyId,
    oneTimePrekeyId: bundle.oneTimePrekeyId,
    kemPrekeyId: kem.id,
    kemPublicKey: kem.publicKey,
    kemCiphertext: ciphertext,
  });
  return new X3DHResult({
    sharedSecret: deriveSharedSecret(outputs, shared),
    associatedData: concatBytes(ad, binding),
    dhOutputs: outputs,
    baseKey: ephemeral,
    version: 2,
    binding,
    kemCiphertext: ciphertext,
  });
}

/**
 * Bob's side, from the fields of a prekey message (version 2 with `kemPrekey` and
 * `kemCiphertext`, and then the prekey ids, which the binding covers).
 * @param {{identity: IdentityKeyPair, signedPrekey: X25519KeyPair,
 *          oneTimePrekey: X25519KeyPair | null, initiatorIdentityKey: Uint8Array,
 *          baseKey: Uint8Array, signedPrekeyId?: number, oneTimePrekeyId?: number | null,
 *          kemPrekey?: KemPrekey | null, kemCiphertext?: Uint8Array | null}} options
 * @returns {X3DHResult}
 */
export function respond({
  identity,
  signedPrekey,
  oneTimePrekey,
  initiatorIdentityKey,
  baseKey,
  signedPrekeyId = 0,
  oneTimePrekeyId = null,
  kemPrekey = null,
  kemCiphertext = null,
}) {
  const remoteIdentity = primitives.ed25519PkToX25519(initiatorIdentityKey);
  const outputs = [
    primitives.dh(signedPrekey.private, remoteIdentity),
    primitives.dh(identity.x25519Private, baseKey),
    primitives.dh(signedPrekey.private, baseKey),
  ];
  if (oneTimePrekey !== null && oneTimePrekey !== undefined) {
    outputs.push(primitives.dh(oneTimePrekey.private, baseKey));
  }
  const ad = concatBytes(initiatorIdentityKey, identity.public);
  if (kemPrekey === null || kemCiphertext === null) {
    return new X3DHResult({
      sharedSecret: deriveSharedSecret(outputs),
      associatedData: ad,
      dhOutputs: outputs,
    });
  }
  const shared = primitives.mlkem768Decapsulate(kemPrekey.seed, kemCiphertext);
  const binding = sessionBinding({
    baseKey,
    signedPrekeyId,
    oneTimePrekeyId,
    kemPrekeyId: kemPrekey.id,
    kemPublicKey: kemPrekey.public,
    kemCiphertext,
  });
  return new X3DHResult({
    sharedSecret: deriveSharedSecret(outputs, shared),
    associatedData: concatBytes(ad, binding),
    dhOutputs: outputs,
    version: 2,
    binding,
  });
}
