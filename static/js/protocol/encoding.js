// Canonical encodings (docs/protocol.md section 2): binary fields, UTF-8, base64url.
// JSON, canonical and untrusted, is read and written by strictjson.js.

import { MalformedMessage } from "./exceptions.js";

export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF as a character, as Python's bytes.decode("utf-8") does.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Whether a string has no lone surrogates, i.e. has a UTF-8 encoding.
 * @param {string} value
 * @returns {boolean}
 */
export function isWellFormed(value) {
  return typeof value.isWellFormed === "function"
    ? value.isWellFormed()
    : !LONE_SURROGATE.test(value);
}

/**
 * UTF-8 bytes of a string; refuses non-strings and lone surrogates (instead of replacing
 * them) with `error`.
 * @param {string} value
 * @param {new (message: string) => Error} [error]
 * @returns {Uint8Array}
 */
export function utf8Encode(value, error = MalformedMessage) {
  if (typeof value !== "string") {
    throw new error(`expected a string, got ${typeof value}`);
  }
  if (!isWellFormed(value)) {
    throw new error("expected a string encodable as UTF-8, got lone surrogates");
  }
  return encoder.encode(value);
}

/**
 * Strict UTF-8 decoding.
 * @param {Uint8Array} data
 * @param {new (message: string) => Error} [error]
 * @returns {string}
 */
export function utf8Decode(data, error = MalformedMessage) {
  try {
    return decoder.decode(data);
  } catch {
    throw new error("expected UTF-8 text");
  }
}

/**
 * @param {...Uint8Array} parts
 * @returns {Uint8Array}
 */
