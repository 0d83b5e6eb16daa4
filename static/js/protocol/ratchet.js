// Double Ratchet sessions (docs/protocol.md sections 6 and 8): the state machine of one
// pairwise session and its serialized form. The KDFs and skipped keys are in ratchetkeys.js;
// a responder's session starts in inbound.js.

import { b64uDecode, b64uEncode, bytesEqual, concatBytes } from "./encoding.js";
import {
  DecryptionFailed,
  DowngradeRefused,
  MalformedMessage,
  ReplayDetected,
  TooManySkippedMessages,
  UnknownSession,
} from "./exceptions.js";
import { verifyPrekeyBundle, X25519KeyPair } from "./keys.js";
import { decodeMessage, Header, PrekeyMessage, RatchetMessage } from "./message.js";
import { KemState } from "./pqratchet.js";
import * as primitives from "./primitives.js";
import { kdfCk, kdfRk, MAX_SKIP, SkippedKeys } from "./ratchetkeys.js";
import * as x3dh from "./x3dh.js";

/** @typedef {import("./keys.js").IdentityKeyPair} IdentityKeyPair */
/** @typedef {import("./keys.js").PrekeyBundle} PrekeyBundle */
/** @typedef {import("./rng.js").Rng} Rng */

export const MAX_PREVIOUS_DH_REMOTE = 16;
/** @type {Uint8Array} */
const EMPTY = new Uint8Array(0);
// sessions with one device that newer ones replaced, kept and tried, newest first, when the
// current one cannot decrypt (docs/protocol.md 7.1 and 24.5)
export const ARCHIVED_SESSIONS = 10;

/** What the initiator repeats in every message until it hears back (section 6.2). */
export class PendingPrekey {
  /**
   * @param {{ephemeralKey: Uint8Array, signedPrekeyId: number,
   *          oneTimePrekeyId: number | null, kemPrekeyId?: number | null,
   *          kemCiphertext?: Uint8Array | null}} fields kem*: version 2 (section 27.3)
   */
  constructor({
    ephemeralKey,
    signedPrekeyId,
    oneTimePrekeyId,
    kemPrekeyId = null,
    kemCiphertext = null,
  }) {
    this.ephemeralKey = ephemeralKey;
    this.signedPrekeyId = signedPrekeyId;
    this.oneTimePrekeyId = oneTimePrekeyId;
    this.kemPrekeyId = kemPrekeyId;
    this.kemCiphertext = kemCiphertext;
  }
}

/**
 * One pairwise session with one remote device. Mutated by encrypt/decrypt.
 *
 * decrypt() commits its changes only when the message authenticates, so a refused message
 * leaves the session unchanged.
 */
export class Session {
  /**
   * @param {{role: "initiator" | "responder", localIdentityKey: Uint8Array,
   *          remoteIdentityKey: Uint8Array, baseKey: Uint8Array, rootKey: Uint8Array,
   *          dhSelf: X25519KeyPair, dhRemote: Uint8Array | null,
   *          sendChainKey: Uint8Array | null, recvChainKey: Uint8Array | null,
   *          sendN?: number, recvN?: number, prevN?: number,
   *          skipped?: SkippedKeys, previousDhRemote?: Uint8Array[],
   *          pendingPrekey?: PendingPrekey | null, version?: number, binding?: Uint8Array,
   *          kem?: KemState | null}} fields version 2: binding in AD (27.2), kem (27.4)
   */
  constructor({
    role,
    localIdentityKey,
    remoteIdentityKey,
    baseKey,
    rootKey,
    dhSelf,
    dhRemote,
    sendChainKey,
    recvChainKey,
    sendN = 0,
    recvN = 0,
    prevN = 0,
    skipped = new SkippedKeys(),
    previousDhRemote = [],
    pendingPrekey = null,
    version = 1,
    binding = EMPTY,
    kem = null,
  }) {
    this.role = role;
    this.localIdentityKey = localIdentityKey;
    this.remoteIdentityKey = remoteIdentityKey;
    this.baseKey = baseKey;
    this.rootKey = rootKey;
    this.dhSelf = dhSelf;
    this.dhRemote = dhRemote;
    this.sendChainKey = sendChainKey;
    this.recvChainKey = recvChainKey;
    this.sendN = sendN;
    this.recvN = recvN;
    this.prevN = prevN;
    this.skipped = skipped;
    this.previousDhRemote = previousDhRemote;
    this.pendingPrekey = pendingPrekey;
    this.version = version;
    this.binding = binding;
    this.kem = kem;
  }

