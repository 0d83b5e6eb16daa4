// Content codec and canonical encodings (sections 2 and 10), mirroring test_content.py and
// test_encoding.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { errorName, p, rngFor, utf8 } from "./support.js";

const { ContentType, encoding } = p;
const LIST_HASH = Uint8Array.from({ length: 32 }, (_, i) => i);

function make(type, body) {
  return p.newContent(type, body, {
    timestamp: 1,
    senderListVersion: 2,
    senderListHash: LIST_HASH,
    rng: rngFor("content"),
  });
}

test("texts round-trip and are padded to 64 bytes", () => {
  const samples = ["", "a", "é漢😀", '"\\\n\t\u0001\u007f\u2028', "x".repeat(300)];
  const rng = rngFor("content texts");
  for (let i = 0; i < 40; i++) {
    const codes = Array.from(rng(1 + (i % 7)), (b) => (b * 911) % 0xd7ff);
    samples.push(String.fromCodePoint(...codes));
  }
  for (const sample of samples) {
    const content = make(ContentType.TEXT, { text: sample });
    const encoded = p.encodeContent(content);
    assert.equal(encoded.length % 64, 0);
    assert.deepEqual(p.decodeContent(encoded), content);
  }
});

test("a sent transcript accepts only text or receipt inside", () => {
  const inner = make(ContentType.TEXT, { text: "hi" });
  make(ContentType.SENT_TRANSCRIPT, {
    recipient: "acct-bob",
    content: encoding.b64uEncode(p.encodeContent(inner)),
  });
  const typing = make(ContentType.TYPING, { state: "started" });
  assert.equal(
    errorName(() =>
      make(ContentType.SENT_TRANSCRIPT, {
        recipient: "acct-bob",
        content: encoding.b64uEncode(p.encodeContent(typing)),
      }),
    ),
    "MalformedMessage",
  );
});

const b64 = (n) => encoding.b64uEncode(new Uint8Array(n));
const INVALID = [
  [ContentType.TEXT, { text: 5 }],
  [ContentType.TEXT, { text: "a", extra: 1 }],
  [ContentType.RECEIPT, { kind: "seen", message_ids: [b64(16)] }],
  [ContentType.RECEIPT, { kind: "read", message_ids: [] }],
  [ContentType.RECEIPT, { kind: "read", message_ids: [b64(15)] }],
  [ContentType.RECEIPT, { kind: "read", message_ids: Array(101).fill(b64(16)) }],
  [ContentType.HISTORY_BUNDLE_KEY, { blob_id: "b", key: b64(32), hash: b64(32), length: -1 }],
  [ContentType.HISTORY_BUNDLE_KEY, { blob_id: "b", key: b64(32), hash: b64(32), length: 1.5 }],
  [ContentType.DEVICE_LIST_NOTICE, { device_list: { version: 1 } }],
  [ContentType.TYPING, { state: true }],
  [ContentType.TEXT, { text: "x".repeat(70000) }],
  [ContentType.TEXT, { text: "\ud800" }],
  [ContentType.TEXT, ["text"]],
  [9, { text: "a" }],
];

for (const [type, body] of INVALID) {
  test(`an invalid body is refused: type ${type} ${JSON.stringify(body).slice(0, 60)}`, () => {
    assert.equal(
      errorName(() => make(type, body)),
      "MalformedMessage",
    );
  });
}

test("content with wrong sizes is refused", () => {
  const content = new p.Content({
    type: ContentType.TYPING,
    messageId: new Uint8Array(15),
    timestamp: 0,
    senderListVersion: 0,
    senderListHash: LIST_HASH,
    body: { state: "started" },
  });
  assert.equal(
    errorName(() => p.encodeContent(content)),
    "MalformedMessage",
  );
});

test("a device-list notice carries a parsable list", () => {
  const rng = rngFor("notice");
  const primary = p.generateDeviceKeys(rng).identity;
  const list = p.signDeviceList(primary, {
    accountId: "acct",
    version: 1,
    timestamp: 5,
    devices: [new p.DeviceEntry({ deviceId: "d", identityKey: primary.public, addedAt: 5 })],
  });
  const content = make(ContentType.DEVICE_LIST_NOTICE, { device_list: list.toJSON() });
  assert.deepEqual(p.decodeContent(p.encodeContent(content)).body.device_list, list.toJSON());
});

test("enc_str is a u16 length-prefixed UTF-8 string", () => {
  assert.deepEqual(encoding.encStr("é"), Uint8Array.of(0, 2, 0xc3, 0xa9));
  assert.equal(
    errorName(() => encoding.encStr("x".repeat(65536))),
    "MalformedMessage",
  );
  assert.equal(
    errorName(() => encoding.encStr("\udc00")),
    "MalformedMessage",
  );
});

for (const bad of ["AA==", "AA=", "A", "AB", "A+8", "A/8", "AA AA", 5, "é"]) {
  test(`non-canonical base64url is refused: ${JSON.stringify(bad)}`, () => {
    assert.equal(
      errorName(() => encoding.b64uDecode(bad)),
      "MalformedMessage",
    );
  });
}

test("base64url round trip and fixed length", () => {
  assert.deepEqual(
    encoding.b64uDecode(encoding.b64uEncode(Uint8Array.of(0xfb, 0xff))),
    Uint8Array.of(0xfb, 0xff),
  );
  assert.equal(encoding.b64uEncode(Uint8Array.of(0xfb, 0xff)), "-_8");
  assert.equal(
    errorName(() => encoding.b64uDecode("AAAA", { length: 2 })),
    "MalformedMessage",
  );
  const rng = rngFor("b64");
  for (let n = 0; n < 70; n++) {
    const data = rng(n);
    const encoded = encoding.b64uEncode(data);
    assert.equal(encoded, Buffer.from(data).toString("base64url"));
    assert.deepEqual(encoding.b64uDecode(encoded, { length: n }), data);
  }
});

test("canonical JSON matches JSON.stringify conventions with sorted keys", () => {
  assert.equal(
    new TextDecoder().decode(encoding.canonicalJson({ b: 1, a: ["é", "\n\u0001", null, true] })),
    '{"a":["é","\\n\\u0001",null,true],"b":1}',
  );
  // Keys sort by code point: U+FF5E before U+1F600 although its UTF-16 units sort after.
  assert.equal(
    new TextDecoder().decode(encoding.canonicalJson({ "\u{1F600}": 1, "\uFF5E": 2 })),
    '{"\uFF5E":2,"\u{1F600}":1}',
  );
  for (const bad of [1.5, -1, 2 ** 53, undefined, new Uint8Array(1), "\ud800", { "\udc00": 1 }]) {
    assert.equal(
      errorName(() => encoding.canonicalJson(bad)),
      "MalformedMessage",
    );
  }
});

for (const raw of [
  '{"a": 1}',
  '{"b":1,"a":2}',
  '{"a":1,"a":1}',
  '{"a":1.0}',
  '{"a":"\\u00e9"}',
  "\xff",
  "\ufeff{}",
  '{"a":-0}',
  '{"a":1e2}',
]) {
  test(`non-canonical JSON is refused: ${JSON.stringify(raw)}`, () => {
    const bytes = raw === "\xff" ? Uint8Array.of(0xff) : utf8(raw);
    assert.equal(
      errorName(() => encoding.parseCanonicalJson(bytes)),
      "MalformedMessage",
    );
  });
}
