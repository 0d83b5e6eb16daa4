// The account state's hash: an LtHash over value MACs (docs/protocol.md section 23.4); mirror
// of protocol/statehash.py. Order-independent and incremental: inserting a record adds its
// element, overwriting or removing subtracts the old one. An element is the 2048-byte
// XChaCha20 keystream keyed by the value MAC, read as 1024 little-endian u16 lanes; the sum
// is lane-wise mod 2^16.

import { MalformedMessage } from "./exceptions.js";
import * as primitives from "./primitives.js";

export const LTHASH_BYTES = 2048;
export const EMPTY_LTHASH = new Uint8Array(LTHASH_BYTES);
export const STATE_HASH_LABEL = "Parley v1 sync state";

const LANES = LTHASH_BYTES / 2;

// Lanes are little-endian; on a little-endian platform (every browser and node in practice)
// the keystream is read in place as u16 lanes, otherwise byte by byte.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** @param {Uint16Array} total @param {Uint8Array} valueMac @param {number} sign 1 or -1 */
function addElement(total, valueMac, sign) {
  const element = primitives.keystream(valueMac, LTHASH_BYTES);
  // Uint16Array stores modulo 2^16, so these are the lane-wise sum or difference.
  if (LITTLE_ENDIAN && element.byteOffset % 2 === 0) {
    const lanes = new Uint16Array(element.buffer, element.byteOffset, LANES);
    if (sign > 0) for (let i = 0; i < LANES; i++) total[i] += lanes[i];
    else for (let i = 0; i < LANES; i++) total[i] -= lanes[i];
    return;
  }
  for (let i = 0; i < LANES; i++) total[i] += sign * (element[2 * i] | (element[2 * i + 1] << 8));
}

/**
 * The LtHash with the elements of `add` inserted and those of `remove` taken out.
 * @param {Uint8Array} lthash
 * @param {{add?: Iterable<Uint8Array>, remove?: Iterable<Uint8Array>}} [changes]
 * @returns {Uint8Array}
 */
export function lthashUpdate(lthash, { add = [], remove = [] } = {}) {
  if (!(lthash instanceof Uint8Array) || lthash.length !== LTHASH_BYTES) {
    throw new MalformedMessage(`lthash: expected ${LTHASH_BYTES} bytes`);
  }
  const total = new Uint16Array(LANES);
  for (let i = 0; i < LANES; i++) total[i] = lthash[2 * i] | (lthash[2 * i + 1] << 8);
  for (const valueMac of add) addElement(total, valueMac, 1);
  for (const valueMac of remove) addElement(total, valueMac, -1);
  const out = new Uint8Array(LTHASH_BYTES);
  for (let i = 0; i < LANES; i++) {
    out[2 * i] = total[i] & 0xff;
    out[2 * i + 1] = total[i] >> 8;
  }
  return out;
}

/**
 * The 32 bytes an entry carries: H("Parley v1 sync state", lthash).
 * @param {Uint8Array} lthash
 * @returns {Uint8Array}
 */
export function stateHash(lthash) {
  return primitives.hash32(STATE_HASH_LABEL, lthash);
}
