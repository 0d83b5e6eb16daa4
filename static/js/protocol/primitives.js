// Thin wrappers over libsodium.js; docs/protocol.md section 1. Nothing hand-rolled.

import sodium from "libsodium-wrappers-sumo";

import { concatBytes, label as encLabel } from "./encoding.js";
import { DecryptionFailed, InvalidKey, InvalidSignature } from "./exceptions.js";

export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;
// Fixed by libsodium's secretstream construction; checked against sodium in ready().
export const STREAM_HEADER_BYTES = 24;
export const STREAM_ABYTES = 17;
export const TAG_MESSAGE = 0;
export const TAG_FINAL = 3;

/** Resolves once libsodium is loaded; await it once before calling anything else. */
export async function ready() {
  await sodium.ready;
  if (
    sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES !== STREAM_HEADER_BYTES ||
    sodium.crypto_secretstream_xchacha20poly1305_ABYTES !== STREAM_ABYTES ||
    sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE !== TAG_MESSAGE ||
    sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL !== TAG_FINAL
  ) {
    throw new Error("libsodium secretstream constants differ from the protocol's");
  }
}

/**
 * @param {unknown} value
 * @param {number} length
 * @param {string} what
 */
function requireLength(value, length, what) {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    const got = value instanceof Uint8Array ? value.length : typeof value;
    throw new InvalidKey(`${what}: expected ${length} bytes, got ${got}`);
  }
}

/**
 * [public 32, secret 64] from a 32-byte seed.
 * @param {Uint8Array} seed
 * @returns {[Uint8Array, Uint8Array]}
 */
export function ed25519Keypair(seed) {
  requireLength(seed, 32, "Ed25519 seed");
  const { publicKey, privateKey } = sodium.crypto_sign_seed_keypair(seed);
  return [publicKey, privateKey];
}

/**
 * @param {Uint8Array} secretKey 64 bytes
 * @param {Uint8Array} message
 * @returns {Uint8Array} 64-byte signature
 */
export function ed25519Sign(secretKey, message) {
  requireLength(secretKey, 64, "Ed25519 secret key");
  return sodium.crypto_sign_detached(message, secretKey);
}

/**
 * Throw InvalidSignature naming `what` unless `signature` is valid.
 * @param {Uint8Array} publicKey
 * @param {Uint8Array} message
 * @param {Uint8Array} signature
 * @param {{what: string}} options
 */
export function ed25519Verify(publicKey, message, signature, { what }) {
  requireLength(publicKey, 32, `${what} public key`);
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new InvalidSignature(
      `${what}: expected a 64-byte signature, got ${signature?.length ?? typeof signature}`,
    );
  }
  let valid;
  try {
    valid = sodium.crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    valid = false;
  }
  if (!valid) throw new InvalidSignature(`${what}: signature does not verify`);
}

/**
 * @param {Uint8Array} publicKey Ed25519 public key
 * @returns {Uint8Array} its X25519 form
 */
export function ed25519PkToX25519(publicKey) {
  requireLength(publicKey, 32, "Ed25519 public key");
  try {
    return sodium.crypto_sign_ed25519_pk_to_curve25519(publicKey);
  } catch {
    throw new InvalidKey("Ed25519 public key: expected a valid curve point");
  }
}

/**
 * @param {Uint8Array} secretKey Ed25519 secret key (64 bytes)
 * @returns {Uint8Array} its X25519 form
 */
export function ed25519SkToX25519(secretKey) {
  requireLength(secretKey, 64, "Ed25519 secret key");
  return sodium.crypto_sign_ed25519_sk_to_curve25519(secretKey);
}

/**
 * @param {Uint8Array} privateKey 32 bytes, unclamped (libsodium clamps)
 * @returns {Uint8Array}
 */
export function x25519Public(privateKey) {
  requireLength(privateKey, 32, "X25519 private key");
  return sodium.crypto_scalarmult_base(privateKey);
}

// 2^255 - 19, little-endian.
const CURVE25519_P = Uint8Array.from([0xed, ...new Array(30).fill(0xff), 0x7f]);

/**
 * True if the key is the unique encoding of its value (little-endian u < 2^255 - 19).
 * X25519 ignores the top bit, so without this check one key has two encodings and a
 * replayed prekey message could pass the used-base-key check with a flipped top bit.
 * @param {Uint8Array} publicKey
 * @returns {boolean}
 */
export function isCanonicalX25519(publicKey) {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  for (let i = 31; i >= 0; i--) {
    if (publicKey[i] !== CURVE25519_P[i]) return publicKey[i] < CURVE25519_P[i];
  }
  return false;
}