  /** AD = initiator identity key ‖ responder identity key (‖ binding). @returns {Uint8Array} */
  get associatedData() {
    return this.role === "initiator"
      ? concatBytes(this.localIdentityKey, this.remoteIdentityKey, this.binding)
      : concatBytes(this.remoteIdentityKey, this.localIdentityKey, this.binding);
  }

  /**
   * Verify `bundle` against the key in the signed list, run X3DH (PQXDH for a bundle with a
   * KEM prekey: a version-2 session), start as Alice. For a device whose signed entry lists
   * version 2 (`deviceSpeaksV2`), a bundle without a KEM prekey is DowngradeRefused (27.5).
   * Draws rng(32) for the base key, rng(32) for the encapsulation (version 2), then rng(32)
   * for the first ratchet key.
   * @param {{identity: IdentityKeyPair, bundle: PrekeyBundle, listedIdentityKey: Uint8Array,
   *          rng: Rng, deviceSpeaksV2?: boolean}} options
   * @returns {Session}
   */
  static initiate({ identity, bundle, listedIdentityKey, rng, deviceSpeaksV2 = false }) {
    verifyPrekeyBundle(bundle, { listedIdentityKey });
    if (deviceSpeaksV2 && bundle.kemPrekey === null) {
      throw new DowngradeRefused(
        `prekey bundle for device ${JSON.stringify(bundle.deviceId)}: no KEM prekey, and its signed entry lists version 2`,
      );
    }
    const agreement = x3dh.initiate({ identity, bundle, rng });
    const baseKey = /** @type {X25519KeyPair} */ (agreement.baseKey);
    const dhSelf = X25519KeyPair.generate(rng);
    const [rootKey, sendChainKey] = kdfRk(
      agreement.sharedSecret,
      primitives.dh(dhSelf.private, bundle.signedPrekey),
    );
    return new Session({
      role: "initiator",
      localIdentityKey: identity.public,
      remoteIdentityKey: bundle.identityKey,
      baseKey: baseKey.public,
      rootKey,
      dhSelf,
      dhRemote: bundle.signedPrekey,
      sendChainKey,
      recvChainKey: null,
      pendingPrekey: new PendingPrekey({
        ephemeralKey: baseKey.public,
        signedPrekeyId: bundle.signedPrekeyId,
        oneTimePrekeyId: bundle.oneTimePrekeyId,
        kemPrekeyId: bundle.kemPrekey === null ? null : bundle.kemPrekey.id,
        kemCiphertext: agreement.kemCiphertext,
      }),
      version: agreement.version,
      binding: agreement.binding,
      kem: agreement.version === 1 ? null : new KemState(),
    });
  }

  /**
   * Encrypt one message (section 6.3); draws rng(24) for the nonce.
   * The state changes only once the message is encoded, so a counter or prekey id that does
   * not fit its u32 field (MalformedMessage) leaves the session as it was.
   * @param {Uint8Array} plaintext
   * @param {Rng} rng
   * @returns {Uint8Array} wire bytes (a prekey message until the initiator hears back)
   */
  encrypt(plaintext, rng) {
    if (this.sendChainKey === null) {
      throw new UnknownSession(
        "session: expected a sending chain; the responder cannot send first",
      );
    }
    const [messageKey, nextChainKey] = kdfCk(this.sendChainKey);
    const header = new Header({
      dh: this.dhSelf.public,
      pn: this.prevN,
      n: this.sendN,
      ...(this.kem === null ? {} : this.kem.headerFields()),
    });
    const headerBytes = header.encode();
    const nonce = rng(24);
    const ciphertext = primitives.aeadEncrypt(
      messageKey,
      nonce,
      plaintext,
      concatBytes(this.associatedData, headerBytes),
    );
    const message = new RatchetMessage({ header, nonce, ciphertext });
    const wire =
      this.pendingPrekey === null
        ? message.encode()
        : new PrekeyMessage({
            identityKey: this.localIdentityKey,
            baseKey: this.pendingPrekey.ephemeralKey,
            signedPrekeyId: this.pendingPrekey.signedPrekeyId,
            oneTimePrekeyId: this.pendingPrekey.oneTimePrekeyId,
            message,
            kemPrekeyId: this.pendingPrekey.kemPrekeyId,
            kemCiphertext: this.pendingPrekey.kemCiphertext,
          }).encode();
    this.sendChainKey = nextChainKey;
    this.sendN += 1;
    if (this.kem !== null) this.kem = this.kem.counted();
    return wire;
  }

