// Canonical encodings (docs/protocol.md section 2): binary fields, base64url, canonical JSON.

import { InvalidJson, MalformedMessage } from "./exceptions.js";

export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;
/** Arrays and objects nest at most this deep in canonical JSON (section 2.2). */
export const MAX_JSON_DEPTH = 32;

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF as a character, as Python's bytes.decode("utf-8") does.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** @param {string} value */
function isWellFormed(value) {
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
  for (const byte of data) out += byte.toString(16).padStart(2, "0");
  return out;
}

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

/**
 * Order of strings by code point (Python's order), not by UTF-16 code unit.
 * @param {string} a
 * @param {string} b
 * @returns {number}
 */
function compareCodePoints(a, b) {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return (x.done ? 0 : 1) - (y.done ? 0 : 1);
    const cx = /** @type {number} */ (x.value.codePointAt(0));
    const cy = /** @type {number} */ (y.value.codePointAt(0));
    if (cx !== cy) return cx - cy;
  }
}

/** @param {unknown} value @returns {boolean} */
export function isPlainObject(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** @param {string} value @returns {string} */
function jsonString(value) {
  if (!isWellFormed(value)) throw new MalformedMessage("expected text without lone surrogates");
  return JSON.stringify(value);
}

/**
 * @param {unknown} value
 * @param {number} [depth] arrays and objects around `value`
 * @returns {string}
 */
function canonicalText(value, depth = 0) {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "string") return jsonString(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new MalformedMessage(`expected an integer in 0..2^53-1, got ${value}`);
    }
    return String(value);
  }
  const isArray = Array.isArray(value);
  if ((isArray || isPlainObject(value)) && depth >= MAX_JSON_DEPTH) {
    throw new MalformedMessage(`expected JSON nested at most ${MAX_JSON_DEPTH} levels deep`);
  }
  if (isArray) {
    const items = /** @type {unknown[]} */ (value).map((item) => canonicalText(item, depth + 1));
    return `[${items.join(",")}]`;
  }
  if (isPlainObject(value)) {
    const object = /** @type {Record<string, unknown>} */ (value);
    const keys = Object.keys(object).sort(compareCodePoints);
    const members = keys.map((k) => `${jsonString(k)}:${canonicalText(object[k], depth + 1)}`);
    return `{${members.join(",")}}`;
  }
  throw new MalformedMessage(
    `expected a JSON string, integer, bool, null, list or object, got ${typeof value}`,
  );
}

/**
 * Canonical JSON (section 2.2): sorted keys, no whitespace, raw UTF-8, integers only,
 * nested at most MAX_JSON_DEPTH levels.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function canonicalJson(value) {
  return encoder.encode(canonicalText(value));
}

/**
 * Parse canonical JSON and refuse any input that is not in canonical form.
 * @param {Uint8Array} data
 * @returns {any}
 */
export function parseCanonicalJson(data) {
  if (!(data instanceof Uint8Array)) throw new MalformedMessage("expected JSON bytes");
  let value;
  try {
    value = JSON.parse(utf8Decode(data));
  } catch {
    throw new MalformedMessage("expected canonical JSON");
  }
  if (!bytesEqual(canonicalJson(value), data)) {
    throw new MalformedMessage("expected canonical JSON (sorted keys, no whitespace, raw UTF-8)");
  }
  return value;
}

/**
 * The reasons of parseJson, in the order they are checked (section 2.2): when a text breaks
 * several rules, the first one in this list is reported, in JS and in Python alike.
 */
export const JSON_REFUSALS = Object.freeze([
  "too_large",
  "not_utf8",
  "too_deep",
  "syntax",
  "not_integer",
  "integer_range",
  "lone_surrogate",
  "duplicate_key",
]);

/** @param {string} text @returns {number} UTF-8 length, a lone surrogate counting 3 bytes */
function utf8Length(text) {
  return encoder.encode(text).length;
}

/**
 * One pass over JSON text, without recursion: the deepest nesting of brackets outside
 * strings (`[` and `{` one level up, `]` and `}` one down), and which of the rules a parse
 * cannot see broke (a number with a fraction or exponent, an integer beyond ±(2^53-1), a key
 * twice in one object). Only meaningful once JSON.parse accepted the text.
 * @param {string} text
 * @param {number} maxDepth
 * @returns {Map<string, string>} reason → message
 */
