// Content codec and canonical encodings (sections 2 and 10), mirroring test_content.py and
// test_encoding.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { errorName, p, rngFor, utf8 } from "./support.js";

const { ContentType, encoding, strictjson } = p;
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

// Retry requests and resends (section 24.1): exact keys, bounded counts and ids.
const PREKEY = { id: 7, public_key: b64(32), signature: b64(64) };
const RETRY = { envelope_id: "e-1", count: 1, signed_prekey: PREKEY };
const INNER = () => encoding.b64uEncode(p.encodeContent(make(ContentType.TEXT, { text: "again" })));

test("a retry request and a resend round-trip", () => {
  for (const [type, body] of [
    [ContentType.RETRY_REQUEST, RETRY],
    [ContentType.RETRY_REQUEST, { ...RETRY, count: 5, envelope_id: "x".repeat(64) }],
    [ContentType.RETRY_REQUEST, { ...RETRY, signed_prekey: { ...PREKEY, id: 2 ** 32 - 1 } }],
    [ContentType.RESEND, { envelope_id: "e-1", content: INNER() }],
    [ContentType.RESEND, { envelope_id: "é".repeat(64), content: null }],
  ]) {
    const content = make(type, body);
    assert.deepEqual(p.decodeContent(p.encodeContent(content)), content);
  }
});
const INVALID = [
  [ContentType.TEXT, { text: 5 }],
  [ContentType.TEXT, { text: "a", extra: 1 }],
  [ContentType.RECEIPT, { kind: "seen", message_ids: [b64(16)] }],
  [ContentType.RECEIPT, { kind: "read", message_ids: [] }],
  [ContentType.RECEIPT, { kind: "read", message_ids: [b64(15)] }],
  [ContentType.RECEIPT, { kind: "read", message_ids: Array(101).fill(b64(16)) }],
  [ContentType.HISTORY_BUNDLE_KEY, { blob_id: "b", key: b64(32), hash: b64(32), length: -1, count: 1 }],
  [ContentType.HISTORY_BUNDLE_KEY, { blob_id: "b", key: b64(32), hash: b64(32), length: 1.5, count: 1 }],
  [ContentType.HISTORY_BUNDLE_KEY, { blob_id: "b", key: b64(32), hash: b64(32), length: 1 }],
  [ContentType.HISTORY_BUNDLE_KEY, { blob_id: "b", key: b64(32), hash: b64(32), length: 1, count: -1 }],
  [ContentType.DEVICE_LIST_NOTICE, { device_list: { version: 1 } }],
  [ContentType.TYPING, { state: true }],
  [ContentType.TEXT, { text: "x".repeat(70000) }],
  [ContentType.TEXT, { text: "\ud800" }],
  [ContentType.TEXT, ["text"]],
  [11, { text: "a" }],
  [ContentType.RETRY_REQUEST, { ...RETRY, count: 0 }],
  [ContentType.RETRY_REQUEST, { ...RETRY, count: 6 }],
  [ContentType.RETRY_REQUEST, { ...RETRY, count: 1.5 }],
  [ContentType.RETRY_REQUEST, { ...RETRY, count: true }],
  [ContentType.RETRY_REQUEST, { ...RETRY, envelope_id: "" }],
  [ContentType.RETRY_REQUEST, { ...RETRY, envelope_id: "x".repeat(65) }],
  [ContentType.RETRY_REQUEST, { ...RETRY, envelope_id: 5 }],
  [ContentType.RETRY_REQUEST, { envelope_id: "e-1", count: 1 }],
  [ContentType.RETRY_REQUEST, { ...RETRY, extra: 1 }],
  [ContentType.RETRY_REQUEST, { ...RETRY, signed_prekey: null }],
  [ContentType.RETRY_REQUEST, { ...RETRY, signed_prekey: { ...PREKEY, id: -1 } }],
  [ContentType.RETRY_REQUEST, { ...RETRY, signed_prekey: { ...PREKEY, id: 2 ** 32 } }],
  [ContentType.RETRY_REQUEST, { ...RETRY, signed_prekey: { ...PREKEY, public_key: b64(31) } }],
  [ContentType.RETRY_REQUEST, { ...RETRY, signed_prekey: { ...PREKEY, signature: b64(32) } }],
  [ContentType.RETRY_REQUEST, { ...RETRY, signed_prekey: { id: 7, public_key: b64(32) } }],
  [ContentType.RESEND, { envelope_id: "e-1" }],
  [ContentType.RESEND, { envelope_id: "e-1", content: "AA==" }],
  [ContentType.RESEND, { envelope_id: "e-1", content: 5 }],
  [ContentType.RESEND, { envelope_id: "", content: null }],
  [ContentType.RESEND, { envelope_id: "x".repeat(65), content: null }],
  [ContentType.RESEND, { envelope_id: "e-1", content: null, count: 1 }],
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
    new TextDecoder().decode(strictjson.canonicalJson({ b: 1, a: ["é", "\n\u0001", null, true] })),
    '{"a":["é","\\n\\u0001",null,true],"b":1}',
  );
  // Keys sort by code point: U+FF5E before U+1F600 although its UTF-16 units sort after.
  assert.equal(
    new TextDecoder().decode(strictjson.canonicalJson({ "\u{1F600}": 1, "\uFF5E": 2 })),
    '{"\uFF5E":2,"\u{1F600}":1}',
  );
  for (const bad of [1.5, -1, 2 ** 53, undefined, new Uint8Array(1), "\ud800", { "\udc00": 1 }]) {
    assert.equal(
      errorName(() => strictjson.canonicalJson(bad)),
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
      errorName(() => strictjson.parseCanonicalJson(bytes)),
      "MalformedMessage",
    );
  });
}

