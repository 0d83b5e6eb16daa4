// Attachments: a file sealed under a key of its own, uploaded once, pointed at from messages
// (docs/protocol.md section 26); mirror of protocol/attachments.py.
//
// The sealer and the opener take the file in pieces of any size and keep at most one 64 KiB
// chunk, so memory stays flat whatever the file's size. The opener's plaintext is only good
// once `finish()` returned: before that a truncated, swapped or altered blob may still be
// found out, and whoever keeps the file must throw away what it was given.

import { b64uDecode, b64uEncode, concatBytes } from "./encoding.js";
import { AttachmentMismatch, DecryptionFailed, MalformedMessage } from "./exceptions.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./rng.js").Rng} Rng */

export const ATTACHMENT_CHUNK = 65536;
export const ATTACHMENT_HASH_LABEL = "Parley v1 attachment";
export const ATTACHMENT_PLAINTEXT_LABEL = "Parley v1 attachment plaintext";
export const MAX_SIZE = Number.MAX_SAFE_INTEGER;
export const MAX_TYPE_LENGTH = 127;
export const MAX_NAME_LENGTH = 255;
export const MAX_THUMBNAIL_BYTES = 16384;
export const MAX_THUMBNAIL_SIDE = 1024;
export const MAX_PICTURE_SIDE = 65535;
export const THUMBNAIL_TYPES = Object.freeze(["image/jpeg", "image/png", "image/webp"]);
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
const NAME_FORBIDDEN = /[\u0000-\u001f\u007f/\\]/;

/**
 * The name a pointer carries for a file the sender calls `name` (26.2): path separators and
 * control characters become "_", cut to 255 code points; "file" when nothing is left.
 * @param {string} name
 */
export function fileName(name) {
  const safe = [...name.replace(new RegExp(NAME_FORBIDDEN.source, "g"), "_")].slice(0, MAX_NAME_LENGTH).join("");
  return safe === "" || safe === "." || safe === ".." ? "file" : safe;
}

/** `kind` in lower case when a pointer takes it (26.2), else application/octet-stream. @param {string} kind */
export function mediaType(kind) {
  const lower = kind.toLowerCase();
  return lower.length <= MAX_TYPE_LENGTH && MIME.test(lower) ? lower : "application/octet-stream";
}

/** The file's 64 KiB chunks: an empty file is one empty chunk. @param {number} size */
export function chunkCount(size) {
  return Math.max(1, Math.ceil(size / ATTACHMENT_CHUNK));
}

/**
 * The ciphertext's length for a file of `size` bytes: the header, then each chunk with its 17
 * bytes of tag and MAC.
 * @param {number} size
 */
export function blobSize(size) {
  return primitives.STREAM_HEADER_BYTES + size + primitives.STREAM_ABYTES * chunkCount(size);
}

/** @param {number} size @param {number} index */
function chunkLength(size, index) {
  const last = chunkCount(size) - 1;
  return index < last ? ATTACHMENT_CHUNK : size - ATTACHMENT_CHUNK * last;
}

/** @param {unknown} value @param {number} [most] @returns {value is number} */
const isUint = (value, most = MAX_SIZE) =>
  Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0 && /** @type {number} */ (value) <= most;

/** @param {unknown} value @param {number} most */
const isSide = (value, most) => isUint(value, most) && /** @type {number} */ (value) >= 1;

/** @param {boolean} condition @param {string} message */
function expect(condition, message) {
  if (!condition) throw new MalformedMessage(`attachment body: ${message}`);
}

const REQUIRED = ["blob_id", "key", "digest", "plaintext_hash", "size", "type", "name"];
const OPTIONAL = ["thumbnail", "width", "height"];

/** @param {unknown} value @returns {value is Record<string, any>} */
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * Exactly the keys and value types of section 26.2; else MalformedMessage.
 * @param {unknown} body
 */
