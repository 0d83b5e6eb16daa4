// Attachments (section 26), mirroring tests/protocol/test_attachments.py: every value of
// attachments.json reproduced by the JS mirror, and the same refusals.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { errorName, hex, p, unhex, vector } from "./support.js";

const V = vector("attachments.json");
const { attachments } = p;

/** @param {any} c the file case, sealed from its seed in the vectors' pieces */
function sealedInPieces(c) {
  const rng = p.TestRng(unhex(c.seed));
  rng(16); // the blob id
  const plaintext = rng(c.size);
  const sealer = new attachments.AttachmentSealer(c.size, rng);
  const parts = [sealer.header, sealer.push(new Uint8Array(0))];
  for (let offset = 0, turn = 0; offset < plaintext.length; turn += 1) {
    const step = V.pieces[turn % V.pieces.length];
    parts.push(sealer.push(plaintext.subarray(offset, offset + step)));
    offset += step;
  }
  return { plaintext, blob: p.encoding.concatBytes(...parts), sealer };
}

const small = () => attachments.AttachmentPointer.fromBody(V.files.find((/** @type {any} */ f) => f.name === "small").pointer);

describe("attachments.json", () => {
  for (const c of V.files) {
    test(`${c.name}: sealed to the same bytes in any pieces, and opened`, () => {
      const { plaintext, blob, sealer } = sealedInPieces(c);
      const sealed = sealer.finish();
      assert.equal(hex(sealed.key), c.key);
      assert.equal(hex(blob.subarray(0, 24)), c.header);
      assert.equal(blob.length, c.blob_size);
      assert.equal(attachments.blobSize(c.size), c.blob_size);
      assert.equal(hex(sealed.digest), c.digest);
      assert.equal(hex(sealed.plaintextHash), c.plaintext_hash);
      if (c.blob) {
        assert.equal(hex(plaintext), c.plaintext);
        assert.equal(hex(blob), c.blob);
      }
      const pointer = attachments.AttachmentPointer.fromBody(c.pointer);
      assert.deepEqual(pointer.toBody(), c.pointer);
      const opener = new attachments.AttachmentOpener(pointer);
      const parts = [];
      for (let i = 0; i < blob.length; i += 4099) parts.push(opener.pull(blob.subarray(i, i + 4099)));
      opener.finish();
      assert.equal(hex(p.encoding.concatBytes(...parts)), hex(plaintext));
    });
  }

  for (const c of V.tampered) {
    test(`a tampered blob is refused: ${c.name}`, () => {
      assert.equal(errorName(() => attachments.openAttachment(unhex(c.blob), small())), c.expected_error);
    });
  }

  test("pointer bodies are accepted or refused as the vectors say", () => {
    for (const c of V.pointers) {
      assert.equal(errorName(() => attachments.validatePointer(c.body)), c.expected_error, c.name);
    }
  });
});

test("a sender's name and type become what a pointer takes", () => {
  for (const c of V.file_names) {
    assert.equal(attachments.fileName(c.name), c.file_name, JSON.stringify(c));
    attachments.validatePointer({ ...V.files[1].pointer, name: c.file_name });
  }
  for (const c of V.media_types) assert.equal(attachments.mediaType(c.type), c.media_type, JSON.stringify(c));
});

test("a blob cut at a chunk boundary is refused though every chunk it has opens", () => {
  const c = V.files.find((/** @type {any} */ f) => f.name === "three");
  const { plaintext, blob } = sealedInPieces(c);
  const opener = new attachments.AttachmentOpener(attachments.AttachmentPointer.fromBody(c.pointer));
  const cut = 24 + 2 * (attachments.ATTACHMENT_CHUNK + 17);
  assert.equal(hex(opener.pull(blob.subarray(0, cut))), hex(plaintext.subarray(0, 2 * attachments.ATTACHMENT_CHUNK)));
  assert.equal(errorName(() => opener.finish()), "AttachmentMismatch");
});

test("a resumed sealer with the first key and header gives the same blob", () => {
  const c = V.files.find((/** @type {any} */ f) => f.name === "two_chunks");
  const { plaintext, blob } = sealedInPieces(c);
  const again = attachments.AttachmentSealer.keyed(c.size, unhex(c.key), blob.subarray(0, 24));
  assert.equal(hex(p.encoding.concatBytes(again.header, again.push(plaintext))), hex(blob));
  assert.equal(hex(again.finish().digest), c.digest);
});

test("the sealer refuses more or fewer bytes than announced", () => {
  const sealer = new attachments.AttachmentSealer(10, p.TestRng(new Uint8Array(32)));
  assert.equal(errorName(() => sealer.push(new Uint8Array(11))), "MalformedMessage");
  sealer.push(new Uint8Array(9));
  assert.equal(errorName(() => sealer.finish()), "MalformedMessage");
});
