// Message wire format (docs/protocol.md section 7; version 2 in section 27.3).

import { concatBytes, Reader, u8, u32 } from "./encoding.js";
import { MalformedMessage } from "./exceptions.js";
import {
  isCanonicalX25519,
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
} from "./primitives.js";

export const PROTOCOL_VERSION = 1;
export const PROTOCOL_VERSIONS = [1, 2];
export const TYPE_PREKEY = 1;
export const TYPE_RATCHET = 2;
export const HEADER_BYTES = 40;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const MAX_MESSAGE_BYTES = 300_000;
export const KEM_FLAG_OFFER = 1;
export const KEM_FLAG_ANSWER = 2;

/** A fresh ML-KEM key one side offers in its messages (section 27.4). */
export class KemOffer {
  /** @param {number} id @param {Uint8Array} publicKey */
  constructor(id, publicKey) {
    this.id = id;
    this.publicKey = publicKey;
  }
}

/** The encapsulation to the other side's offer `id` (section 27.4). */
export class KemAnswer {
  /** @param {number} id @param {Uint8Array} ciphertext */
  constructor(id, ciphertext) {
    this.id = id;
    this.ciphertext = ciphertext;
  }
}

export class Header {
  /**
   * @param {{dh: Uint8Array, pn: number, n: number, version?: number,
   *          kemOffer?: KemOffer | null, kemAnswer?: KemAnswer | null}} fields
   */
  constructor({ dh, pn, n, version = 1, kemOffer = null, kemAnswer = null }) {
    this.dh = dh;
    this.pn = pn;
    this.n = n;
    this.version = version;
    this.kemOffer = kemOffer;
    this.kemAnswer = kemAnswer;
  }

  /** @returns {Uint8Array} bytes32 dh ‖ u32 pn ‖ u32 n (‖ the KEM fields, version 2) */
  encode() {
    const head = concatBytes(this.dh, u32(this.pn), u32(this.n));
    if (this.version === 1) return head;
    const flags = (this.kemOffer ? KEM_FLAG_OFFER : 0) | (this.kemAnswer ? KEM_FLAG_ANSWER : 0);
    /** @type {Uint8Array[]} */
    const parts = [head, u8(flags)];
    if (this.kemOffer) parts.push(u32(this.kemOffer.id), this.kemOffer.publicKey);
    if (this.kemAnswer) parts.push(u32(this.kemAnswer.id), this.kemAnswer.ciphertext);
    return concatBytes(...parts);
  }
}

export class RatchetMessage {
  /** @param {{header: Header, nonce: Uint8Array, ciphertext: Uint8Array}} fields */
  constructor({ header, nonce, ciphertext }) {
    this.header = header;
    this.nonce = nonce;
    this.ciphertext = ciphertext;
  }

  /** @returns {number} */
  get version() {
    return this.header.version;
  }

  /** @returns {Uint8Array} */
  encodeBody() {
    return concatBytes(this.header.encode(), this.nonce, this.ciphertext);
  }

  /** @returns {Uint8Array} */
  encode() {
    return concatBytes(u8(this.version), u8(TYPE_RATCHET), this.encodeBody());
  }
}

export class PrekeyMessage {
  /**
   * @param {{identityKey: Uint8Array, baseKey: Uint8Array, signedPrekeyId: number,
   *          oneTimePrekeyId: number | null, message: RatchetMessage,
   *          kemPrekeyId?: number | null, kemCiphertext?: Uint8Array | null}} fields
   */
  constructor({
    identityKey,
    baseKey,
    signedPrekeyId,
    oneTimePrekeyId,
    message,
    kemPrekeyId = null,
    kemCiphertext = null,
  }) {
    this.identityKey = identityKey;
    this.baseKey = baseKey;
    this.signedPrekeyId = signedPrekeyId;
    this.oneTimePrekeyId = oneTimePrekeyId;
    this.message = message;
    /** version 2 (section 27.3) */
    this.kemPrekeyId = kemPrekeyId;
    this.kemCiphertext = kemCiphertext;
  }

  /** @returns {number} */
  get version() {
    return this.message.version;
  }

  /** @returns {Uint8Array} */
  encode() {
    const hasOpk = this.oneTimePrekeyId !== null;
    /** @type {Uint8Array[]} */
    const kem = [];
    if (this.version === 2) {
      kem.push(u32(/** @type {number} */ (this.kemPrekeyId)), /** @type {Uint8Array} */ (this.kemCiphertext));
    }
    return concatBytes(
      u8(this.version),
      u8(TYPE_PREKEY),
      this.identityKey,
      this.baseKey,
      u32(this.signedPrekeyId),
      u8(hasOpk ? 1 : 0),
      u32(this.oneTimePrekeyId ?? 0),
      ...kem,
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

/** @param {Reader} reader @param {number} version @returns {Header} */
function readHeader(reader, version) {
  const dh = x25519Key(reader, "ratchet key");
  const pn = reader.uint(4);
  const n = reader.uint(4);
  if (version === 1) return new Header({ dh, pn, n });
  const flags = reader.uint(1);
  if (flags > (KEM_FLAG_OFFER | KEM_FLAG_ANSWER)) {
    throw new MalformedMessage(`message: expected kem_flags 0 to 3, got ${flags}`);
  }
  let kemOffer = null;
  let kemAnswer = null;
  if (flags & KEM_FLAG_OFFER) {
    kemOffer = new KemOffer(reader.uint(4), reader.take(MLKEM768_PUBLIC_KEY_BYTES));
  }
  if (flags & KEM_FLAG_ANSWER) {
    kemAnswer = new KemAnswer(reader.uint(4), reader.take(MLKEM768_CIPHERTEXT_BYTES));
  }
  return new Header({ dh, pn, n, version: 2, kemOffer, kemAnswer });
}

/** @param {Reader} reader @param {number} version @returns {RatchetMessage} */
function readRatchetBody(reader, version) {
  const header = readHeader(reader, version);
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
 * Parse wire bytes; throws MalformedMessage for anything outside sections 7 and 27.3.
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
  if (!PROTOCOL_VERSIONS.includes(version)) {
    throw new MalformedMessage(`message: expected version 1 or 2, got ${version}`);
  }
  const kind = reader.uint(1);
  if (kind === TYPE_RATCHET) return readRatchetBody(reader, version);
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
  let kemPrekeyId = null;
  let kemCiphertext = null;
  if (version === 2) {
    kemPrekeyId = reader.uint(4);
    kemCiphertext = reader.take(MLKEM768_CIPHERTEXT_BYTES);
  }
  return new PrekeyMessage({
    identityKey,
    baseKey,
    signedPrekeyId: spkId,
    oneTimePrekeyId: hasOpk ? opkId : null,
    message: readRatchetBody(reader, version),
    kemPrekeyId,
    kemCiphertext,
  });
}