export function validatePointer(body) {
  expect(isObject(body), "expected an object");
  const keys = Object.keys(/** @type {object} */ (body));
  const b = /** @type {Record<string, any>} */ (body);
  expect(
    REQUIRED.every((k) => keys.includes(k)) && keys.every((k) => REQUIRED.includes(k) || OPTIONAL.includes(k)),
    `expected keys ${JSON.stringify(REQUIRED)} and optionally ${JSON.stringify(OPTIONAL)}, got ${JSON.stringify(keys.sort())}`,
  );
  expect(typeof b.blob_id === "string", "expected a string blob_id");
  b64uDecode(b.blob_id, { length: 16, what: "attachment blob id" });
  for (const field of ["key", "digest", "plaintext_hash"]) {
    b64uDecode(b[field], { length: 32, what: `attachment ${field}` });
  }
  expect(isUint(b.size), "expected a size from 0 to 2^53 - 1");
  expect(
    typeof b.type === "string" && b.type.length <= MAX_TYPE_LENGTH && MIME.test(b.type),
    `expected a lowercase media type such as image/jpeg of at most ${MAX_TYPE_LENGTH} characters`,
  );
  const name = b.name;
  expect(
    typeof name === "string" &&
      [...name].length >= 1 &&
      [...name].length <= MAX_NAME_LENGTH &&
      !NAME_FORBIDDEN.test(name) &&
      name !== "." &&
      name !== "..",
    `expected a file name of 1 to ${MAX_NAME_LENGTH} characters without / \\ or control characters`,
  );
  if (keys.includes("thumbnail")) {
    const thumb = b.thumbnail;
    const thumbKeys = isObject(thumb) ? Object.keys(thumb).sort() : [];
    expect(
      isObject(thumb) && thumbKeys.join(",") === "data,height,type,width",
      "expected a thumbnail {type, data, width, height}",
    );
    expect(THUMBNAIL_TYPES.includes(thumb.type), `expected a thumbnail type of ${THUMBNAIL_TYPES.join(", ")}`);
    expect(typeof thumb.data === "string", "expected thumbnail data in base64url");
    const data = b64uDecode(thumb.data, { what: "thumbnail" });
    expect(data.length >= 1 && data.length <= MAX_THUMBNAIL_BYTES, `expected a thumbnail of 1 to ${MAX_THUMBNAIL_BYTES} bytes`);
    expect(
      isSide(thumb.width, MAX_THUMBNAIL_SIDE) && isSide(thumb.height, MAX_THUMBNAIL_SIDE),
      `expected thumbnail sides from 1 to ${MAX_THUMBNAIL_SIDE}`,
    );
  }
  expect(keys.includes("width") === keys.includes("height"), "expected both width and height, or neither");
  if (keys.includes("width")) {
    expect(
      isSide(b.width, MAX_PICTURE_SIDE) && isSide(b.height, MAX_PICTURE_SIDE),
      `expected width and height from 1 to ${MAX_PICTURE_SIDE}`,
    );
  }
}

/** A small picture of an image, made by the sender, inside the message itself. */
export class Thumbnail {
  /** @param {{type: string, data: Uint8Array, width: number, height: number}} fields */
  constructor({ type, data, width, height }) {
    this.type = type;
    this.data = data;
    this.width = width;
    this.height = height;
  }
}

/** What a message says about a file (the body of content type 12, section 26.2). */
export class AttachmentPointer {
  /**
   * @param {{blobId: string, key: Uint8Array, digest: Uint8Array, plaintextHash: Uint8Array,
   *   size: number, type: string, name: string, thumbnail?: Thumbnail | null,
   *   width?: number | null, height?: number | null}} fields
   */
  constructor({ blobId, key, digest, plaintextHash, size, type, name, thumbnail = null, width = null, height = null }) {
    this.blobId = blobId;
    this.key = key;
    this.digest = digest;
    this.plaintextHash = plaintextHash;
    this.size = size;
    this.type = type;
    this.name = name;
    this.thumbnail = thumbnail;
    this.width = width;
    this.height = height;
  }

  get blobSize() {
    return blobSize(this.size);
  }

  /** @returns {Record<string, any>} */
  toBody() {
    /** @type {Record<string, any>} */
    const body = {
      blob_id: this.blobId,
      key: b64uEncode(this.key),
      digest: b64uEncode(this.digest),
      plaintext_hash: b64uEncode(this.plaintextHash),
      size: this.size,
      type: this.type,
      name: this.name,
    };
    if (this.thumbnail) {
      const { type, data, width, height } = this.thumbnail;
      body.thumbnail = { type, data: b64uEncode(data), width, height };
    }
    if (this.width !== null) {
      body.width = this.width;
      body.height = this.height;
    }
    validatePointer(body);
    return body;
  }