/** A Content built directly (not through newContent), as a careless caller would. */
function raw(type = ContentType.TEXT, body = { text: "a" }, fields = {}) {
  return new p.Content({
    type,
    messageId: new Uint8Array(16),
    timestamp: 1,
    senderListVersion: 2,
    senderListHash: LIST_HASH,
    body,
    ...fields,
  });
}

const BAD_CONTENTS = [
  ["plain int type, bad body", raw(1, { text: 5 })],
  ["type 2 with a text body", raw(2, { text: "a" })],
  ["typing with a bad state", raw(6, { state: "sleeping" })],
  ["unknown type 200", raw(200)],
  ["type 0", raw(0)],
  ["type -1", raw(-1)],
  ["type 256", raw(256)],
  ["type true", raw(true)],
  ["type '1'", raw("1")],
  ["type null", raw(null)],
  ["timestamp -1", raw(undefined, undefined, { timestamp: -1 })],
  ["timestamp 2^53", raw(undefined, undefined, { timestamp: 2 ** 53 })],
  ["timestamp 2^64", raw(undefined, undefined, { timestamp: 2 ** 64 })],
  ["timestamp true", raw(undefined, undefined, { timestamp: true })],
  ["timestamp 1.5", raw(undefined, undefined, { timestamp: 1.5 })],
  ["timestamp '1'", raw(undefined, undefined, { timestamp: "1" })],
  ["list version -1", raw(undefined, undefined, { senderListVersion: -1 })],
  ["list version 2^53", raw(undefined, undefined, { senderListVersion: 2 ** 53 })],
  ["list version null", raw(undefined, undefined, { senderListVersion: null })],
  ["message id as text", raw(undefined, undefined, { messageId: "0".repeat(16) })],
  ["list hash as array", raw(undefined, undefined, { senderListHash: Array(32).fill(0) })],
];

for (const [name, content] of BAD_CONTENTS) {
  test(`encodeContent refuses a bad type, body or field: ${name}`, () => {
    assert.equal(
      errorName(() => p.encodeContent(content)),
      "MalformedMessage",
    );
  });
}

