// Device keys and prekey bundles (docs/protocol.md section 3).

import { b64uDecode, b64uEncode, bytesEqual, concatBytes, label, u8, u32 } from "./encoding.js";
import { InvalidKey, MalformedMessage, UntrustedIdentity } from "./exceptions.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./rng.js").Rng} Rng */

/** Ed25519 identity key; its X25519 form is derived for X3DH. */
export class IdentityKeyPair {
  /**
   * @param {{public: Uint8Array, secret: Uint8Array}} fields secret is 64 bytes: seed ‖ public
   */
  constructor({ public: publicKey, secret }) {
    this.public = publicKey;
    this.secret = secret;
    /** @type {Uint8Array | undefined} */
    this._x25519Public = undefined;
    /** @type {Uint8Array | undefined} */
    this._x25519Private = undefined;
  }

  /** @param {Uint8Array} seed @returns {IdentityKeyPair} */
  static fromSeed(seed) {
    const [publicKey, secret] = primitives.ed25519Keypair(seed);
    return new IdentityKeyPair({ public: publicKey, secret });
  }

  /** @returns {Uint8Array} */
  get x25519Public() {
    this._x25519Public ??= primitives.ed25519PkToX25519(this.public);
    return this._x25519Public;
  }

  /** @returns {Uint8Array} */
  get x25519Private() {
    this._x25519Private ??= primitives.ed25519SkToX25519(this.secret);
    return this._x25519Private;
  }

  /** @param {Uint8Array} message @returns {Uint8Array} */
  sign(message) {
    return primitives.ed25519Sign(this.secret, message);
  }
}

export class X25519KeyPair {
  /** @param {{private: Uint8Array, public: Uint8Array}} fields */
  constructor({ private: privateKey, public: publicKey }) {
    this.private = privateKey;
    this.public = publicKey;
  }

  /** @param {Uint8Array} privateKey @returns {X25519KeyPair} */
  static fromPrivate(privateKey) {
    return new X25519KeyPair({ private: privateKey, public: primitives.x25519Public(privateKey) });
  }

  /** @param {Rng} rng @returns {X25519KeyPair} draws rng(32) */
  static generate(rng) {
    return X25519KeyPair.fromPrivate(rng(32));
  }
}

export class SignedPrekey {
  /** @param {{id: number, key: X25519KeyPair, signature: Uint8Array}} fields */
  constructor({ id, key, signature }) {
    this.id = id;
    this.key = key;
    this.signature = signature;
  }
}

export class OneTimePrekey {
  /** @param {{id: number, key: X25519KeyPair}} fields */
  constructor({ id, key }) {
    this.id = id;
    this.key = key;
  }
}

/** A KEM prekey as a bundle carries it (section 27.1). */
export class PublicKemPrekey {
  /** @param {{id: number, publicKey: Uint8Array, signature: Uint8Array, lastResort: boolean}} fields */
  constructor({ id, publicKey, signature, lastResort }) {
    this.id = id;
    this.publicKey = publicKey;
    this.signature = signature;
    this.lastResort = lastResort;
  }

  toJSON() {
    return {
      id: this.id,
      public_key: b64uEncode(this.publicKey),
      signature: b64uEncode(this.signature),
      last_resort: this.lastResort,
    };
  }

  /** @param {any} data @returns {PublicKemPrekey} */
  static fromJSON(data) {
    if (typeof data !== "object" || data === null || typeof data.last_resort !== "boolean") {
      throw new MalformedMessage("kem prekey: expected an object with a boolean last_resort");
    }
    return new PublicKemPrekey({
      id: u32Field(data.id, "kem_prekey.id"),
      publicKey: b64uDecode(data.public_key, {
        length: primitives.MLKEM768_PUBLIC_KEY_BYTES,
        what: "kem prekey public key",
      }),
      signature: b64uDecode(data.signature, { length: 64, what: "kem prekey signature" }),
      lastResort: data.last_resort,
    });
  }
}

