// Plaintext content inside a message (docs/protocol.md section 10).

import { validatePointer } from "./attachments.js";
import { DeviceList } from "./devicelist.js";
import { b64uDecode, concatBytes, Reader, u8, u32, u64 } from "./encoding.js";
import { MalformedDeviceList, MalformedMessage } from "./exceptions.js";
import { PublicKemPrekey } from "./keys.js";
import { canonicalJson, isPlainObject, parseCanonicalJson } from "./strictjson.js";

/** @typedef {import("./rng.js").Rng} Rng */

export const CONTENT_VERSION = 1;
export const MAX_BODY_BYTES = 65536;
export const CONTENT_PADDING = 64;
export const MAX_RECEIPT_IDS = 100;
const MAX_RETRY_COUNT = 5; // the engine's MAX_RETRIES (docs/protocol.md 24.6)
const MAX_ENVELOPE_ID = 64; // the server's limit on a client envelope id (section 20)

/** @enum {number} */
export const ContentType = Object.freeze({
  TEXT: 1,
  RECEIPT: 2,
  SENT_TRANSCRIPT: 3,
  DEVICE_LIST_NOTICE: 4,
  HISTORY_BUNDLE_KEY: 5,
  TYPING: 6,
  ACCOUNT_SYNC_KEY: 7,
  ACCOUNT_SYNC_CHECKPOINT: 8,
  RETRY_REQUEST: 9,
  RESEND: 10,
  GROUP_SENDER_KEY: 11,
  ATTACHMENT: 12,
});

/** What a sent transcript may carry: a text, a receipt, a file. @type {readonly number[]} */
const TRANSCRIBED = Object.freeze([ContentType.TEXT, ContentType.RECEIPT, ContentType.ATTACHMENT]);

/** @type {ReadonlySet<number>} */
export const KNOWN_TYPES = Object.freeze(new Set(Object.values(ContentType)));

export class Content {
  /**
   * @param {{type: number, messageId: Uint8Array, timestamp: number,
   *          senderListVersion: number, senderListHash: Uint8Array,
   *          body: Record<string, any>}} fields
   */
  constructor({ type, messageId, timestamp, senderListVersion, senderListHash, body }) {
    this.type = type;
    this.messageId = messageId;
    this.timestamp = timestamp;
    this.senderListVersion = senderListVersion;
    this.senderListHash = senderListHash;
    this.body = body;
  }
}

/**
 * A content with a fresh random message id (rng(16)); validates the body.
 * @param {number} contentType
 * @param {Record<string, any>} body
 * @param {{timestamp: number, senderListVersion: number, senderListHash: Uint8Array,
 *          rng: Rng}} options
 * @returns {Content}
 */
export function newContent(
  contentType,
  body,
  { timestamp, senderListVersion, senderListHash, rng },
) {
  const content = new Content({
    type: contentType,
    messageId: rng(16),
    timestamp,
    senderListVersion,
    senderListHash,
    body,
  });
  encodeContent(content);
  return content;
}

/** @param {unknown} body @param {string[]} keys @param {string} what */
function expectKeys(body, keys, what) {
  const expected = [...keys].sort();
  if (!isPlainObject(body)) {
    throw new MalformedMessage(
      `${what} body: expected keys ${JSON.stringify(expected)}, got ${Array.isArray(body) ? "list" : typeof body}`,
    );
  }
  const got = Object.keys(/** @type {object} */ (body)).sort();
  if (got.length !== expected.length || got.some((k, i) => k !== expected[i])) {
    throw new MalformedMessage(
      `${what} body: expected keys ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`,
    );
  }
}

/** @param {boolean} condition @param {string} message */
function expect(condition, message) {
  if (!condition) throw new MalformedMessage(message);
}

/** @param {unknown} value @returns {boolean} */
function isInt(value) {
  return Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;
}

/**
 * Check the body has exactly the keys and value types of its type (section 10 table).
 * @param {number} contentType
 * @param {any} body
 */