test("the largest u64 values (2^53-1) encode and decode", () => {
  const content = raw(1, { text: "a" }, { timestamp: 2 ** 53 - 1, senderListVersion: 2 ** 53 - 1 });
  const decoded = p.decodeContent(p.encodeContent(content));
  assert.equal(decoded.timestamp, 2 ** 53 - 1);
  assert.equal(decoded.senderListVersion, 2 ** 53 - 1);
});

for (const [offset, high] of [
  [18, 0x00200000], // timestamp 2^53
  [18, 0xffffffff], // timestamp 2^64 - 2^32 + …
  [26, 0x00200000], // list version 2^53
  [26, 0x80000000], // list version 2^63
]) {
  test(`decodeContent refuses a u64 above 2^53-1 at ${offset} (${high.toString(16)})`, () => {
    const data = p.encodeContent(raw()).slice();
    new DataView(data.buffer).setUint32(offset, high);
    assert.equal(
      errorName(() => p.decodeContent(data)),
      "MalformedMessage",
    );
  });
}

/** @param {number} depth */
const nested = (depth) => "[".repeat(depth) + "]".repeat(depth);

for (const depth of [33, 1000, 30000]) {
  test(`a body nested ${depth} deep is malformed, not a stack overflow`, () => {
    const body = utf8(`{"text":${nested(depth)}}`);
    const data = new Uint8Array(Math.ceil((70 + body.length) / 64) * 64);
    data.set([1, 1]);
    new DataView(data.buffer).setUint32(66, body.length);
    data.set(body, 70);
    assert.equal(
      errorName(() => p.decodeContent(data)),
      "MalformedMessage",
    );
  });
}

test("JSON nesting up to MAX_JSON_DEPTH is accepted", () => {
  assert.equal(strictjson.MAX_JSON_DEPTH, 32);
  assert.ok(strictjson.parseCanonicalJson(utf8(nested(32))));
});

for (const depth of [33, 999, 1000, 5000, 60000]) {
  test(`JSON nested ${depth} deep is refused by the parser and the encoder`, () => {
    assert.equal(
      errorName(() => strictjson.parseCanonicalJson(utf8(nested(depth)))),
      "MalformedMessage",
    );
    let value = [];
    for (let i = 1; i < depth; i++) value = [value];
    assert.equal(
      errorName(() => strictjson.canonicalJson(value)),
      "MalformedMessage",
    );
  });
}

for (const [name, fn] of [
  ["u8(-1)", () => encoding.u8(-1)],
  ["u8(256)", () => encoding.u8(256)],
  ["u16(65536)", () => encoding.u16(65536)],
  ["u32(-1)", () => encoding.u32(-1)],
  ["u32(2^32)", () => encoding.u32(2 ** 32)],
  ["u64(-1)", () => encoding.u64(-1)],
  ["u64(2^53)", () => encoding.u64(2 ** 53)],
  ["u64(2^64)", () => encoding.u64(2 ** 64)],
  ["u64(true)", () => encoding.u64(true)],
  ["u32(1.5)", () => encoding.u32(1.5)],
  ['u32("1")', () => encoding.u32("1")],
  ["u8(null)", () => encoding.u8(null)],
  ["encStr(lone surrogate)", () => encoding.encStr("a\udfffb")],
  ["encStr(null)", () => encoding.encStr(null)],
  ["encStr(5)", () => encoding.encStr(5)],
]) {
  test(`integer and string encoders refuse out-of-range values: ${name}`, () => {
    assert.equal(errorName(fn), "MalformedMessage");
  });
}

test("integer encoders write their largest values", () => {
  assert.deepEqual(encoding.u8(255), Uint8Array.of(0xff));
  assert.deepEqual(encoding.u16(65535), Uint8Array.of(0xff, 0xff));
  assert.deepEqual(encoding.u32(2 ** 32 - 1), Uint8Array.of(0xff, 0xff, 0xff, 0xff));
  assert.deepEqual(encoding.u64(2 ** 53 - 1), Uint8Array.of(0, 0x1f, 255, 255, 255, 255, 255, 255));
});
