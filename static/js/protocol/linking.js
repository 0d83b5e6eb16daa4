// Signatures and payloads around device linking (docs/protocol.md section 13).

import { signLink, verifyLinkSignature } from "./devicelist.js";
import { b64uDecode, b64uEncode, concatBytes, encStr, label } from "./encoding.js";
import { InvalidKey, MalformedMessage } from "./exceptions.js";
import * as primitives from "./primitives.js";
import { canonicalJson, isPlainObject, parseCanonicalJson } from "./strictjson.js";

/** @typedef {import("./keys.js").IdentityKeyPair} IdentityKeyPair */
/** @typedef {import("./keys.js").X25519KeyPair} X25519KeyPair */

/** @param {Uint8Array} value @param {string} what @returns {Uint8Array} */
function bytes32(value, what) {
  if (!(value instanceof Uint8Array) || value.length !== 32) {
    const got = value instanceof Uint8Array ? value.length : typeof value;
    throw new InvalidKey(`${what}: expected 32 bytes, got ${got}`);
  }
  return value;
}

/** @param {Uint8Array} nonce @returns {Uint8Array} */
function checkNonce(nonce) {
  return bytes32(nonce, "nonce");
}

/**
 * The WebAuthn challenge that binds the approval to this link and both new keys.
 * @param {{serverNonce: Uint8Array, linkId: string, companionIdentityKey: Uint8Array,
 *          ephemeralKey: Uint8Array}} options
 * @returns {Uint8Array}
 */
export function linkChallenge({ serverNonce, linkId, companionIdentityKey, ephemeralKey }) {
  return primitives.hash32(
    "Parley v1 link challenge",
    concatBytes(
      checkNonce(serverNonce),
      encStr(linkId),
      bytes32(companionIdentityKey, "companion identity key"),
      bytes32(ephemeralKey, "ephemeral key"),
    ),
  );
}

/** What the primary seals to the companion's ephemeral key (public data only). */
export class Provisioning {
  /**
   * @param {{accountId: string, accountKey: Uint8Array, linkId: string,
   *          linkSignature: Uint8Array}} fields
   */
  constructor({ accountId, accountKey, linkId, linkSignature }) {
    this.accountId = accountId;
    this.accountKey = accountKey;
    this.linkId = linkId;
    this.linkSignature = linkSignature;
  }
}

/**
 * @param {IdentityKeyPair} account
 * @param {{accountId: string, companionIdentityKey: Uint8Array, linkId: string}} options
 * @returns {Provisioning}
 */
export function makeProvisioning(account, { accountId, companionIdentityKey, linkId }) {
  return new Provisioning({
    accountId,
    accountKey: account.public,
    linkId,
    linkSignature: signLink(account, { accountId, companionIdentityKey, linkId }),
  });
}

/**
 * The canonical JSON that is sealed (section 13).
 * @param {Provisioning} provisioning
 * @returns {Uint8Array}
 */
export function provisioningPayload(provisioning) {
  return canonicalJson({
    account_id: provisioning.accountId,
    account_key: b64uEncode(provisioning.accountKey),
    link_id: provisioning.linkId,
    link_signature: b64uEncode(provisioning.linkSignature),
  });
}

/**
 * @param {Provisioning} provisioning
 * @param {Uint8Array} ephemeralPublicKey X25519
 * @returns {Uint8Array}
 */
export function sealProvisioning(provisioning, ephemeralPublicKey) {
  return primitives.sealedBox(provisioningPayload(provisioning), ephemeralPublicKey);
}

/**
 * Open and check that the account signed exactly our identity key and this link id.
 * @param {Uint8Array} sealed
 * @param {{ephemeral: X25519KeyPair, ownIdentityKey: Uint8Array, linkId: string}} options
 * @returns {Provisioning}
 */
export function openProvisioning(sealed, { ephemeral, ownIdentityKey, linkId }) {
  const data = parseCanonicalJson(
    primitives.sealedBoxOpen(sealed, ephemeral.public, ephemeral.private),
  );
  const keys = isPlainObject(data) ? Object.keys(data).sort() : [];
  if (keys.join(",") !== "account_id,account_key,link_id,link_signature") {
    throw new MalformedMessage(
      "provisioning: expected account_id, account_key, link_id, link_signature",
    );
  }
  if (typeof data.account_id !== "string" || data.link_id !== linkId) {
    throw new MalformedMessage("provisioning: expected our own link id and a string account id");
  }
  const provisioning = new Provisioning({
    accountId: data.account_id,
    accountKey: b64uDecode(data.account_key, { length: 32, what: "account_key" }),
    linkId,
    linkSignature: b64uDecode(data.link_signature, { length: 64, what: "link_signature" }),
  });
  verifyLinkSignature(provisioning.linkSignature, {
    accountId: provisioning.accountId,
    accountKey: provisioning.accountKey,
    companionIdentityKey: ownIdentityKey,
    linkId,
  });
  return provisioning;
}