function scanJson(text, maxDepth) {
  const found = new Map();
  /** @type {{keys: Set<string> | null, expectKey: boolean}[]} */
  const stack = [];
  let depth = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const start = i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      i = Math.min(i + 1, n);
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        top.expectKey = false;
        let key;
        try {
          key = JSON.parse(text.slice(start, i));
        } catch {
          continue; // not JSON: JSON.parse of the whole text says so
        }
        if (top.keys.has(key)) {
          const shown = JSON.stringify(key.slice(0, 40));
          if (!found.has("duplicate_key")) {
            found.set("duplicate_key", `expected unique keys, got ${shown} twice`);
          }
        } else top.keys.add(key);
      }
      continue;
    }
    if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > maxDepth) {
        throw new InvalidJson("too_deep", `expected JSON nested at most ${maxDepth} levels deep`);
      }
      stack.push({ keys: c === 0x7b ? new Set() : null, expectKey: c === 0x7b });
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
      stack.pop();
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && /[0-9+\-.eE]/.test(text[j])) j++;
      const token = text.slice(i, j);
      i = j;
      if (/[.eE]/.test(token)) {
        if (!found.has("not_integer")) {
          found.set("not_integer", `expected integers only, got ${token.slice(0, 24)}`);
        }
      } else if (token.length > 17 || Math.abs(Number(token)) > MAX_SAFE_INTEGER) {
        if (!found.has("integer_range")) {
          const shown = token.slice(0, 24);
          found.set("integer_range", `expected integers within ±(2^53-1), got ${shown}`);
        }
      }
      continue;
    }
    i++;
  }
  return found;
}

/** @param {unknown} value @returns {boolean} whether a string or key holds a lone surrogate */
function hasLoneSurrogate(value) {
  const stack = [value];
  while (stack.length) {
    const item = stack.pop();
    if (typeof item === "string") {
      if (!isWellFormed(item)) return true;
    } else if (Array.isArray(item)) {
      for (const inner of item) stack.push(inner);
    } else if (item !== null && typeof item === "object") {
      for (const [key, inner] of Object.entries(item)) stack.push(key, inner);
    }
  }
  return false;
}

/**
 * The one decoder of JSON that crossed the network (section 2.2): at most `maxBytes` UTF-8
 * bytes, nested at most `maxDepth` levels, integers only and within ±(2^53-1), no NaN or
 * Infinity, no lone surrogates, no duplicate keys (JSON.parse would silently keep the last).
 * Throws InvalidJson naming the first rule broken, in the order of JSON_REFUSALS.
 * @param {string | Uint8Array} data
 * @param {{maxBytes: number, maxDepth?: number}} limits
 * @returns {any}
 */
export function parseJson(data, { maxBytes, maxDepth = MAX_JSON_DEPTH }) {
  let text;
  if (data instanceof Uint8Array) {
    if (data.length > maxBytes) {
      throw new InvalidJson(
        "too_large",
        `expected at most ${maxBytes} bytes of JSON, got ${data.length}`,
      );
    }
    try {
      text = decoder.decode(data);
    } catch {
      throw new InvalidJson("not_utf8", "expected UTF-8 text");
    }
  } else if (typeof data === "string") {
    text = data;
    if (text.length * 3 > maxBytes) {
      const size = text.length > maxBytes ? text.length : utf8Length(text);
      if (size > maxBytes) {
        throw new InvalidJson(
          "too_large",
          `expected at most ${maxBytes} bytes of JSON, got ${size}`,
        );
      }
    }
  } else {
    throw new InvalidJson("syntax", `expected JSON text, got ${typeof data}`);
  }
  const found = scanJson(text, maxDepth);
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidJson("syntax", `expected JSON: ${/** @type {Error} */ (error).message}`);
  }
  if (hasLoneSurrogate(value)) {
    found.set("lone_surrogate", "expected strings without lone surrogates");
  }
  for (const reason of JSON_REFUSALS) {
    const message = found.get(reason);
    if (message !== undefined) throw new InvalidJson(reason, message);
  }
  return value;
}