/**
 * X25519; refuses an all-zero output (low-order public key).
 * @param {Uint8Array} privateKey
 * @param {Uint8Array} publicKey
 * @returns {Uint8Array}
 */
export function dh(privateKey, publicKey) {
  requireLength(privateKey, 32, "X25519 private key");
  requireLength(publicKey, 32, "X25519 public key");
  let out;
  try {
    out = sodium.crypto_scalarmult(privateKey, publicKey);
  } catch {
    throw new InvalidKey("X25519 public key: expected a point of large order");
  }
  if (out.every((byte) => byte === 0)) {
    throw new InvalidKey("X25519 public key: expected a point of large order");
  }
  return out;
}

/**
 * BLAKE2b with output length `size`, keyed when `key` is non-empty.
 * @param {Uint8Array} message
 * @param {{size: number, key?: Uint8Array | null}} options
 * @returns {Uint8Array}
 */
export function blake2b(message, { size, key = null }) {
  return sodium.crypto_generichash(size, message, key && key.length ? key : null);
}

/**
 * KDF(key, label, data, n) = BLAKE2b(n, key, enc_str(label) ‖ data); section 1.1.
 * @param {Uint8Array} key
 * @param {string} label
 * @param {Uint8Array} data
 * @param {number} size
 * @returns {Uint8Array}
 */
export function kdf(key, label, data, size) {
  return blake2b(concatBytes(encLabel(label), data), { size, key });
}

/**
 * H(label, data) = unkeyed BLAKE2b-256 of enc_str(label) ‖ data; section 1.1.
 * @param {string} label
 * @param {Uint8Array} data
 * @returns {Uint8Array}
 */
export function hash32(label, data) {
  return blake2b(concatBytes(encLabel(label), data), { size: 32 });
}

/**
 * H(label, data) over data given in pieces (crypto_generichash_init/update/final): the same
 * 32 bytes as `hash32(label, data)`, in constant memory (attachments, section 26).
 */
export class Hash32 {
  /** @param {string} label */
  constructor(label) {
    this.state = sodium.crypto_generichash_init(null, 32);
    sodium.crypto_generichash_update(this.state, encLabel(label));
  }

  /** @param {Uint8Array} data */
  update(data) {
    sodium.crypto_generichash_update(this.state, data);
  }

  /** @returns {Uint8Array} */
  digest() {
    return sodium.crypto_generichash_final(this.state, 32);
  }
}

/**
 * @param {Uint8Array} key
 * @param {Uint8Array} nonce
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} associatedData
 * @returns {Uint8Array} ciphertext ‖ tag
 */
export function aeadEncrypt(key, nonce, plaintext, associatedData) {
  return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    plaintext,
    associatedData,
    null,
    nonce,
    key,
  );
}

/**
 * @param {Uint8Array} key
 * @param {Uint8Array} nonce
 * @param {Uint8Array} ciphertext
 * @param {Uint8Array} associatedData
 * @returns {Uint8Array}
 */
export function aeadDecrypt(key, nonce, ciphertext, associatedData) {
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      ciphertext,
      associatedData,
      nonce,
      key,
    );
  } catch {
    throw new DecryptionFailed("message authentication failed");
  }
}

/**
 * The XChaCha20 keystream of `key` under the all-zero nonce from block 1 (section 23.4): the
 * same bytes as the AEAD's ciphertext of `size` zero bytes without its tag.
 * @param {Uint8Array} key
 * @param {number} size
 * @returns {Uint8Array}
 */
export function keystream(key, size) {
  requireLength(key, 32, "keystream key");
  return sodium.crypto_stream_xchacha20_xor_ic(
    new Uint8Array(size),
    new Uint8Array(AEAD_NONCE_BYTES),
    1,
    key,
  );
}

/**
 * Constant-time comparison of two MACs (sodium_memcmp); different lengths are unequal.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function macEqual(a, b) {
  return a.length === b.length && sodium.memcmp(a, b);
}

/**
 * A secretstream state for key and header, used for both push and pull (section 12):
 * init_pull derives exactly the state init_push would after drawing this header.
 * @param {Uint8Array} key
 * @param {Uint8Array} header
 * @returns {number} libsodium.js state address
 */
export function streamState(key, header) {
  requireLength(key, 32, "secretstream key");
  requireLength(header, STREAM_HEADER_BYTES, "secretstream header");
  return sodium.crypto_secretstream_xchacha20poly1305_init_pull(header, key);
}