export function validateBody(contentType, body) {
  switch (contentType) {
    case ContentType.TEXT:
      expectKeys(body, ["text"], "text");
      expect(typeof body.text === "string", "text body: expected a string text");
      break;
    case ContentType.RECEIPT: {
      // a receipt for group messages names its group (docs/protocol.md 25.10)
      const grouped = body !== null && typeof body === "object" && "group_id" in body;
      expectKeys(body, grouped ? ["kind", "message_ids", "group_id"] : ["kind", "message_ids"], "receipt");
      if (grouped) b64uDecode(body.group_id, { length: 16, what: "receipt group id" });
      expect(
        body.kind === "delivered" || body.kind === "read",
        "receipt body: expected kind delivered or read",
      );
      const ids = body.message_ids;
      expect(
        Array.isArray(ids) && ids.length >= 1 && ids.length <= MAX_RECEIPT_IDS,
        `receipt body: expected 1 to ${MAX_RECEIPT_IDS} message ids`,
      );
      for (const item of ids) b64uDecode(item, { length: 16, what: "receipt message id" });
      break;
    }
    case ContentType.SENT_TRANSCRIPT: {
      expectKeys(body, ["recipient", "content"], "sent transcript");
      expect(
        typeof body.recipient === "string",
        "sent transcript body: expected a string recipient",
      );
      const inner = decodeContent(b64uDecode(body.content, { what: "sent transcript content" }));
      expect(
        TRANSCRIBED.includes(inner.type),
        `sent transcript body: expected inner content of type 1, 2 or 12, got ${inner.type}`,
      );
      break;
    }
    case ContentType.DEVICE_LIST_NOTICE:
      expectKeys(body, ["device_list"], "device-list notice");
      try {
        DeviceList.fromJSON(body.device_list);
      } catch (error) {
        if (error instanceof MalformedDeviceList) {
          throw new MalformedMessage(`device-list notice body: ${error.message}`);
        }
        throw error;
      }
      break;
    case ContentType.HISTORY_BUNDLE_KEY:
      expectKeys(body, ["blob_id", "key", "hash", "length", "count"], "history bundle key");
      expect(
        typeof body.blob_id === "string",
        "history bundle key body: expected a string blob_id",
      );
      b64uDecode(body.key, { length: 32, what: "history key" });
      b64uDecode(body.hash, { length: 32, what: "history hash" });
      expect(isInt(body.length), "history bundle key body: expected an integer length");
      expect(isInt(body.count), "history bundle key body: expected an integer count");
      break;
    case ContentType.TYPING:
      expectKeys(body, ["state"], "typing");
      expect(
        body.state === "started" || body.state === "stopped",
        "typing body: expected started or stopped",
      );
      break;
    case ContentType.ACCOUNT_SYNC_KEY:
      expectKeys(body, ["key_id", "key", "since_version", "version", "chain"], "sync key");
      b64uDecode(body.key_id, { length: 16, what: "sync key id" });
      b64uDecode(body.key, { length: 32, what: "sync key" });
      expect(
        isInt(body.since_version) && body.since_version >= 1,
        "sync key body: expected an integer since_version of at least 1",
      );
      checkpointFields(body, "sync key");
      break;
    case ContentType.ACCOUNT_SYNC_CHECKPOINT:
      expectKeys(body, ["version", "chain"], "sync checkpoint");
      checkpointFields(body, "sync checkpoint");
      break;
    case ContentType.RETRY_REQUEST: {
      const keys = ["envelope_id", "count", "signed_prekey"];
      if (isPlainObject(body) && "kem_prekey" in body) {
        keys.push("kem_prekey"); // version 2 (27.5)
        PublicKemPrekey.fromJSON(body.kem_prekey);
      }
      expectKeys(body, keys, "retry request");
      envelopeId(body, "retry request");
      expect(
        isInt(body.count) && body.count >= 1 && body.count <= MAX_RETRY_COUNT,
        `retry request body: expected a count from 1 to ${MAX_RETRY_COUNT}`,
      );
      const prekey = body.signed_prekey;
      expectKeys(prekey, ["id", "public_key", "signature"], "retry request signed_prekey");
      expect(
        isInt(prekey.id) && prekey.id <= 0xffffffff,
        "retry request body: expected a signed prekey id from 0 to 2^32 - 1",
      );
      b64uDecode(prekey.public_key, { length: 32, what: "retry request signed prekey" });
      b64uDecode(prekey.signature, { length: 64, what: "retry request signed prekey signature" });
      break;
    }
    case ContentType.RESEND:
      expectKeys(body, ["envelope_id", "content"], "resend");
      envelopeId(body, "resend");
      if (body.content !== null) b64uDecode(body.content, { what: "resend content" });
      break;
    case ContentType.GROUP_SENDER_KEY:
      groupSenderKey(body);
      break;
    case ContentType.ATTACHMENT:
      validatePointer(body); // docs/protocol.md 26.2
      break;
    default:
      throw new MalformedMessage(`content: expected type 1 to 12, got ${contentType}`);
  }
}

