// The keys of a Double Ratchet session: the root and chain KDFs (docs/protocol.md section 6.1)
// and the bounded store of skipped message keys (section 6.4), in its section 8 form.

import { b64uDecode, b64uEncode, toHex } from "./encoding.js";
import { MalformedMessage } from "./exceptions.js";
import * as primitives from "./primitives.js";

/** @typedef {{dh: Uint8Array, n: number, key: Uint8Array}} SkippedKey */

export const MAX_SKIP = 1000;
export const MAX_SKIPPED_TOTAL = 2000;

const CHAIN_MESSAGE = Uint8Array.of(0x01);
const CHAIN_NEXT = Uint8Array.of(0x02);

/**
 * [new root key, chain key] = split(KDF(rk, "Parley v1 root", dh_out, 64)).
 * @param {Uint8Array} rootKey
 * @param {Uint8Array} dhOut
 * @returns {[Uint8Array, Uint8Array]}
 */
export function kdfRk(rootKey, dhOut) {
  const out = primitives.kdf(rootKey, "Parley v1 root", dhOut, 64);
  return [out.slice(0, 32), out.slice(32)];
}

/**
 * [message key, next chain key] from a chain key.
 * @param {Uint8Array} chainKey
 * @returns {[Uint8Array, Uint8Array]}
 */
export function kdfCk(chainKey) {
  return [
    primitives.kdf(chainKey, "Parley v1 chain", CHAIN_MESSAGE, 32),
    primitives.kdf(chainKey, "Parley v1 chain", CHAIN_NEXT, 32),
  ];
}

/** @param {Uint8Array} dh @param {number} n @returns {string} */
function skippedId(dh, n) {
  return `${toHex(dh)}:${n}`;
}

/** Message keys of skipped messages by (remote ratchet key, n), oldest first. */
export class SkippedKeys {
  /** @param {Map<string, SkippedKey>} [keys] */
  constructor(keys = new Map()) {
    this.keys = keys;
  }

  /** @returns {number} */
  get size() {
    return this.keys.size;
  }

  /**
   * The key of message `n` of chain `dh`, deleted as it is handed out (used once).
   * @param {Uint8Array} dh
   * @param {number} n
   * @returns {Uint8Array | undefined}
   */
  pop(dh, n) {
    const id = skippedId(dh, n);
    const skipped = this.keys.get(id);
    if (skipped === undefined) return undefined;
    this.keys.delete(id);
    return skipped.key;
  }

  /** @param {Uint8Array} dh @param {number} n @param {Uint8Array} key */
  add(dh, n, key) {
    this.keys.set(skippedId(dh, n), { dh, n, key });
  }

  /** Keep at most MAX_SKIPPED_TOTAL keys; those messages become undecryptable. */
  dropOldest() {
    while (this.keys.size > MAX_SKIPPED_TOTAL) {
      this.keys.delete(/** @type {string} */ (this.keys.keys().next().value));
    }
  }

  /** @returns {SkippedKeys} */
  copy() {
    return new SkippedKeys(new Map(this.keys));
  }

  /** The `skipped` array of a serialized session (section 8). */
  toList() {
    return Array.from(this.keys.values(), (s) => ({
      dh: b64uEncode(s.dh),
      n: s.n,
      key: b64uEncode(s.key),
    }));
  }

  /**
   * Parse the `skipped` array: a bad key or n is MalformedMessage; a missing or mistyped
   * field throws TypeError, which Session.fromJSON reports.
   * @param {any[]} items
   * @returns {SkippedKeys}
   */
  static fromList(items) {
    const skipped = new SkippedKeys();
    for (const s of items) {
      const dh = b64uDecode(s.dh, { length: 32, what: "skipped dh" });
      const n = index(s.n);
      skipped.add(dh, n, b64uDecode(s.key, { length: 32, what: "skipped key" }));
    }
    return skipped;
  }
}

/** @param {unknown} value @returns {number} */
function index(value) {
  const n = /** @type {number} */ (value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new MalformedMessage(
      `session skipped n: expected an integer in 0..${Number.MAX_SAFE_INTEGER}, got ${value}`,
    );
  }
  return n;
}