/**
 * @param {number} state
 * @param {Uint8Array} chunk
 * @param {number} tag
 * @returns {Uint8Array}
 */
export function streamPush(state, chunk, tag) {
  return sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, null, tag);
}

/**
 * @param {number} state
 * @param {Uint8Array} chunk
 * @returns {[Uint8Array, number]} plaintext and tag
 */
export function streamPull(state, chunk) {
  /** @type {import("libsodium-wrappers-sumo").StreamChunk | false} */
  let result;
  try {
    result = sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, null);
  } catch {
    result = false;
  }
  if (!result) throw new DecryptionFailed("secretstream chunk authentication failed");
  return [result.message, result.tag];
}

/**
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} recipientPublicKey X25519
 * @returns {Uint8Array}
 */
export function sealedBox(plaintext, recipientPublicKey) {
  requireLength(recipientPublicKey, 32, "X25519 public key");
  return sodium.crypto_box_seal(plaintext, recipientPublicKey);
}

/**
 * @param {Uint8Array} ciphertext
 * @param {Uint8Array} publicKey
 * @param {Uint8Array} privateKey
 * @returns {Uint8Array}
 */
export function sealedBoxOpen(ciphertext, publicKey, privateKey) {
  try {
    return sodium.crypto_box_seal_open(ciphertext, publicKey, privateKey);
  } catch {
    throw new DecryptionFailed("sealed box authentication failed");
  }
}

/**
 * n bytes from libsodium's CSPRNG.
 * @param {number} n
 * @returns {Uint8Array}
 */
export function randomBytes(n) {
  return sodium.randombytes_buf(n);
}

export const MLKEM768_SEED_BYTES = 64;
export const MLKEM768_PUBLIC_KEY_BYTES = 1184;
export const MLKEM768_CIPHERTEXT_BYTES = 1088;
export const MLKEM768_SHARED_BYTES = 32;

// ML-KEM-768 (FIPS 203) from libsodium; the Python mirror has `cryptography`'s. A key pair is
// kept as its 64-byte seed (d ‖ z): the same seed gives the same public key in both
// (tests/vectors/mlkem.json).

/** The encapsulation key of the key pair of `seed`. @param {Uint8Array} seed @returns {Uint8Array} */
export function mlkem768Public(seed) {
  requireLength(seed, MLKEM768_SEED_BYTES, "ML-KEM-768 seed");
  return sodium.crypto_kem_mlkem768_seed_keypair(seed).publicKey;
}

/**
 * Refuse (InvalidKey) what is not a valid ML-KEM-768 encapsulation key: not 1184 bytes, or a
 * coefficient out of range (libsodium's encapsulation checks it; the result is not used).
 * @param {Uint8Array} publicKey
 */
export function mlkem768CheckPublic(publicKey) {
  mlkem768Encapsulate(publicKey, (n) => new Uint8Array(n));
}

/**
 * [ciphertext, shared secret] for `publicKey`, from 32 bytes of `rng` (libsodium's
 * deterministic encapsulation: reproducible with a TestRng).
 * @param {Uint8Array} publicKey @param {(n: number) => Uint8Array} rng
 * @returns {[Uint8Array, Uint8Array]}
 */
export function mlkem768Encapsulate(publicKey, rng) {
  requireLength(publicKey, MLKEM768_PUBLIC_KEY_BYTES, "ML-KEM-768 public key");
  let result;
  try {
    result = sodium.crypto_kem_mlkem768_enc_deterministic(publicKey, rng(32));
  } catch {
    throw new InvalidKey("ML-KEM-768 public key: not a valid encapsulation key");
  }
  return [result.ciphertext, result.sharedSecret];
}

/**
 * The shared secret of `ciphertext`. A ciphertext of the right length never fails: one that
 * was altered gives another secret (ML-KEM's implicit rejection).
 * @param {Uint8Array} seed @param {Uint8Array} ciphertext @returns {Uint8Array}
 */
export function mlkem768Decapsulate(seed, ciphertext) {
  requireLength(seed, MLKEM768_SEED_BYTES, "ML-KEM-768 seed");
  if (ciphertext.length !== MLKEM768_CIPHERTEXT_BYTES) {
    throw new DecryptionFailed(`ML-KEM-768 ciphertext: expected ${MLKEM768_CIPHERTEXT_BYTES} bytes, got ${ciphertext.length}`);
  }
  return sodium.crypto_kem_mlkem768_dec(ciphertext, sodium.crypto_kem_mlkem768_seed_keypair(seed).privateKey);
}