  /** @param {{version: number}} message */
  _expectVersion(message) {
    if (message.version !== this.version) {
      // another session's: the device may hold sessions of both versions (27.3)
      throw new UnknownSession(
        `message: expected version ${this.version} for this session, got ${message.version}`,
      );
    }
  }

  /**
   * Decrypt wire bytes (ratchet or prekey message) for this session (section 6.4).
   * May draw rng(32) for a new ratchet key (and, version 2, rng(32) for an answer and rng(64)
   * for an offer, section 27.4). Throws ReplayDetected, TooManySkippedMessages,
   * DecryptionFailed, UnknownSession or MalformedMessage and then changes nothing.
   * @param {Uint8Array} data
   * @param {Rng} rng
   * @returns {Uint8Array}
   */
  decrypt(data, rng) {
    let message = decodeMessage(data);
    this._expectVersion(message);
    if (message instanceof PrekeyMessage) {
      if (
        this.role !== "responder" ||
        !bytesEqual(message.baseKey, this.baseKey) ||
        !bytesEqual(message.identityKey, this.remoteIdentityKey)
      ) {
        throw new UnknownSession("prekey message: expected this session's base key and identity");
      }
      message = message.message;
    }
    return this.decryptRatchetMessage(message, rng);
  }

  /**
   * @param {RatchetMessage} message
   * @param {Rng} rng
   * @returns {Uint8Array}
   */
  decryptRatchetMessage(message, rng) {
    this._expectVersion(message);
    const work = this._copy();
    const plaintext = work._decrypt(message, rng);
    work.pendingPrekey = null;
    if (work.kem !== null) work.kem = work.kem.counted();
    Object.assign(this, work);
    return plaintext;
  }

  /** @param {RatchetMessage} message @param {Rng} rng @returns {Uint8Array} */
  _decrypt(message, rng) {
    const header = message.header;
    const ad = concatBytes(this.associatedData, header.encode());
    const skippedKey = this.skipped.pop(header.dh, header.n);
    if (skippedKey !== undefined) {
      return primitives.aeadDecrypt(skippedKey, message.nonce, message.ciphertext, ad);
    }
    if (
      this.previousDhRemote.some((k) => bytesEqual(k, header.dh)) ||
      (bytesEqual(header.dh, this.dhRemote) && header.n < this.recvN)
    ) {
      throw new ReplayDetected(
        `ratchet message ${header.n}: already decrypted (or its key was discarded)`,
      );
    }
    if (!bytesEqual(header.dh, this.dhRemote)) {
      this._skip(header.pn);
      this._dhRatchet(header, rng);
    }
    if (this.recvChainKey === null) {
      // The initiator before its first reply: DHr is the responder's signed prekey, which the
      // responder never sends with, and there is no receiving chain. Deriving a key from "no
      // chain" would make a key anyone can compute (a forgery), so refuse.
      throw new DecryptionFailed(
        "ratchet message: no receiving chain for this ratchet key (never sent with)",
      );
    }
    this._skip(header.n);
    const [messageKey, nextChainKey] = kdfCk(this.recvChainKey);
    this.recvChainKey = nextChainKey;
    this.recvN += 1;
    return primitives.aeadDecrypt(messageKey, message.nonce, message.ciphertext, ad);
  }

  /** @param {number} until */
  _skip(until) {
    if (this.recvChainKey === null) return;
    if (until > this.recvN + MAX_SKIP) {
      throw new TooManySkippedMessages(
        `ratchet: expected to skip at most ${MAX_SKIP} messages, got ${until - this.recvN}`,
      );
    }
    const dhRemote = /** @type {Uint8Array} */ (this.dhRemote);
    while (this.recvN < until) {
      const [messageKey, nextChainKey] = kdfCk(this.recvChainKey);
      this.recvChainKey = nextChainKey;
      this.skipped.add(dhRemote, this.recvN, messageKey);
      this.recvN += 1;
    }
    this.skipped.dropOldest();
  }

