// Sender keys: one signed symmetric chain per (group, sending device), its distribution over
// the pairwise sessions, group messages and rotation (docs/protocol.md sections 25.4, 25.5).

import { ContentType, validateBody } from "./content.js";
import {
  b64uDecode,
  b64uEncode,
  bytesEqual,
  compareBytes,
  concatBytes,
  encStr,
  fromHex,
  label,
  Reader,
  toHex,
  u8,
  u32,
  u64,
} from "./encoding.js";
import { MalformedMessage, ReplayDetected, SenderKeyUnknown, TooManySkippedMessages } from "./exceptions.js";
import { MAX_MESSAGE_BYTES, PROTOCOL_VERSION } from "./message.js";
import * as primitives from "./primitives.js";
import { MAX_SKIP, MAX_SKIPPED_TOTAL } from "./ratchetkeys.js";

/** @typedef {import("./rng.js").Rng} Rng */

export const GROUP_MESSAGE_TYPE = 3;
export const CHAIN_LABEL = "Parley v1 sender chain";
export const MESSAGE_LABEL = "Parley v1 group message";
export const MAX_ITERATION = 0xffffffff;
const MESSAGE_PREFIX = label(MESSAGE_LABEL);
const CHAIN_MESSAGE = Uint8Array.of(0x01);
const CHAIN_NEXT = Uint8Array.of(0x02);
const SIGNATURE_BYTES = 64;
const NONCE_BYTES = primitives.AEAD_NONCE_BYTES;

/**
 * [message key, next chain key] of a sender-key chain (section 25.4).
 * @param {Uint8Array} chainKey
 * @returns {[Uint8Array, Uint8Array]}
 */
export function kdfSk(chainKey) {
  return [primitives.kdf(chainKey, CHAIN_LABEL, CHAIN_MESSAGE, 32), primitives.kdf(chainKey, CHAIN_LABEL, CHAIN_NEXT, 32)];
}

/** @param {boolean} condition @param {string} message */
function expect(condition, message) {
  if (!condition) throw new MalformedMessage(message);
}

/** @param {unknown} value @returns {boolean} */
function isUint(value) {
  return Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;
}

/**
 * @typedef {{groupId: Uint8Array, sender: string, device: string, keyId: Uint8Array,
 *            chainKey: Uint8Array, iteration: number, signingKey: Uint8Array}} ChainFields
 */

/** @param {any} data @returns {ChainFields} */
function chainFields(data) {
  expect(data !== null && typeof data === "object", "sender key: expected an object");
  expect(typeof data.sender === "string" && typeof data.device === "string", "sender key: expected string sender and device");
  expect(isUint(data.iteration), "sender key: expected an integer iteration");
  return {
    groupId: b64uDecode(data.group_id, { length: 16, what: "group id" }),
    sender: data.sender,
    device: data.device,
    keyId: b64uDecode(data.key_id, { length: 16, what: "key id" }),
    chainKey: b64uDecode(data.chain_key, { length: 32, what: "chain key" }),
    iteration: data.iteration,
    signingKey: b64uDecode(data.signing_key, { length: 32, what: "signing key" }),
  };
}

/** @param {ChainFields} c */
function chainJSON(c) {
  return {
    group_id: b64uEncode(c.groupId),
    sender: c.sender,
    device: c.device,
    key_id: b64uEncode(c.keyId),
    chain_key: b64uEncode(c.chainKey),
    iteration: c.iteration,
    signing_key: b64uEncode(c.signingKey),
  };
}

/**
 * The sending half: the chain at `iteration` (the next message's), the signing pair and the
 * devices (identity keys, as hex) this key has been distributed to.
 */
export class SenderKey {
  /** @param {ChainFields & {signingSecret: Uint8Array, distributed?: Set<string>}} fields */
  constructor({ groupId, sender, device, keyId, chainKey, iteration, signingKey, signingSecret, distributed = new Set() }) {
    this.groupId = groupId;
    this.sender = sender;
    this.device = device;
    this.keyId = keyId;
    this.chainKey = chainKey;
    this.iteration = iteration;
    this.signingKey = signingKey;
    this.signingSecret = signingSecret;
    this.distributed = distributed;
  }

