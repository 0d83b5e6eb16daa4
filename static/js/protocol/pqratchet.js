// The KEM steps of a version-2 session (docs/protocol.md section 27.4): one side offers a
// fresh ML-KEM key every so often, the other answers with an encapsulation, and each secret is
// mixed into the root key at a DH ratchet step. ratchet.js calls these at its steps.

import { b64uDecode, b64uEncode } from "./encoding.js";
import { DecryptionFailed, MalformedMessage } from "./exceptions.js";
import { KemAnswer, KemOffer } from "./message.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./message.js").Header} Header */
/** @typedef {import("./rng.js").Rng} Rng */

export const KEM_INTERVAL = 32;
const EMPTY = new Uint8Array(0);

export class OwnOffer {
  /** @param {number} id @param {Uint8Array} seed @param {Uint8Array} publicKey */
  constructor(id, seed, publicKey) {
    this.id = id;
    this.seed = seed;
    this.publicKey = publicKey;
  }

  /** @param {number} id @param {Uint8Array} seed @returns {OwnOffer} */
  static fromSeed(id, seed) {
    return new OwnOffer(id, seed, primitives.mlkem768Public(seed));
  }
}

/** Section 27.4's fields of a version-2 session; replaced, never changed in place. */
export class KemState {
  /**
   * @param {{offer?: OwnOffer | null, answer?: KemAnswer | null, nextId?: number,
   *          answered?: number, count?: number}} [fields]
   */
  constructor({ offer = null, answer = null, nextId = 1, answered = 0, count = 0 } = {}) {
    this.offer = offer;
    this.answer = answer;
    this.nextId = nextId;
    this.answered = answered;
    this.count = count;
    Object.freeze(this);
  }

  /** @param {Partial<KemState>} changes @returns {KemState} */
  with(changes) {
    return new KemState({ ...this, ...changes });
  }

  /** @returns {{version: number, kemOffer: KemOffer | null, kemAnswer: KemAnswer | null}} */
  headerFields() {
    const offer = this.offer === null ? null : new KemOffer(this.offer.id, this.offer.publicKey);
    return { version: 2, kemOffer: offer, kemAnswer: this.answer };
  }

  /** @returns {KemState} */
  counted() {
    return this.with({ count: this.count + 1 });
  }

  /**
   * At a step into the other side's new chain: the secret of its answer (empty if none).
   * @param {Header} header @returns {[KemState, Uint8Array]}
   */
  takeAnswer(header) {
    const answer = header.kemAnswer;
    if (answer === null) return [this, EMPTY];
    if (this.offer === null || answer.id !== this.offer.id) {
      throw new DecryptionFailed(
        `ratchet message: an answer to KEM offer ${answer.id}, which this side did not make`,
      );
    }
    const shared = primitives.mlkem768Decapsulate(this.offer.seed, answer.ciphertext);
    return [this.with({ offer: null, count: 0 }), shared];
  }

  /**
   * At the same step, for this side's new sending chain: the answer to the other side's
   * offer, if it made one not answered yet (empty if none). Draws rng(32) for it.
   * @param {Header} header @param {Rng} rng @returns {[KemState, Uint8Array]}
   */
  answerOffer(header, rng) {
    const state = this.with({ answer: null });
    const offer = header.kemOffer;
    if (offer === null || offer.id <= this.answered) return [state, EMPTY];
    const [ciphertext, shared] = primitives.mlkem768Encapsulate(offer.publicKey, rng);
    const answer = new KemAnswer(offer.id, ciphertext);
    return [state.with({ answer, answered: offer.id, count: 0 }), shared];
  }

  /**
   * At the start of a sending chain: offer a fresh key when it is time (draws rng(64)).
   * @param {Rng} rng @returns {KemState}
   */
  maybeOffer(rng) {
    if (this.offer !== null || this.answer !== null || this.count < KEM_INTERVAL) return this;
    return this.with({ offer: OwnOffer.fromSeed(this.nextId, rng(64)), nextId: this.nextId + 1 });
  }

  toJSON() {
    return {
      offer: this.offer === null ? null : { id: this.offer.id, seed: b64uEncode(this.offer.seed) },
      answer:
        this.answer === null
          ? null
          : { id: this.answer.id, ciphertext: b64uEncode(this.answer.ciphertext) },
      next_id: this.nextId,
      answered: this.answered,
      count: this.count,
    };
  }

  /** @param {any} data @returns {KemState} */
  static fromJSON(data) {
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw new MalformedMessage("session kem: expected an object");
    }
    const { offer, answer } = data;
    const isObject = (/** @type {unknown} */ v) =>
      v === null || (typeof v === "object" && !Array.isArray(v));
    if (offer === undefined || answer === undefined || !isObject(offer) || !isObject(answer)) {
      throw new MalformedMessage("session kem: expected offer and answer objects or null");
    }
    return new KemState({
      offer:
        offer === null
          ? null
          : OwnOffer.fromSeed(
              uint(offer.id, "offer id", U32_MAX),
              b64uDecode(offer.seed, {
                length: primitives.MLKEM768_SEED_BYTES,
                what: "kem offer seed",
              }),
            ),
      answer:
        answer === null
          ? null
          : new KemAnswer(
              uint(answer.id, "answer id", U32_MAX),
              b64uDecode(answer.ciphertext, {
                length: primitives.MLKEM768_CIPHERTEXT_BYTES,
                what: "kem answer",
              }),
            ),
      nextId: uint(data.next_id, "next_id", U32_MAX),
      answered: uint(data.answered, "answered", U32_MAX),
      count: uint(data.count, "count", Number.MAX_SAFE_INTEGER),
    });
  }
}

const U32_MAX = 0xffffffff;

/** @param {unknown} value @param {string} what @param {number} max @returns {number} */
function uint(value, what, max) {
  const n = /** @type {number} */ (value);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new MalformedMessage(`session kem ${what}: expected an integer in 0..${max}`);
  }
  return n;
}