  /**
   * Section 6.4 step 3; in a version-2 session with the KEM steps of section 27.4.
   * @param {Header} header @param {Rng} rng
   */
  _dhRatchet(header, rng) {
    const remote = header.dh;
    /** @type {Uint8Array} */
    let kemIn = EMPTY;
    /** @type {Uint8Array} */
    let kemOut = EMPTY;
    if (this.kem !== null) [this.kem, kemIn] = this.kem.takeAnswer(header);
    this.prevN = this.sendN;
    this.sendN = 0;
    this.recvN = 0;
    if (this.dhRemote !== null) {
      this.previousDhRemote = [...this.previousDhRemote, this.dhRemote].slice(
        -MAX_PREVIOUS_DH_REMOTE,
      );
    }
    this.dhRemote = remote;
    [this.rootKey, this.recvChainKey] = kdfRk(
      this.rootKey,
      concatBytes(primitives.dh(this.dhSelf.private, remote), kemIn),
    );
    this.dhSelf = X25519KeyPair.generate(rng);
    if (this.kem !== null) [this.kem, kemOut] = this.kem.answerOffer(header, rng);
    [this.rootKey, this.sendChainKey] = kdfRk(
      this.rootKey,
      concatBytes(primitives.dh(this.dhSelf.private, remote), kemOut),
    );
    if (this.kem !== null) this.kem = this.kem.maybeOffer(rng);
  }

  /** @returns {Session} */
  _copy() {
    return new Session({
      ...this,
      skipped: this.skipped.copy(),
      previousDhRemote: [...this.previousDhRemote],
    });
  }

  /** Section 8: plain JSON (for IndexedDB). Contains private keys: store it like one. */
  toJSON() {
    /** @param {Uint8Array | null} value */
    const opt = (value) => (value === null ? null : b64uEncode(value));
    const pending = this.pendingPrekey;
    /** @type {Record<string, any>} */
    const data = {
      version: this.version,
      role: this.role,
      local_identity_key: b64uEncode(this.localIdentityKey),
      remote_identity_key: b64uEncode(this.remoteIdentityKey),
      base_key: b64uEncode(this.baseKey),
      root_key: b64uEncode(this.rootKey),
      dh_self_private: b64uEncode(this.dhSelf.private),
      dh_self_public: b64uEncode(this.dhSelf.public),
      dh_remote: opt(this.dhRemote),
      send_chain_key: opt(this.sendChainKey),
      recv_chain_key: opt(this.recvChainKey),
      send_n: this.sendN,
      recv_n: this.recvN,
      prev_n: this.prevN,
      skipped: this.skipped.toList(),
      previous_dh_remote: this.previousDhRemote.map((k) => b64uEncode(k)),
      pending_prekey:
        pending === null
          ? null
          : {
              ephemeral_key: b64uEncode(pending.ephemeralKey),
              signed_prekey_id: pending.signedPrekeyId,
              one_time_prekey_id: pending.oneTimePrekeyId,
              ...(this.version === 2
                ? {
                    kem_prekey_id: pending.kemPrekeyId,
                    kem_ciphertext: b64uEncode(/** @type {Uint8Array} */ (pending.kemCiphertext)),
                  }
                : {}),
            },
    };
    if (this.kem !== null) {
      data.binding = b64uEncode(this.binding);
      data.kem = this.kem.toJSON();
    }
    return data;
  }

