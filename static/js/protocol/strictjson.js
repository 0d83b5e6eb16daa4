// JSON as the protocol writes and reads it (docs/protocol.md section 2.2): canonical JSON for
// signed and hashed bodies, and the one bounded decoder of JSON that crossed the network.

import { bytesEqual, isWellFormed, MAX_SAFE_INTEGER, utf8Decode } from "./encoding.js";
import { InvalidJson, MalformedMessage } from "./exceptions.js";

/** Arrays and objects nest at most this deep in canonical JSON (section 2.2). */
export const MAX_JSON_DEPTH = 32;

const encoder = new TextEncoder();

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
      text = utf8Decode(data);
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