  /** @param {unknown} body @returns {AttachmentPointer} */
  static fromBody(body) {
    validatePointer(body);
    const b = /** @type {Record<string, any>} */ (body);
    const thumb = b.thumbnail;
    return new AttachmentPointer({
      blobId: b.blob_id,
      key: b64uDecode(b.key, { length: 32, what: "attachment key" }),
      digest: b64uDecode(b.digest, { length: 32, what: "attachment digest" }),
      plaintextHash: b64uDecode(b.plaintext_hash, { length: 32, what: "plaintext hash" }),
      size: b.size,
      type: b.type,
      name: b.name,
      thumbnail: thumb
        ? new Thumbnail({ type: thumb.type, data: b64uDecode(thumb.data, { what: "thumbnail" }), width: thumb.width, height: thumb.height })
        : null,
      width: b.width ?? null,
      height: b.height ?? null,
    });
  }
}

/** What the sealer found once the whole file went through it. */
export class SealedFile {
  /** @param {{key: Uint8Array, digest: Uint8Array, plaintextHash: Uint8Array, size: number}} fields */
  constructor({ key, digest, plaintextHash, size }) {
    this.key = key;
    this.digest = digest;
    this.plaintextHash = plaintextHash;
    this.size = size;
  }
}

/** Bytes waiting to make a whole chunk, kept in one buffer of at most a chunk and a piece. */
class Buffer {
  constructor() {
    /** @type {Uint8Array} */
    this.bytes = new Uint8Array(0);
  }

  /** @param {Uint8Array} piece */
  add(piece) {
    this.bytes = this.bytes.length ? concatBytes(this.bytes, piece) : piece.slice();
  }

  /** @param {number} length @returns {Uint8Array} */
  take(length) {
    const taken = this.bytes.slice(0, length);
    this.bytes = this.bytes.subarray(length);
    return taken;
  }
}

/**
 * Seals a file of `size` bytes given in pieces of any size (section 26.1). Draws rng(32) for
 * the key, then rng(24) for the stream header; the header is the first output.
 */
export class AttachmentSealer {
  /** @param {number} size @param {Rng} rng */
  constructor(size, rng) {
    if (!isUint(size)) throw new MalformedMessage(`attachment: expected a size from 0 to 2^53 - 1, got ${size}`);
    this.size = size;
    this.key = rng(32);
    this.header = rng(primitives.STREAM_HEADER_BYTES);
    this.state = primitives.streamState(this.key, this.header);
    this.digestHash = new primitives.Hash32(ATTACHMENT_HASH_LABEL);
    this.digestHash.update(this.header);
    this.plainHash = new primitives.Hash32(ATTACHMENT_PLAINTEXT_LABEL);
    this.buffer = new Buffer();
    this.taken = 0;
    this.chunks = 0;
    this.count = chunkCount(size);
  }

  /**
   * The sealer of an upload resumed: with the key and header drawn the first time, the same
   * file gives the same blob again, so the pieces the server holds can be skipped.
   * @param {number} size @param {Uint8Array} key @param {Uint8Array} header
   */
  static keyed(size, key, header) {
    const draws = [key, header];
    return new AttachmentSealer(size, () => /** @type {Uint8Array} */ (draws.shift()));
  }

  /**
   * The ciphertext of every chunk that `piece` completes (maybe none; an empty file's one
   * chunk comes from its first push, of an empty array).
   * @param {Uint8Array} piece @returns {Uint8Array}
   */
  push(piece) {
    if (this.taken + piece.length > this.size) {
      throw new MalformedMessage(`attachment: more than the ${this.size} bytes announced`);
    }
    this.taken += piece.length;
    this.plainHash.update(piece);
    this.buffer.add(piece);
    const out = [];
    while (this.chunks < this.count) {
      const length = chunkLength(this.size, this.chunks);
      if (this.buffer.bytes.length < length) break;
      const chunk = this.buffer.take(length);
      this.chunks += 1;
      const tag = this.chunks === this.count ? primitives.TAG_FINAL : primitives.TAG_MESSAGE;
      const sealed = primitives.streamPush(this.state, chunk, tag);
      this.digestHash.update(sealed);
      out.push(sealed);
    }
    return concatBytes(...out);
  }