  /**
   * @param {any} data the section 8 JSON object (not a string)
   * @returns {Session}
   */
  static fromJSON(data) {
    try {
      const version = data.version;
      if (version !== 1 && version !== 2) {
        throw new MalformedMessage(`session: expected version 1 or 2, got ${JSON.stringify(version)}`);
      }
      if (version === 1 && ("kem" in data || "binding" in data)) {
        throw new MalformedMessage("session: version 1 has no KEM state");
      }
      if (data.role !== "initiator" && data.role !== "responder") {
        throw new MalformedMessage(`session: expected a role, got ${JSON.stringify(data.role)}`);
      }
      /** @param {string} name */
      const key = (name) => b64uDecode(data[name], { length: 32, what: `session ${name}` });
      /** @param {string} name */
      const opt = (name) => {
        if (data[name] === undefined) throw new TypeError(`missing ${name}`);
        return data[name] === null ? null : key(name);
      };
      const dhSelf = X25519KeyPair.fromPrivate(key("dh_self_private"));
      if (!bytesEqual(dhSelf.public, key("dh_self_public"))) {
        throw new MalformedMessage("session: dh_self_public does not match dh_self_private");
      }
      if (opt("recv_chain_key") !== null && opt("dh_remote") === null) {
        throw new MalformedMessage("session: a receiving chain needs a remote ratchet key");
      }
      const pending = data.pending_prekey;
      if (pending === undefined) throw new TypeError("missing pending_prekey");
      if (!Array.isArray(data.skipped)) throw new TypeError("skipped: expected a list");
      if (!Array.isArray(data.previous_dh_remote)) {
        throw new TypeError("previous_dh_remote: expected a list");
      }
      if (pending !== null && (typeof pending !== "object" || Array.isArray(pending))) {
        throw new TypeError("pending_prekey: expected an object or null");
      }
      const skipped = SkippedKeys.fromList(data.skipped);
      let kemPrekeyId = null;
      let kemCiphertext = null;
      if (pending !== null && version === 2) {
        kemPrekeyId = counter(pending.kem_prekey_id, "kem_prekey_id", U32_MAX);
        kemCiphertext = b64uDecode(pending.kem_ciphertext, {
          length: primitives.MLKEM768_CIPHERTEXT_BYTES,
          what: "kem ciphertext",
        });
      }
      return new Session({
        role: data.role,
        localIdentityKey: key("local_identity_key"),
        remoteIdentityKey: key("remote_identity_key"),
        baseKey: key("base_key"),
        rootKey: key("root_key"),
        dhSelf,
        dhRemote: opt("dh_remote"),
        sendChainKey: opt("send_chain_key"),
        recvChainKey: opt("recv_chain_key"),
        sendN: counter(data.send_n, "send_n"),
        recvN: counter(data.recv_n, "recv_n"),
        prevN: counter(data.prev_n, "prev_n"),
        skipped,
        previousDhRemote: data.previous_dh_remote.map((/** @type {unknown} */ k) =>
          b64uDecode(k, { length: 32, what: "previous dh" }),
        ),
        pendingPrekey:
          pending === null
            ? null
            : new PendingPrekey({
                ephemeralKey: b64uDecode(pending.ephemeral_key, { length: 32, what: "ephemeral" }),
                signedPrekeyId: counter(pending.signed_prekey_id, "signed_prekey_id", U32_MAX),
                oneTimePrekeyId:
                  pending.one_time_prekey_id === null
                    ? null
                    : counter(pending.one_time_prekey_id, "one_time_prekey_id", U32_MAX),
                kemPrekeyId,
                kemCiphertext,
              }),
        version,
        binding:
          version === 1 ? EMPTY : b64uDecode(data.binding, { length: 32, what: "session binding" }),
        kem: version === 1 ? null : KemState.fromJSON(data.kem),
      });
    } catch (error) {
      if (error instanceof TypeError) {
        throw new MalformedMessage(`session: missing or mistyped field (${error.message})`);
      }
      throw error;
    }
  }
}

const U32_MAX = 0xffffffff;

/**
 * @param {unknown} value
 * @param {string} what
 * @param {number} [max]
 * @returns {number}
 */
function counter(value, what, max = Number.MAX_SAFE_INTEGER) {
  const n = /** @type {number} */ (value);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new MalformedMessage(`session ${what}: expected an integer in 0..${max}, got ${value}`);
  }
  return n;
}

/**
 * A version-1 session with a device whose signed entry lists version 2 is used for no new
 * message: a version-2 session from the device's bundle replaces it (section 27.5).
 * @param {{version: number}} session a Session or its JSON @param {boolean} speaksV2
 * @returns {boolean}
 */
export function outdatedFor(session, speaksV2) {
  return speaksV2 && session.version === 1;
}