/** @param {any} body @param {string} what */
function envelopeId(body, what) {
  const value = body.envelope_id;
  expect(
    typeof value === "string" && value.length >= 1 && [...value].length <= MAX_ENVELOPE_ID,
    `${what} body: expected an envelope_id of 1 to ${MAX_ENVELOPE_ID} characters`,
  );
}

const GROUP_SENDER_KEY_FIELDS = Object.freeze({
  group_id: 16,
  key_id: 16,
  chain_key: 32,
  signing_key: 32,
  head_hash: 32,
});

/** @param {any} body */
function groupSenderKey(body) {
  expectKeys(body, [...Object.keys(GROUP_SENDER_KEY_FIELDS), "iteration", "head_seq"], "group sender key");
  for (const [name, size] of Object.entries(GROUP_SENDER_KEY_FIELDS)) {
    b64uDecode(body[name], { length: size, what: `group sender key ${name}` });
  }
  expect(
    isInt(body.iteration) && body.iteration <= 0xffffffff,
    "group sender key body: expected an iteration from 0 to 2^32 - 1",
  );
  expect(isInt(body.head_seq), "group sender key body: expected an integer head_seq");
}

/** @param {any} body @param {string} what */
function checkpointFields(body, what) {
  expect(isInt(body.version), `${what} body: expected an integer version`);
  b64uDecode(body.chain, { length: 32, what: `${what} chain` });
}

/** @param {unknown} value @param {number} length @returns {boolean} */
function isBytes(value, length) {
  return value instanceof Uint8Array && value.length === length;
}

/**
 * Section 10 layout; refuses (MalformedMessage) an unknown type, a body that does not match
 * its type, wrong sizes, and a timestamp or list version outside 0..2^53-1.
 * @param {Content} content
 * @returns {Uint8Array} padded to a multiple of 64 bytes
 */
export function encodeContent(content) {
  validateBody(content.type, content.body);
  expect(isBytes(content.messageId, 16), "content: expected a 16-byte message id");
  expect(isBytes(content.senderListHash, 32), "content: expected a 32-byte list hash");
  const body = canonicalJson(content.body);
  expect(body.length <= MAX_BODY_BYTES, `content body: expected at most ${MAX_BODY_BYTES} bytes`);
  const out = concatBytes(
    u8(CONTENT_VERSION),
    u8(content.type),
    content.messageId,
    u64(content.timestamp),
    u64(content.senderListVersion),
    content.senderListHash,
    u32(body.length),
    body,
  );
  const padded = new Uint8Array(
    out.length + ((CONTENT_PADDING - (out.length % CONTENT_PADDING)) % CONTENT_PADDING),
  );
  padded.set(out);
  return padded;
}

/**
 * Parse and validate; throws MalformedMessage for anything outside section 10. A type this
 * version does not know decodes with its body unchecked (any canonical JSON object), so the
 * device can keep it as an unsupported message.
 * @param {Uint8Array} data
 * @returns {Content}
 */
export function decodeContent(data) {
  expect(
    data.length % CONTENT_PADDING === 0,
    `content: expected a length multiple of ${CONTENT_PADDING}, got ${data.length}`,
  );
  const reader = new Reader(data.slice(), { what: "content" });
  const version = reader.uint(1);
  expect(version === CONTENT_VERSION, `content: expected version 1, got ${version}`);
  const type = reader.uint(1);
  expect(type >= 1, "content: expected a type from 1 to 255, got 0");
  const messageId = reader.take(16);
  const timestamp = reader.uint(8);
  const listVersion = reader.uint(8);
  const listHash = reader.take(32);
  const length = reader.uint(4);
  expect(length <= MAX_BODY_BYTES, `content body: expected at most ${MAX_BODY_BYTES} bytes`);
  const body = parseCanonicalJson(reader.take(length));
  const padding = reader.rest();
  expect(
    padding.length < CONTENT_PADDING && padding.every((byte) => byte === 0),
    "content: expected minimal zero padding",
  );
  if (KNOWN_TYPES.has(type)) validateBody(type, body);
  // a newer version's type: kept as "unsupported", never dropped (section 10)
  else expect(isPlainObject(body), "content body: expected a JSON object");
  return new Content({
    type,
    messageId,
    timestamp,
    senderListVersion: listVersion,
    senderListHash: listHash,
    body,
  });
}
