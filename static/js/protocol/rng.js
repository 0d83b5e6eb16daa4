// Randomness sources: an rng is any function n -> Uint8Array(n) (section 14 for the test stream).

import { concatBytes, encStr, u64 } from "./encoding.js";
import { blake2b, randomBytes } from "./primitives.js";

/** @typedef {(n: number) => Uint8Array} Rng */

const webCrypto = globalThis.crypto;
const MAX_RANDOM_VALUES = 65536;

/**
 * The platform CSPRNG; the default for real devices. This is the source libsodium.js's own
 * randombytes_buf draws from (crypto.getRandomValues), called directly because libsodium.js
 * fetches it four bytes per JavaScript call (about 70 µs for a 24-byte nonce in node).
 * @type {Rng}
 */
export function systemRng(n) {
  if (typeof webCrypto?.getRandomValues !== "function") return randomBytes(n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += MAX_RANDOM_VALUES) {
    webCrypto.getRandomValues(out.subarray(i, Math.min(n, i + MAX_RANDOM_VALUES)));
  }
  return out;
}

const TEST_RNG_LABEL = encStr("Parley v1 test rng");

/**
 * Deterministic stream: block_i = BLAKE2b(64, key=seed, enc_str(label) ‖ u64(i)).
 * Returns an rng function (works with or without `new`). Never use outside tests and vectors.
 * @param {Uint8Array} seed 32 bytes
 * @returns {Rng}
 */
export function TestRng(seed) {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new Error(`TestRng seed: expected 32 bytes, got ${seed?.length}`);
  }
  let counter = 0;
  /** @type {Uint8Array} */
  let buffer = new Uint8Array(0);
  return function rng(n) {
    while (buffer.length < n) {
      const block = blake2b(concatBytes(TEST_RNG_LABEL, u64(counter)), { size: 64, key: seed });
      buffer = concatBytes(buffer, block);
      counter += 1;
    }
    const out = buffer.slice(0, n);
    buffer = buffer.slice(n);
    return out;
  };
}