/**
 * An ML-KEM-768 prekey kept as its seed (section 27.1); the public key and its signature
 * follow from the seed and the identity key, computed when first asked for (a device loads its
 * keys often and uses a KEM prekey seldom).
 */
export class KemPrekey {
  /**
   * @param {{id: number, seed: Uint8Array, lastResort: boolean, identity: IdentityKeyPair}} fields
   */
  constructor({ id, seed, lastResort, identity }) {
    this.id = id;
    this.seed = seed;
    this.lastResort = lastResort;
    /** @type {IdentityKeyPair} */
    this._identity = identity;
    /** @type {Uint8Array | undefined} */
    this._public = undefined;
    /** @type {Uint8Array | undefined} */
    this._signature = undefined;
  }

  /**
   * @param {IdentityKeyPair} identity @param {number} keyId @param {Uint8Array} seed
   * @param {{lastResort: boolean}} options
   * @returns {KemPrekey}
   */
  static fromSeed(identity, keyId, seed, { lastResort }) {
    if (seed.length !== primitives.MLKEM768_SEED_BYTES) {
      throw new InvalidKey(`KEM prekey seed: expected 64 bytes, got ${seed.length}`);
    }
    return new KemPrekey({ id: keyId, seed, lastResort, identity });
  }

  /** @returns {Uint8Array} */
  get public() {
    this._public ??= primitives.mlkem768Public(this.seed);
    return this._public;
  }

  /** @returns {Uint8Array} */
  get signature() {
    this._signature ??= this._identity.sign(kemPrekeyBytes(this.id, this.lastResort, this.public));
    return this._signature;
  }

  /** @returns {PublicKemPrekey} */
  toPublic() {
    return new PublicKemPrekey({
      id: this.id,
      publicKey: this.public,
      signature: this.signature,
      lastResort: this.lastResort,
    });
  }
}

/** Everything private a device holds; never leaves the device. */
export class DeviceKeys {
  /**
   * @param {{identity: IdentityKeyPair, signedPrekey: SignedPrekey,
   *          oneTimePrekeys: OneTimePrekey[], kemPrekeys?: KemPrekey[],
   *          lastResortKemPrekey?: KemPrekey | null}} fields
   */
  constructor({ identity, signedPrekey, oneTimePrekeys, kemPrekeys = [], lastResortKemPrekey = null }) {
    this.identity = identity;
    this.signedPrekey = signedPrekey;
    this.oneTimePrekeys = oneTimePrekeys;
    this.kemPrekeys = kemPrekeys;
    this.lastResortKemPrekey = lastResortKemPrekey;
  }

  /** The same JSON as Python's DeviceKeys.to_dict; contains private keys. */
  toJSON() {
    /** @type {Record<string, any>} */
    const data = {
      version: this.lastResortKemPrekey === null ? 1 : 2,
      identity_seed: b64uEncode(this.identity.secret.subarray(0, 32)),
      signed_prekey: {
        id: this.signedPrekey.id,
        private_key: b64uEncode(this.signedPrekey.key.private),
        signature: b64uEncode(this.signedPrekey.signature),
      },
      one_time_prekeys: this.oneTimePrekeys.map((k) => ({
        id: k.id,
        private_key: b64uEncode(k.key.private),
      })),
    };
    if (this.lastResortKemPrekey !== null) {
      data.kem_prekeys = this.kemPrekeys.map((k) => ({ id: k.id, seed: b64uEncode(k.seed) }));
      data.last_resort_kem_prekey = {
        id: this.lastResortKemPrekey.id,
        seed: b64uEncode(this.lastResortKemPrekey.seed),
      };
    }
    return data;
  }