  toJSON() {
    return {
      ...chainJSON(this),
      signing_secret: b64uEncode(this.signingSecret),
      distributed: [...this.distributed].map(fromHex).sort(compareBytes).map((k) => b64uEncode(k)),
    };
  }

  /** @param {any} data @returns {SenderKey} */
  static fromJSON(data) {
    const fields = chainFields(data);
    expect(Array.isArray(data.distributed), "sender key: expected a distributed array");
    return new SenderKey({
      ...fields,
      signingSecret: b64uDecode(data.signing_secret, { length: 64, what: "signing key" }),
      distributed: new Set(
        data.distributed.map((/** @type {unknown} */ k) => toHex(b64uDecode(k, { length: 32, what: "distributed to" }))),
      ),
    });
  }
}

/**
 * The receiving half, from a distribution: the chain at the next iteration expected, the
 * sender's public signing key and the keys of skipped iterations (oldest first).
 */
export class ReceivingKey {
  /** @param {ChainFields & {skipped?: Map<number, Uint8Array>}} fields */
  constructor({ groupId, sender, device, keyId, chainKey, iteration, signingKey, skipped = new Map() }) {
    this.groupId = groupId;
    this.sender = sender;
    this.device = device;
    this.keyId = keyId;
    this.chainKey = chainKey;
    this.iteration = iteration;
    this.signingKey = signingKey;
    this.skipped = skipped;
  }

  toJSON() {
    return { ...chainJSON(this), skipped: [...this.skipped].map(([n, k]) => ({ n, key: b64uEncode(k) })) };
  }

  /** @param {any} data @returns {ReceivingKey} */
  static fromJSON(data) {
    const fields = chainFields(data);
    expect(Array.isArray(data.skipped), "receiving key: expected a skipped array");
    /** @type {Map<number, Uint8Array>} */
    const skipped = new Map();
    for (const item of data.skipped) {
      expect(item !== null && typeof item === "object" && isUint(item.n), "receiving key: expected integer skipped iterations");
      skipped.set(item.n, b64uDecode(item.key, { length: 32, what: "skipped key" }));
    }
    return new ReceivingKey({ ...fields, skipped });
  }
}

/**
 * Draws the key id rng(16), the chain key rng(32), then the signing seed rng(32).
 * @param {Rng} rng
 * @param {{groupId: Uint8Array, sender: string, device: string}} owner
 * @returns {SenderKey}
 */
export function newSenderKey(rng, { groupId, sender, device }) {
  expect(groupId instanceof Uint8Array && groupId.length === 16, "sender key: expected a group id");
  const keyId = rng(16);
  const chainKey = rng(32);
  const [signingKey, signingSecret] = primitives.ed25519Keypair(rng(32));
  return new SenderKey({ groupId, sender, device, keyId, chainKey, iteration: 0, signingKey, signingSecret });
}

/**
 * The body of a GROUP_SENDER_KEY content (type 11): the chain from its current iteration.
 * @param {SenderKey} key
 * @param {{headSeq: number, headHash: Uint8Array}} head
 * @returns {Record<string, any>}
 */
export function distributionBody(key, { headSeq, headHash }) {
  const body = {
    group_id: b64uEncode(key.groupId),
    key_id: b64uEncode(key.keyId),
    chain_key: b64uEncode(key.chainKey),
    iteration: key.iteration,
    signing_key: b64uEncode(key.signingKey),
    head_seq: headSeq,
    head_hash: b64uEncode(headHash),
  };
  validateBody(ContentType.GROUP_SENDER_KEY, body);
  return body;
}

/**
 * A receiving chain from a distribution that came over the pairwise session with `sender`'s
 * `device`: the body names no sender, so it cannot name another.
 * @param {any} body
 * @param {{sender: string, device: string}} from
 * @returns {ReceivingKey}
 */