/** @param {Uint8Array} nonce @param {string} linkId @returns {Uint8Array} */
export function linkTokenBytes(nonce, linkId) {
  return concatBytes(label("Parley v1 link token"), checkNonce(nonce), encStr(linkId));
}

/**
 * @param {IdentityKeyPair} companion
 * @param {{nonce: Uint8Array, linkId: string}} options
 * @returns {Uint8Array}
 */
export function signLinkToken(companion, { nonce, linkId }) {
  return companion.sign(linkTokenBytes(nonce, linkId));
}

/**
 * @param {Uint8Array} signature
 * @param {{identityKey: Uint8Array, nonce: Uint8Array, linkId: string}} options
 */
export function verifyLinkToken(signature, { identityKey, nonce, linkId }) {
  primitives.ed25519Verify(identityKey, linkTokenBytes(nonce, linkId), signature, {
    what: "link token signature",
  });
}

/**
 * @param {string} origin
 * @param {string} deviceId
 * @param {Uint8Array} nonce
 * @returns {Uint8Array}
 */
export function signInBytes(origin, deviceId, nonce) {
  return concatBytes(
    label("Parley v1 sign-in"),
    encStr(origin),
    encStr(deviceId),
    checkNonce(nonce),
  );
}

/**
 * @param {IdentityKeyPair} device
 * @param {{origin: string, deviceId: string, nonce: Uint8Array}} options
 * @returns {Uint8Array}
 */
export function signIn(device, { origin, deviceId, nonce }) {
  return device.sign(signInBytes(origin, deviceId, nonce));
}

/**
 * @param {Uint8Array} signature
 * @param {{identityKey: Uint8Array, origin: string, deviceId: string, nonce: Uint8Array}} options
 */
export function verifySignIn(signature, { identityKey, origin, deviceId, nonce }) {
  primitives.ed25519Verify(identityKey, signInBytes(origin, deviceId, nonce), signature, {
    what: "sign-in signature",
  });
}

/**
 * Six digits both sides compute from their own copy of the QR data (section 13).
 * @param {{linkId: string, companionIdentityKey: Uint8Array, ephemeralKey: Uint8Array}} options
 * @returns {string}
 */
export function linkCheckCode({ linkId, companionIdentityKey, ephemeralKey }) {
  const d = primitives.hash32(
    "Parley v1 link check code",
    concatBytes(
      encStr(linkId),
      bytes32(companionIdentityKey, "companion identity key"),
      bytes32(ephemeralKey, "ephemeral key"),
    ),
  );
  const n = ((d[0] << 24) >>> 0) + (d[1] << 16) + (d[2] << 8) + d[3];
  return String(n % 1000000).padStart(6, "0");
}

// ------------------------------------------------------------------ the link URL (QR code)

export const LINK_PATH = "/link/approve";
const LINK_FRAGMENT = /^v1\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/;

/** What a new device's QR code carries: its link id, identity key and ephemeral key. */
export class LinkCode {
  /** @param {{linkId: string, identityKey: Uint8Array, ephemeralKey: Uint8Array}} fields */
  constructor({ linkId, identityKey, ephemeralKey }) {
    this.linkId = linkId;
    this.identityKey = identityKey;
    this.ephemeralKey = ephemeralKey;
  }
}

/**
 * The approval page's URL; the fragment (never sent to a server) carries the keys.
 * @param {string} origin @param {LinkCode} code @returns {string}
 */
export function linkUrl(origin, code) {
  if (typeof code.linkId !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(code.linkId)) {
    throw new MalformedMessage("link id: expected 1 to 64 base64url characters");
  }
  const identityKey = bytes32(code.identityKey, "identity key");
  const ephemeralKey = bytes32(code.ephemeralKey, "ephemeral key");
  return `${origin}${LINK_PATH}#v1.${code.linkId}.${b64uEncode(identityKey)}.${b64uEncode(ephemeralKey)}`;
}

/**
 * The link code of a URL `linkUrl(origin, ...)` made; anything else (another site, another
 * version, a key of another length or non-canonical base64url) is MalformedMessage.
 * @param {string} url @param {{origin: string}} options @returns {LinkCode}
 */
export function parseLinkUrl(url, { origin }) {
  const prefix = `${origin}${LINK_PATH}#`;
  if (typeof url !== "string" || !url.startsWith(prefix)) {
    throw new MalformedMessage(`link URL: expected one starting with ${JSON.stringify(prefix)}`);
  }
  const match = LINK_FRAGMENT.exec(url.slice(prefix.length));
  if (!match) throw new MalformedMessage("link URL: expected the fragment v1.<link id>.<key>.<key>");
  return new LinkCode({
    linkId: match[1],
    identityKey: b64uDecode(match[2], { length: 32, what: "link URL identity key" }),
    ephemeralKey: b64uDecode(match[3], { length: 32, what: "link URL ephemeral key" }),
  });
}