  /**
   * Parse the private JSON form (version 1, or 2 with KEM prekeys).
   * @param {any} data @returns {DeviceKeys}
   */
  static fromJSON(data) {
    const version = data?.version;
    if (version !== 1 && version !== 2) {
      throw new MalformedMessage(`device keys: expected version 1 or 2, got ${version}`);
    }
    try {
      const spk = data.signed_prekey;
      if (!Array.isArray(data.one_time_prekeys)) {
        throw new MalformedMessage("device keys: expected a list of one-time prekeys");
      }
      const identity = IdentityKeyPair.fromSeed(
        b64uDecode(data.identity_seed, { length: 32, what: "identity_seed" }),
      );
      /** @type {KemPrekey[]} */
      let kemPrekeys = [];
      let lastResortKemPrekey = null;
      if (version === 2) {
        if (!Array.isArray(data.kem_prekeys)) {
          throw new MalformedMessage("device keys: expected a list of KEM prekeys");
        }
        kemPrekeys = data.kem_prekeys.map((/** @type {any} */ k) =>
          kemPrekeyFromJSON(identity, k, false),
        );
        lastResortKemPrekey = kemPrekeyFromJSON(identity, data.last_resort_kem_prekey, true);
      } else if ("kem_prekeys" in data || "last_resort_kem_prekey" in data) {
        throw new MalformedMessage("device keys: version 1 has no KEM prekeys");
      }
      return new DeviceKeys({
        identity,
        signedPrekey: new SignedPrekey({
          id: u32Field(spk.id, "signed prekey id"),
          key: X25519KeyPair.fromPrivate(
            b64uDecode(spk.private_key, { length: 32, what: "signed prekey" }),
          ),
          signature: b64uDecode(spk.signature, { length: 64, what: "signed prekey signature" }),
        }),
        oneTimePrekeys: data.one_time_prekeys.map(
          (/** @type {any} */ k) =>
            new OneTimePrekey({
              id: u32Field(k.id, "one-time prekey id"),
              key: X25519KeyPair.fromPrivate(
                b64uDecode(k.private_key, { length: 32, what: "one-time prekey" }),
              ),
            }),
        ),
        kemPrekeys,
        lastResortKemPrekey,
      });
    } catch (error) {
      if (error instanceof TypeError) {
        throw new MalformedMessage(`device keys: missing or mistyped field (${error.message})`);
      }
      throw error;
    }
  }
}

/**
 * @param {IdentityKeyPair} identity @param {any} data @param {boolean} lastResort
 * @returns {KemPrekey}
 */
function kemPrekeyFromJSON(identity, data, lastResort) {
  if (typeof data !== "object" || data === null) {
    throw new MalformedMessage("device keys: expected a KEM prekey object");
  }
  return KemPrekey.fromSeed(
    identity,
    u32Field(data.id, "KEM prekey id"),
    b64uDecode(data.seed, { length: primitives.MLKEM768_SEED_BYTES, what: "KEM prekey seed" }),
    { lastResort },
  );
}

/**
 * label("Parley v2 kem prekey") ‖ u32 id ‖ u8 last_resort ‖ public key; section 27.1.
 * @param {number} prekeyId @param {boolean} lastResort @param {Uint8Array} publicKey
 * @returns {Uint8Array}
 */
export function kemPrekeyBytes(prekeyId, lastResort, publicKey) {
  return concatBytes(label("Parley v2 kem prekey"), u32(prekeyId), u8(lastResort ? 1 : 0), publicKey);
}

/**
 * Draws rng(64), the key pair's seed.
 * @param {IdentityKeyPair} identity @param {number} prekeyId @param {Rng} rng
 * @param {{lastResort?: boolean}} [options]
 * @returns {KemPrekey}
 */
export function generateKemPrekey(identity, prekeyId, rng, { lastResort = false } = {}) {
  return KemPrekey.fromSeed(identity, prekeyId, rng(64), { lastResort });
}

/**
 * @param {IdentityKeyPair} identity @param {Iterable<number>} ids @param {Rng} rng
 * @returns {KemPrekey[]}
 */
export function generateKemPrekeys(identity, ids, rng) {
  return Array.from(ids, (id) => generateKemPrekey(identity, id, rng));
}