  /** @returns {SealedFile} */
  finish() {
    if (this.chunks !== this.count) {
      throw new MalformedMessage(`attachment: ${this.taken} of the ${this.size} bytes announced were sealed`);
    }
    return new SealedFile({
      key: this.key,
      digest: this.digestHash.digest(),
      plaintextHash: this.plainHash.digest(),
      size: this.size,
    });
  }
}

/** Opens the blob a pointer names, given in pieces of any size (section 26.3). */
export class AttachmentOpener {
  /** @param {AttachmentPointer} pointer */
  constructor(pointer) {
    this.pointer = pointer;
    /** @type {any} */
    this.state = null;
    this.digestHash = new primitives.Hash32(ATTACHMENT_HASH_LABEL);
    this.plainHash = new primitives.Hash32(ATTACHMENT_PLAINTEXT_LABEL);
    this.buffer = new Buffer();
    this.received = 0;
    this.chunks = 0;
    this.count = chunkCount(pointer.size);
  }

  /**
   * The plaintext of every chunk that `piece` completes (good only after finish()).
   * @param {Uint8Array} piece @returns {Uint8Array}
   */
  pull(piece) {
    this.received += piece.length;
    if (this.received > this.pointer.blobSize) {
      throw new AttachmentMismatch(`attachment: more than the ${this.pointer.blobSize} bytes of the file`);
    }
    this.digestHash.update(piece);
    this.buffer.add(piece);
    if (this.state === null) {
      if (this.buffer.bytes.length < primitives.STREAM_HEADER_BYTES) return new Uint8Array(0);
      this.state = primitives.streamState(this.pointer.key, this.buffer.take(primitives.STREAM_HEADER_BYTES));
    }
    const out = [];
    while (this.chunks < this.count) {
      const length = chunkLength(this.pointer.size, this.chunks) + primitives.STREAM_ABYTES;
      if (this.buffer.bytes.length < length) break;
      const [plaintext, tag] = primitives.streamPull(this.state, this.buffer.take(length));
      this.chunks += 1;
      const expected = this.chunks === this.count ? primitives.TAG_FINAL : primitives.TAG_MESSAGE;
      if (tag !== expected) {
        throw new DecryptionFailed(`attachment chunk ${this.chunks - 1}: expected tag ${expected}, got ${tag}`);
      }
      this.plainHash.update(plaintext);
      out.push(plaintext);
    }
    return concatBytes(...out);
  }

  /** Refuses a blob cut short, or one whose digest or plaintext differs from the pointer's. */
  finish() {
    if (this.received !== this.pointer.blobSize || this.chunks !== this.count) {
      throw new AttachmentMismatch(`attachment: expected ${this.pointer.blobSize} bytes, got ${this.received}`);
    }
    if (!primitives.macEqual(this.digestHash.digest(), this.pointer.digest)) {
      throw new AttachmentMismatch("attachment: the blob differs from the one the sender sealed");
    }
    if (!primitives.macEqual(this.plainHash.digest(), this.pointer.plaintextHash)) {
      throw new AttachmentMismatch("attachment: the file differs from the one the sender sealed");
    }
  }
}

/**
 * The whole file at once: the blob to upload and the pointer (with the server's blob id).
 * @param {Uint8Array} plaintext @param {Rng} rng
 * @param {{blobId: string, type: string, name: string, thumbnail?: Thumbnail | null, width?: number | null, height?: number | null}} fields
 * @returns {[Uint8Array, AttachmentPointer]}
 */
export function sealAttachment(plaintext, rng, { blobId, type, name, ...extra }) {
  const sealer = new AttachmentSealer(plaintext.length, rng);
  const blob = concatBytes(sealer.header, sealer.push(plaintext)); // an empty file's push gives its one chunk
  const sealed = sealer.finish();
  const pointer = new AttachmentPointer({
    blobId,
    key: sealed.key,
    digest: sealed.digest,
    plaintextHash: sealed.plaintextHash,
    size: sealed.size,
    type,
    name,
    ...extra,
  });
  pointer.toBody(); // validates
  return [blob, pointer];
}

/** @param {Uint8Array} blob @param {AttachmentPointer} pointer @returns {Uint8Array} */
export function openAttachment(blob, pointer) {
  const opener = new AttachmentOpener(pointer);
  const plaintext = opener.pull(blob);
  opener.finish();
  return plaintext;
}
