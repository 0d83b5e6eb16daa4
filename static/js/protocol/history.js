// History bundle: one secretstream over the whole history (docs/protocol.md section 12).

import { bytesEqual, concatBytes } from "./encoding.js";
import { DecryptionFailed, HistoryBundleMismatch } from "./exceptions.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./rng.js").Rng} Rng */

export const HISTORY_CHUNK = 65536;
export const HISTORY_HASH_LABEL = "Parley v1 history";

/** `blob` goes to the server; key, hash and length go through the pairwise session. */
export class SealedHistory {
  /** @param {{blob: Uint8Array, key: Uint8Array, hash: Uint8Array, length: number}} fields */
  constructor({ blob, key, hash, length }) {
    this.blob = blob;
    this.key = key;
    this.hash = hash;
    this.length = length;
  }
}

/** @param {Uint8Array} blob @returns {Uint8Array} */
export function historyHash(blob) {
  return primitives.hash32(HISTORY_HASH_LABEL, blob);
}

/**
 * Draws rng(32) for the key, then rng(24) for the stream header.
 * @param {Uint8Array} plaintext
 * @param {Rng} rng
 * @returns {SealedHistory}
 */
export function sealHistory(plaintext, rng) {
  const key = rng(32);
  const header = rng(primitives.STREAM_HEADER_BYTES);
  const state = primitives.streamState(key, header);
  const chunks = [];
  for (let i = 0; i < plaintext.length; i += HISTORY_CHUNK) {
    chunks.push(plaintext.subarray(i, i + HISTORY_CHUNK));
  }
  if (chunks.length === 0) chunks.push(new Uint8Array(0));
  const parts = [header];
  chunks.forEach((chunk, index) => {
    const last = index === chunks.length - 1;
    parts.push(
      primitives.streamPush(state, chunk, last ? primitives.TAG_FINAL : primitives.TAG_MESSAGE),
    );
  });
  const blob = concatBytes(...parts);
  return new SealedHistory({ blob, key, hash: historyHash(blob), length: blob.length });
}

/**
 * Check length and hash, then decrypt every chunk; refuses truncation and reordering.
 * @param {Uint8Array} blob
 * @param {{key: Uint8Array, expectedHash: Uint8Array, expectedLength: number}} options
 * @returns {Uint8Array}
 */
export function openHistory(blob, { key, expectedHash, expectedLength }) {
  if (blob.length !== expectedLength) {
    throw new HistoryBundleMismatch(
      `history bundle: expected ${expectedLength} bytes, got ${blob.length}`,
    );
  }
  if (!bytesEqual(historyHash(blob), expectedHash)) {
    throw new HistoryBundleMismatch("history bundle: hash differs from the announced hash");
  }
  const headerSize = primitives.STREAM_HEADER_BYTES;
  if (blob.length < headerSize + primitives.STREAM_ABYTES) {
    throw new DecryptionFailed("history bundle: expected a header and at least one chunk");
  }
  const state = primitives.streamState(key, blob.subarray(0, headerSize));
  const step = HISTORY_CHUNK + primitives.STREAM_ABYTES;
  const out = [];
  for (let offset = headerSize, index = 0; offset < blob.length; offset += step, index++) {
    const [plaintext, tag] = primitives.streamPull(state, blob.subarray(offset, offset + step));
    const last = offset + step >= blob.length;
    const expected = last ? primitives.TAG_FINAL : primitives.TAG_MESSAGE;
    if (tag !== expected) {
      throw new DecryptionFailed(
        `history bundle chunk ${index}: expected tag ${expected}, got ${tag}`,
      );
    }
    out.push(plaintext);
  }
  return concatBytes(...out);
}