/**
 * label("Parley v1 signed prekey") ‖ u32 id ‖ public key; section 3.1.
 * @param {number} prekeyId
 * @param {Uint8Array} publicKey
 * @returns {Uint8Array}
 */
export function signedPrekeyBytes(prekeyId, publicKey) {
  return concatBytes(label("Parley v1 signed prekey"), u32(prekeyId), publicKey);
}

/** @param {Rng} rng @returns {IdentityKeyPair} */
export function generateIdentity(rng) {
  return IdentityKeyPair.fromSeed(rng(32));
}

/**
 * @param {IdentityKeyPair} identity
 * @param {number} prekeyId
 * @param {Rng} rng
 * @returns {SignedPrekey}
 */
export function generateSignedPrekey(identity, prekeyId, rng) {
  const key = X25519KeyPair.generate(rng);
  return new SignedPrekey({
    id: prekeyId,
    key,
    signature: identity.sign(signedPrekeyBytes(prekeyId, key.public)),
  });
}

/**
 * @param {Iterable<number>} ids
 * @param {Rng} rng
 * @returns {OneTimePrekey[]}
 */
export function generateOneTimePrekeys(ids, rng) {
  return Array.from(ids, (id) => new OneTimePrekey({ id, key: X25519KeyPair.generate(rng) }));
}

/**
 * Draws identity seed, signed prekey, one-time prekeys, then (a device of version 2, section
 * 27.1) the last-resort KEM prekey's seed and the one-time KEM prekeys' seeds, in that order.
 * @param {Rng} rng
 * @param {{signedPrekeyId?: number, oneTimePrekeyIds?: Iterable<number>,
 *          lastResortKemPrekeyId?: number | null, kemPrekeyIds?: Iterable<number>}} [options]
 * @returns {DeviceKeys}
 */
export function generateDeviceKeys(
  rng,
  { signedPrekeyId = 1, oneTimePrekeyIds = [], lastResortKemPrekeyId = null, kemPrekeyIds = [] } = {},
) {
  const identity = generateIdentity(rng);
  const signedPrekey = generateSignedPrekey(identity, signedPrekeyId, rng);
  const oneTimePrekeys = generateOneTimePrekeys(oneTimePrekeyIds, rng);
  const lastResortKemPrekey =
    lastResortKemPrekeyId === null
      ? null
      : generateKemPrekey(identity, lastResortKemPrekeyId, rng, { lastResort: true });
  const kemPrekeys = generateKemPrekeys(identity, kemPrekeyIds, rng);
  return new DeviceKeys({ identity, signedPrekey, oneTimePrekeys, kemPrekeys, lastResortKemPrekey });
}

/** @param {unknown} value @param {string} what @returns {number} */
function u32Field(value, what) {
  if (
    !Number.isSafeInteger(value) ||
    /** @type {number} */ (value) < 0 ||
    /** @type {number} */ (value) > 0xffffffff
  ) {
    throw new MalformedMessage(`${what}: expected an integer in 0..2^32-1, got ${value}`);
  }
  return /** @type {number} */ (value);
}

/** What the key directory serves for one device (section 3.2). */
export class PrekeyBundle {
  /**
   * @param {{deviceId: string, identityKey: Uint8Array, signedPrekeyId: number,
   *          signedPrekey: Uint8Array, signedPrekeySignature: Uint8Array,
   *          oneTimePrekeyId?: number | null, oneTimePrekey?: Uint8Array | null,
   *          kemPrekey?: PublicKemPrekey | null}} fields
   */
  constructor({
    deviceId,
    identityKey,
    signedPrekeyId,
    signedPrekey,
    signedPrekeySignature,
    oneTimePrekeyId = null,
    oneTimePrekey = null,
    kemPrekey = null,
  }) {
    this.deviceId = deviceId;
    this.identityKey = identityKey;
    this.signedPrekeyId = signedPrekeyId;
    this.signedPrekey = signedPrekey;
    this.signedPrekeySignature = signedPrekeySignature;
    this.oneTimePrekeyId = oneTimePrekeyId;
    this.oneTimePrekey = oneTimePrekey;
    /** version 2 (section 27.1) */
    this.kemPrekey = kemPrekey;
  }

