// Message wire format (docs/protocol.md section 7).

import { concatBytes, Reader, u8, u32 } from "./encoding.js";
import { MalformedMessage } from "./exceptions.js";
import { isCanonicalX25519 } from "./primitives.js";

export const PROTOCOL_VERSION = 1;
export const TYPE_PREKEY = 1;
export const TYPE_RATCHET = 2;
export const HEADER_BYTES = 40;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const MAX_MESSAGE_BYTES = 300_000;

export class Header {
  /** @param {{dh: Uint8Array, pn: number, n: number}} fields */
  constructor({ dh, pn, n }) {
    this.dh = dh;
    this.pn = pn;
    this.n = n;
  }

  /** @returns {Uint8Array} bytes32 dh ‖ u32 pn ‖ u32 n */
  encode() {
    return concatBytes(this.dh, u32(this.pn), u32(this.n));
  }
}

export class RatchetMessage {
  /** @param {{header: Header, nonce: Uint8Array, ciphertext: Uint8Array}} fields */
  constructor({ header, nonce, ciphertext }) {
    this.header = header;
    this.nonce = nonce;
    this.ciphertext = ciphertext;
  }

  /** @returns {Uint8Array} */
  encodeBody() {
    return concatBytes(this.header.encode(), this.nonce, this.ciphertext);
  }

  /** @returns {Uint8Array} */
  encode() {
    return concatBytes(u8(PROTOCOL_VERSION), u8(TYPE_RATCHET), this.encodeBody());
  }
}

export class PrekeyMessage {
  /**
   * @param {{identityKey: Uint8Array, baseKey: Uint8Array, signedPrekeyId: number,
   *          oneTimePrekeyId: number | null, message: RatchetMessage}} fields
   */
  constructor({ identityKey, baseKey, signedPrekeyId, oneTimePrekeyId, message }) {
    this.identityKey = identityKey;
    this.baseKey = baseKey;
    this.signedPrekeyId = signedPrekeyId;
    this.oneTimePrekeyId = oneTimePrekeyId;
    this.message = message;
  }

  /** @returns {Uint8Array} */
  encode() {
    const hasOpk = this.oneTimePrekeyId !== null;
    return concatBytes(
      u8(PROTOCOL_VERSION),
      u8(TYPE_PREKEY),
      this.identityKey,
      this.baseKey,
      u32(this.signedPrekeyId),
      u8(hasOpk ? 1 : 0),
      u32(this.oneTimePrekeyId ?? 0),
      this.message.encodeBody(),
    );
  }
}

/** @param {Reader} reader @param {string} what @returns {Uint8Array} */
function x25519Key(reader, what) {
  const key = reader.take(32);
  if (!isCanonicalX25519(key)) {
    throw new MalformedMessage(`message ${what}: expected a canonical X25519 key (u < 2^255 - 19)`);
  }
  return key;
}

/** @param {Reader} reader @returns {RatchetMessage} */
function readRatchetBody(reader) {
  const header = new Header({
    dh: x25519Key(reader, "ratchet key"),
    pn: reader.uint(4),
    n: reader.uint(4),
  });
  const nonce = reader.take(NONCE_BYTES);
  const ciphertext = reader.rest();
  if (ciphertext.length < TAG_BYTES) {
    throw new MalformedMessage(
      `message: expected a ciphertext of at least ${TAG_BYTES} bytes, got ${ciphertext.length}`,
    );
  }
  return new RatchetMessage({ header, nonce, ciphertext });
}

/**
 * Parse wire bytes; throws MalformedMessage for anything outside section 7.
 * @param {Uint8Array} data
 * @returns {PrekeyMessage | RatchetMessage}
 */
export function decodeMessage(data) {
  if (!(data instanceof Uint8Array)) throw new MalformedMessage("message: expected bytes");
  if (data.length > MAX_MESSAGE_BYTES) {
    throw new MalformedMessage(
      `message: expected at most ${MAX_MESSAGE_BYTES} bytes, got ${data.length}`,
    );
  }
  // Copy so that a caller reusing its buffer cannot change a parsed message.
  const reader = new Reader(data.slice(), { what: "message" });
  const version = reader.uint(1);
  if (version !== PROTOCOL_VERSION) {
    throw new MalformedMessage(`message: expected version ${PROTOCOL_VERSION}, got ${version}`);
  }
  const kind = reader.uint(1);
  if (kind === TYPE_RATCHET) return readRatchetBody(reader);
  if (kind !== TYPE_PREKEY)
    throw new MalformedMessage(`message: expected type 1 or 2, got ${kind}`);
  const identityKey = reader.take(32);
  const baseKey = x25519Key(reader, "base key");
  const spkId = reader.uint(4);
  const hasOpk = reader.uint(1);
  const opkId = reader.uint(4);
  if (hasOpk !== 0 && hasOpk !== 1) {
    throw new MalformedMessage(`prekey message: expected has_opk 0 or 1, got ${hasOpk}`);
  }
  if (hasOpk === 0 && opkId !== 0) {
    throw new MalformedMessage("prekey message: expected opk_id 0 without a one-time prekey");
  }
  return new PrekeyMessage({
    identityKey,
    baseKey,
    signedPrekeyId: spkId,
    oneTimePrekeyId: hasOpk ? opkId : null,
    message: readRatchetBody(reader),
  });
}