export function concatBytes(...parts) {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Byte equality (not constant time; use only on public values or after authentication).
 * @param {Uint8Array | null | undefined} a
 * @param {Uint8Array | null | undefined} b
 * @returns {boolean}
 */
export function bytesEqual(a, b) {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Lexicographic order of byte strings, as Python compares bytes.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {number}
 */
export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * @param {Uint8Array} data
 * @returns {string} lowercase hex
 */
export function toHex(data) {
  let out = "";
  for (const byte of data) out += HEX[byte];
  return out;
}

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/**
 * @param {string} text lowercase or uppercase hex
 * @returns {Uint8Array}
 */
export function fromHex(text) {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new MalformedMessage("expected hex text");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * u16 big-endian byte length followed by the UTF-8 bytes (at most 65535 bytes).
 * @param {string} value
 * @returns {Uint8Array}
 */
export function encStr(value) {
  const raw = utf8Encode(value);
  if (raw.length > 0xffff) {
    throw new MalformedMessage(`expected a string of at most 65535 bytes, got ${raw.length}`);
  }
  const out = new Uint8Array(2 + raw.length);
  out[0] = raw.length >>> 8;
  out[1] = raw.length & 0xff;
  out.set(raw, 2);
  return out;
}

/**
 * @param {number} n
 * @param {number} size
 * @param {number} max
 */
function checkUint(n, size, max) {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new MalformedMessage(`expected an integer that fits in ${size} bytes, got ${n}`);
  }
}

/** @param {number} n @returns {Uint8Array} */
export function u8(n) {
  checkUint(n, 1, 0xff);
  return Uint8Array.of(n);
}

/** @param {number} n @returns {Uint8Array} */
export function u16(n) {
  checkUint(n, 2, 0xffff);
  return Uint8Array.of(n >>> 8, n & 0xff);
}

/** @param {number} n @returns {Uint8Array} */
export function u32(n) {
  checkUint(n, 4, 0xffffffff);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * A u64; JavaScript numbers hold 0..2^53-1, which is all the protocol uses (section 2.2).
 * @param {number} n
 * @returns {Uint8Array}
 */
export function u64(n) {
  checkUint(n, 8, MAX_SAFE_INTEGER);
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(n / 0x100000000));
  view.setUint32(4, n >>> 0);
  return out;
}

const labelCache = new Map();

/**
 * The domain-separation prefix that starts every signed or hashed structure.
 * @param {string} name
 * @returns {Uint8Array}
 */
export function label(name) {
  let bytes = labelCache.get(name);
  if (bytes === undefined) {
    bytes = encStr(name);
    labelCache.set(name, bytes);
  }
  return bytes;
}

/** Reads fixed-layout binary fields; every shortfall is an `error` error. */
export class Reader {
  /**
   * @param {Uint8Array} data
   * @param {{what: string, error?: new (message: string) => Error}} options
   */
  constructor(data, { what, error = MalformedMessage }) {
    this._data = data;
    this._pos = 0;
    this._what = what;
    this._error = error;
  }

  /** @param {number} n @returns {Uint8Array} */
  take(n) {
    if (this._pos + n > this._data.length) {
      throw new this._error(
        `${this._what}: expected ${n} more bytes at offset ${this._pos}, ` +
          `got ${this._data.length - this._pos}`,
      );
    }
    const chunk = this._data.subarray(this._pos, this._pos + n);
    this._pos += n;
    return chunk;
  }

  /**
   * A big-endian unsigned integer of `size` bytes; refuses values above 2^53-1.
   * @param {number} size
   * @returns {number}
   */
  uint(size) {
    const raw = this.take(size);
    let value = 0;
    for (const byte of raw) value = value * 256 + byte;
    if (value > MAX_SAFE_INTEGER) {
      throw new this._error(`${this._what}: expected an integer of at most 2^53-1`);
    }
    return value;
  }

  /** @returns {string} */
  string() {
    return utf8Decode(this.take(this.uint(2)), this._error);
  }

  /** @returns {Uint8Array} */
  rest() {
    const chunk = this._data.subarray(this._pos);
    this._pos = this._data.length;
    return chunk;
  }

  /** @returns {number} */
  remaining() {
    return this._data.length - this._pos;
  }

  end() {
    if (this._pos !== this._data.length) {
      throw new this._error(
        `${this._what}: expected end of data, got ${this._data.length - this._pos} trailing bytes`,
      );
    }
  }
}

const B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64U_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64U.length; i++) B64U_INDEX[B64U.charCodeAt(i)] = i;

/**
 * Base64url without padding.
 * @param {Uint8Array} data
 * @returns {string}
 */
export function b64uEncode(data) {
  let out = "";
  let i = 0;
  for (; i + 3 <= data.length; i += 3) {
    const n = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += B64U[n >> 18] + B64U[(n >> 12) & 63] + B64U[(n >> 6) & 63] + B64U[n & 63];
  }
  const left = data.length - i;
  if (left === 1) {
    const n = data[i] << 16;
    out += B64U[n >> 18] + B64U[(n >> 12) & 63];
  } else if (left === 2) {
    const n = (data[i] << 16) | (data[i + 1] << 8);
    out += B64U[n >> 18] + B64U[(n >> 12) & 63] + B64U[(n >> 6) & 63];
  }
  return out;
}

/**
 * Strict base64url without padding; `length` checks a fixed-size field.
 * @param {unknown} text
 * @param {{length?: number | null, what?: string}} [options]
 * @returns {Uint8Array}
 */
export function b64uDecode(text, { length = null, what = "value" } = {}) {
  if (typeof text !== "string" || text.length % 4 === 1) {
    throw new MalformedMessage(`${what}: expected unpadded base64url text`);
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let pos = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? B64U_INDEX[code] : -1;
    if (value < 0) throw new MalformedMessage(`${what}: expected unpadded base64url text`);
    acc = ((acc << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[pos++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) {
    throw new MalformedMessage(`${what}: expected canonical base64url (trailing bits set)`);
  }
  if (length !== null && out.length !== length) {
    throw new MalformedMessage(`${what}: expected ${length} bytes, got ${out.length}`);
  }
  return out;
}