export function receivingKey(body, { sender, device }) {
  validateBody(ContentType.GROUP_SENDER_KEY, body);
  return new ReceivingKey({
    groupId: b64uDecode(body.group_id, { length: 16 }),
    sender,
    device,
    keyId: b64uDecode(body.key_id, { length: 16 }),
    chainKey: b64uDecode(body.chain_key, { length: 32 }),
    iteration: body.iteration,
    signingKey: b64uDecode(body.signing_key, { length: 32 }),
  });
}

/**
 * What to do before the next group message: `key` to send with (new when `rotated`) and the
 * devices (identity keys, ascending) that need its distribution first.
 */
export class SendPlan {
  /** @param {SenderKey} key @param {boolean} rotated @param {Uint8Array[]} distributeTo */
  constructor(key, rotated, distributeTo) {
    this.key = key;
    this.rotated = rotated;
    this.distributeTo = distributeTo;
  }
}

/**
 * Rotate if a device the key went to is no longer a target (a removal, section 25.4); else
 * distribute the current key to the targets that lack it. The returned key already counts
 * them as distributed: the engine stores it with those sends.
 * @param {SenderKey} key
 * @param {Iterable<Uint8Array>} targets
 * @param {Rng} rng
 * @returns {SendPlan}
 */
export function prepareSend(key, targets, rng) {
  const wanted = new Set([...targets].map((k) => toHex(k)));
  const ascending = (/** @type {Iterable<string>} */ keys) => [...keys].map(fromHex).sort(compareBytes);
  if ([...key.distributed].some((k) => !wanted.has(k))) {
    const fresh = newSenderKey(rng, { groupId: key.groupId, sender: key.sender, device: key.device });
    fresh.distributed = wanted;
    return new SendPlan(fresh, true, ascending(wanted));
  }
  const missing = [...wanted].filter((k) => !key.distributed.has(k));
  return new SendPlan(new SenderKey({ ...key, distributed: wanted }), false, ascending(missing));
}

/** A decoded group message (section 25.5); `header` is its encoded header. */
export class GroupMessage {
  /**
   * @param {{groupId: Uint8Array, sender: string, device: string, keyId: Uint8Array, iteration: number,
   *          headSeq: number, headHash: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array,
   *          signature: Uint8Array, header: Uint8Array}} fields
   */
  constructor({ groupId, sender, device, keyId, iteration, headSeq, headHash, nonce, ciphertext, signature, header }) {
    this.groupId = groupId;
    this.sender = sender;
    this.device = device;
    this.keyId = keyId;
    this.iteration = iteration;
    this.headSeq = headSeq;
    this.headHash = headHash;
    this.nonce = nonce;
    this.ciphertext = ciphertext;
    this.signature = signature;
    this.header = header;
  }
}

/**
 * @param {ChainFields} key
 * @param {number} iteration
 * @param {number} headSeq
 * @param {Uint8Array} headHash
 * @returns {Uint8Array}
 */
function header(key, iteration, headSeq, headHash) {
  expect(headHash instanceof Uint8Array && headHash.length === 32, "group head: expected 32 bytes");
  return concatBytes(
    u8(PROTOCOL_VERSION),
    u8(GROUP_MESSAGE_TYPE),
    key.groupId,
    encStr(key.sender),
    encStr(key.device),
    key.keyId,
    u32(iteration),
    u64(headSeq),
    headHash,
  );
}

/** @param {Uint8Array} data @returns {GroupMessage} */
export function decodeGroupMessage(data) {
  expect(
    data instanceof Uint8Array && data.length <= MAX_MESSAGE_BYTES,
    `group message: expected at most ${MAX_MESSAGE_BYTES} bytes`,
  );
  const reader = new Reader(data, { what: "group message" });
  const version = reader.uint(1);
  const kind = reader.uint(1);
  expect(version === PROTOCOL_VERSION, `group message: expected version 1, got ${version}`);
  expect(kind === GROUP_MESSAGE_TYPE, `group message: expected type 3, got ${kind}`);
  const groupId = reader.take(16).slice();
  const sender = reader.string();
  const device = reader.string();
  const keyId = reader.take(16).slice();
  const iteration = reader.uint(4);
  const headSeq = reader.uint(8);
  const headHash = reader.take(32).slice();
  const headerBytes = data.slice(0, data.length - reader.remaining());
  const nonce = reader.take(NONCE_BYTES).slice();
  const rest = reader.rest();
  expect(
    rest.length >= primitives.AEAD_TAG_BYTES + SIGNATURE_BYTES,
    "group message: expected a ciphertext of at least 16 bytes and a signature",
  );
  return new GroupMessage({
    groupId,
    sender,
    device,
    keyId,
    iteration,
    headSeq,
    headHash,
    nonce,
    ciphertext: rest.slice(0, rest.length - SIGNATURE_BYTES),
    signature: rest.slice(rest.length - SIGNATURE_BYTES),
    header: headerBytes,
  });
}