  toJSON() {
    return {
      device_id: this.deviceId,
      identity_key: b64uEncode(this.identityKey),
      signed_prekey: {
        id: this.signedPrekeyId,
        public_key: b64uEncode(this.signedPrekey),
        signature: b64uEncode(this.signedPrekeySignature),
      },
      one_time_prekey:
        this.oneTimePrekey === null
          ? null
          : { id: this.oneTimePrekeyId, public_key: b64uEncode(this.oneTimePrekey) },
      kem_prekey: this.kemPrekey === null ? null : this.kemPrekey.toJSON(),
    };
  }

  /**
   * A bundle without `kem_prekey` (from an older server) reads as one with null.
   * @param {any} data @returns {PrekeyBundle}
   */
  static fromJSON(data) {
    try {
      const spk = data.signed_prekey;
      const otp = data.one_time_prekey;
      if (spk === undefined || otp === undefined)
        throw new TypeError("signed_prekey/one_time_prekey");
      if (typeof data.device_id !== "string") {
        throw new MalformedMessage("prekey bundle: expected a string device_id");
      }
      return new PrekeyBundle({
        deviceId: data.device_id,
        identityKey: b64uDecode(data.identity_key, { length: 32, what: "identity_key" }),
        signedPrekeyId: u32Field(spk.id, "signed_prekey.id"),
        signedPrekey: b64uDecode(spk.public_key, { length: 32, what: "signed prekey" }),
        signedPrekeySignature: b64uDecode(spk.signature, {
          length: 64,
          what: "signed prekey signature",
        }),
        oneTimePrekeyId: otp === null ? null : u32Field(otp.id, "one_time_prekey.id"),
        oneTimePrekey:
          otp === null ? null : b64uDecode(otp.public_key, { length: 32, what: "one-time prekey" }),
        kemPrekey:
          data.kem_prekey === undefined || data.kem_prekey === null
            ? null
            : PublicKemPrekey.fromJSON(data.kem_prekey),
      });
    } catch (error) {
      if (error instanceof TypeError) {
        throw new MalformedMessage(`prekey bundle: missing or mistyped field (${error.message})`);
      }
      throw error;
    }
  }
}

/**
 * @param {string} deviceId
 * @param {DeviceKeys} keys
 * @param {OneTimePrekey | null} [oneTimePrekey]
 * @param {KemPrekey | null} [kemPrekey]
 * @returns {PrekeyBundle}
 */
export function makePrekeyBundle(deviceId, keys, oneTimePrekey = null, kemPrekey = null) {
  return new PrekeyBundle({
    deviceId,
    identityKey: keys.identity.public,
    signedPrekeyId: keys.signedPrekey.id,
    signedPrekey: keys.signedPrekey.key.public,
    signedPrekeySignature: keys.signedPrekey.signature,
    oneTimePrekeyId: oneTimePrekey === null ? null : oneTimePrekey.id,
    oneTimePrekey: oneTimePrekey === null ? null : oneTimePrekey.key.public,
    kemPrekey: kemPrekey === null ? null : kemPrekey.toPublic(),
  });
}

/**
 * Check a bundle against the identity key from the verified device list, not the server's.
 * @param {PrekeyBundle} bundle
 * @param {{listedIdentityKey: Uint8Array}} options
 */
