// History bundles (section 12), mirroring test_history.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { errorName, p, rngFor } from "./support.js";

const { HISTORY_CHUNK } = p;
const STEP = HISTORY_CHUNK + 17;
const concat = p.encoding.concatBytes;

function openBlob(blob, sealed) {
  return p.openHistory(blob, {
    key: sealed.key,
    expectedHash: p.historyHash(blob),
    expectedLength: blob.length,
  });
}

for (const size of [0, 1, HISTORY_CHUNK, HISTORY_CHUNK + 1, 3 * HISTORY_CHUNK - 5]) {
  test(`history of ${size} bytes round-trips`, () => {
    const rng = rngFor(`history ${size}`);
    const plaintext = rng(size);
    const sealed = p.sealHistory(plaintext, rng);
    assert.equal(sealed.length, 24 + size + 17 * Math.max(1, Math.ceil(size / HISTORY_CHUNK)));
    const opened = p.openHistory(sealed.blob, {
      key: sealed.key,
      expectedHash: sealed.hash,
      expectedLength: sealed.length,
    });
    assert.deepEqual(opened, plaintext);
  });
}

test("a wrong length or hash is refused before decrypting", () => {
  const rng = rngFor("history mismatch");
  const sealed = p.sealHistory(rng(1000), rng);
  const open = (options) =>
    errorName(() =>
      p.openHistory(sealed.blob, {
        key: sealed.key,
        expectedHash: sealed.hash,
        expectedLength: sealed.length,
        ...options,
      }),
    );
  assert.equal(open({ expectedLength: sealed.length + 1 }), "HistoryBundleMismatch");
  assert.equal(open({ expectedHash: new Uint8Array(32) }), "HistoryBundleMismatch");
});

test("a truncated stream without the final tag is refused even with a matching hash", () => {
  const rng = rngFor("history truncation");
  const sealed = p.sealHistory(rng(2 * HISTORY_CHUNK + 10), rng);
  assert.equal(
    errorName(() => openBlob(sealed.blob.subarray(0, 24 + 2 * STEP), sealed)),
    "DecryptionFailed",
  );
  assert.equal(
    errorName(() => openBlob(sealed.blob.subarray(0, 24 + 10), sealed)),
    "DecryptionFailed",
  );
  assert.equal(
    errorName(() => openBlob(sealed.blob.subarray(0, sealed.length - 5), sealed)),
    "DecryptionFailed",
  );
});

test("reordered or tampered chunks are refused", () => {
  const rng = rngFor("history reorder");
  const sealed = p.sealHistory(rng(3 * HISTORY_CHUNK), rng);
  const header = sealed.blob.subarray(0, 24);
  const chunks = [0, 1, 2].map((i) => sealed.blob.subarray(24 + i * STEP, 24 + (i + 1) * STEP));
  assert.equal(
    errorName(() => openBlob(concat(header, chunks[1], chunks[0], chunks[2]), sealed)),
    "DecryptionFailed",
  );
  const flipped = sealed.blob.slice();
  flipped[100] ^= 1;
  assert.equal(
    errorName(() => openBlob(flipped, sealed)),
    "DecryptionFailed",
  );
  assert.equal(
    errorName(() =>
      p.openHistory(sealed.blob, {
        key: new Uint8Array(32),
        expectedHash: sealed.hash,
        expectedLength: sealed.length,
      }),
    ),
    "DecryptionFailed",
  );
});