/**
 * [the key one step on, the group message] for an encoded content.
 * @param {SenderKey} key
 * @param {Uint8Array} plaintext
 * @param {{headSeq: number, headHash: Uint8Array, rng: Rng}} options
 * @returns {[SenderKey, Uint8Array]}
 */
export function encryptGroup(key, plaintext, { headSeq, headHash, rng }) {
  expect(key.iteration <= MAX_ITERATION, "sender key: chain exhausted, rotate first");
  const head = header(key, key.iteration, headSeq, headHash);
  const [messageKey, nextChain] = kdfSk(key.chainKey);
  const nonce = rng(NONCE_BYTES);
  const ciphertext = primitives.aeadEncrypt(messageKey, nonce, plaintext, concatBytes(MESSAGE_PREFIX, head));
  const signed = concatBytes(head, nonce, ciphertext);
  const signature = primitives.ed25519Sign(key.signingSecret, concatBytes(MESSAGE_PREFIX, signed));
  const data = concatBytes(signed, signature);
  expect(data.length <= MAX_MESSAGE_BYTES, `group message: over ${MAX_MESSAGE_BYTES} bytes`);
  return [new SenderKey({ ...key, chainKey: nextChain, iteration: key.iteration + 1 }), data];
}

/**
 * [the chain after, the plaintext]; every refusal leaves `chain` as it was (25.5).
 * @param {ReceivingKey} chain
 * @param {Uint8Array} data
 * @returns {[ReceivingKey, Uint8Array]}
 */
export function decryptGroup(chain, data) {
  const message = decodeGroupMessage(data);
  if (
    !bytesEqual(message.groupId, chain.groupId) ||
    message.sender !== chain.sender ||
    message.device !== chain.device ||
    !bytesEqual(message.keyId, chain.keyId)
  ) {
    throw new SenderKeyUnknown("group message: expected this chain's group, sender and key id");
  }
  primitives.ed25519Verify(
    chain.signingKey,
    concatBytes(MESSAGE_PREFIX, data.subarray(0, data.length - SIGNATURE_BYTES)),
    message.signature,
    { what: "group message" },
  );
  const skipped = new Map(chain.skipped);
  let chainKey = chain.chainKey;
  let n = chain.iteration;
  const wanted = message.iteration;
  /** @type {Uint8Array} */
  let messageKey;
  const stored = skipped.get(wanted);
  if (stored !== undefined) {
    messageKey = stored;
    skipped.delete(wanted);
  } else if (wanted < n) {
    throw new ReplayDetected(`group message: iteration ${wanted} already decrypted`);
  } else if (wanted - n > MAX_SKIP) {
    throw new TooManySkippedMessages(`group message: expected at most ${MAX_SKIP} skipped keys, got ${wanted - n}`);
  } else {
    while (n < wanted) {
      const [skippedKey, next] = kdfSk(chainKey);
      skipped.set(n, skippedKey);
      chainKey = next;
      n += 1;
    }
    [messageKey, chainKey] = kdfSk(chainKey);
    n += 1;
    while (skipped.size > MAX_SKIPPED_TOTAL) skipped.delete(/** @type {number} */ (skipped.keys().next().value));
  }
  const plaintext = primitives.aeadDecrypt(messageKey, message.nonce, message.ciphertext, concatBytes(MESSAGE_PREFIX, message.header));
  return [new ReceivingKey({ ...chain, chainKey, iteration: n, skipped }), plaintext];
}