export function verifyPrekeyBundle(bundle, { listedIdentityKey }) {
  if (!bytesEqual(bundle.identityKey, listedIdentityKey)) {
    throw new UntrustedIdentity(
      `prekey bundle for device ${JSON.stringify(bundle.deviceId)}: identity key differs from the signed device list`,
    );
  }
  primitives.ed25519Verify(
    listedIdentityKey,
    signedPrekeyBytes(bundle.signedPrekeyId, bundle.signedPrekey),
    bundle.signedPrekeySignature,
    {
      what: `signed prekey ${bundle.signedPrekeyId} of device ${JSON.stringify(bundle.deviceId)}`,
    },
  );
  const kem = bundle.kemPrekey;
  if (kem !== null) {
    primitives.ed25519Verify(
      listedIdentityKey,
      kemPrekeyBytes(kem.id, kem.lastResort, kem.publicKey),
      kem.signature,
      { what: `KEM prekey ${kem.id} of device ${JSON.stringify(bundle.deviceId)}` },
    );
  }
}

export const KEM_PREKEYS_PER_UPLOAD = 25; // the server's PARLEY_KEM_PREKEYS_PER_UPLOAD (27.6)

/**
 * A device's next KEM prekeys: `keys` holds their private halves (store it first), then
 * `uploads` go to POST /api/prekeys in order; ids from `nextId` on were used.
 */
export class KemRefill {
  /** @param {{keys: DeviceKeys, uploads: Record<string, any>[], nextId: number}} fields */
  constructor({ keys, uploads, nextId }) {
    this.keys = keys;
    this.uploads = uploads;
    this.nextId = nextId;
  }
}

/**
 * What a device uploads after reading its counts from GET /api/prekeys (section 27.1):
 * `stored` one-time KEM prekeys and the id of its last-resort one there (null: none). A device
 * with no last-resort key makes one; one the server lacks is uploaded again. The one-time pool
 * is topped back up to `target` once fewer than half of it is left, in requests of at most
 * KEM_PREKEYS_PER_UPLOAD. Draws rng(64) per new key, the last-resort one first. Null when
 * nothing is to be done.
 * @param {DeviceKeys} keys
 * @param {{stored: number, lastResortStored: number | null, nextId: number, target: number,
 *          rng: Rng}} options
 * @returns {KemRefill | null}
 */
export function planKemRefill(keys, { stored, lastResortStored, nextId, target, rng }) {
  let lastResort = keys.lastResortKemPrekey;
  const freshLastResort = lastResort === null;
  if (lastResort === null) {
    lastResort = generateKemPrekey(keys.identity, nextId, rng, { lastResort: true });
    nextId += 1;
  }
  const uploadLastResort = freshLastResort || lastResortStored !== lastResort.id;
  const count = stored * 2 < target ? target - stored : 0;
  if (!uploadLastResort && count === 0) return null;
  const ids = Array.from({ length: count }, (_, i) => nextId + i);
  const fresh = generateKemPrekeys(keys.identity, ids, rng);
  /** @type {Record<string, any>[]} */
  const uploads = [];
  for (let start = 0; start < Math.max(count, 1); start += KEM_PREKEYS_PER_UPLOAD) {
    /** @type {Record<string, any>} */
    const body = { kem_prekeys: fresh.slice(start, start + KEM_PREKEYS_PER_UPLOAD).map(kemPrekeyJson) };
    if (uploadLastResort && start === 0) body.last_resort_kem_prekey = kemPrekeyJson(lastResort);
    uploads.push(body);
  }
  return new KemRefill({
    keys: new DeviceKeys({
      identity: keys.identity,
      signedPrekey: keys.signedPrekey,
      oneTimePrekeys: keys.oneTimePrekeys,
      kemPrekeys: [...keys.kemPrekeys, ...fresh],
      lastResortKemPrekey: lastResort,
    }),
    uploads,
    nextId: nextId + count,
  });
}

/**
 * A KEM prekey as POST /api/prekeys, sign-up and linking take it (section 27.6).
 * @param {KemPrekey} key
 */
export function kemPrekeyJson(key) {
  return { id: key.id, public_key: b64uEncode(key.public), signature: b64uEncode(key.signature) };
}
