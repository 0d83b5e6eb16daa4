// Account-signed device lists, device and link signatures (docs/protocol.md section 4).

import {
  b64uDecode,
  b64uEncode,
  bytesEqual,
  compareBytes,
  concatBytes,
  encStr,
  label,
  u8,
  u16,
  u64,
  utf8Encode,
} from "./encoding.js";
import {
  AccountKeyChanged,
  DeviceKeyChanged,
  InvalidSignature,
  MalformedDeviceList,
  MalformedMessage,
  MissingDeviceSignature,
  StaleDeviceList,
} from "./exceptions.js";
import * as primitives from "./primitives.js";

/** @typedef {import("./keys.js").IdentityKeyPair} IdentityKeyPair */

export const MAX_DEVICES = 5;
export const V1_ONLY = Object.freeze([1]);
export const MAX_PROTOCOLS = 8;
// what a device of this build speaks, in the entries it signs or has signed (section 27.5)
export const SPOKEN_PROTOCOLS = Object.freeze([1, 2]);
export const PROTOCOLS_RULE =
  "device list protocols: expected 2 to 8 versions in 1..255, ascending, with 1 " +
  "(an entry of version 1 only has no protocols)";

/** @param {readonly number[]} protocols */
function isV1Only(protocols) {
  return protocols.length === 1 && protocols[0] === 1;
}

/** [1], or 2 to MAX_PROTOCOLS versions in 1..255, ascending, beginning with 1. @param {unknown} value */
function validProtocols(value) {
  if (!Array.isArray(value)) return false;
  if (isV1Only(value)) return true;
  return (
    value.length >= 2 &&
    value.length <= MAX_PROTOCOLS &&
    value.every((v, i) => Number.isSafeInteger(v) && v > 0 && v <= 255 && (i === 0 || v > value[i - 1])) &&
    value[0] === 1
  );
}

export class DeviceEntry {
  /**
   * @param {{deviceId: string, identityKey: Uint8Array, addedAt: number,
   *          deviceSignature?: Uint8Array | null, protocols?: readonly number[]}} fields
   *          protocols: the versions the device speaks (section 27.5)
   */
  constructor({ deviceId, identityKey, addedAt, deviceSignature = null, protocols = V1_ONLY }) {
    this.deviceId = deviceId;
    this.identityKey = identityKey;
    this.addedAt = addedAt;
    this.deviceSignature = deviceSignature;
    this.protocols = protocols;
  }

  /** @returns {boolean} */
  get speaksV2() {
    return this.protocols.includes(2);
  }
}

export class DeviceList {
  /**
   * @param {{accountId: string, accountKey: Uint8Array, version: number, timestamp: number,
   *          devices: DeviceEntry[], signature?: Uint8Array}} fields
   */
  constructor({
    accountId,
    accountKey,
    version,
    timestamp,
    devices,
    signature = new Uint8Array(0),
  }) {
    this.accountId = accountId;
    this.accountKey = accountKey;
    this.version = version;
    this.timestamp = timestamp;
    this.devices = devices;
    this.signature = signature;
  }

  /** The JSON form of section 4.1. */
  toJSON() {
    return {
      account_id: this.accountId,
      account_key: b64uEncode(this.accountKey),
      version: this.version,
      timestamp: this.timestamp,
      devices: this.devices.map((d) => ({
        device_id: d.deviceId,
        identity_key: b64uEncode(d.identityKey),
        added_at: d.addedAt,
        device_signature: d.deviceSignature === null ? null : b64uEncode(d.deviceSignature),
        ...(isV1Only(d.protocols) ? {} : { protocols: [...d.protocols] }),
      })),
      signature: b64uEncode(this.signature),
    };
  }

  /**
   * Parse the JSON form; any structural problem is MalformedDeviceList.
   * @param {any} data
   * @returns {DeviceList}
   */
  static fromJSON(data) {
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      throw new MalformedDeviceList("device list: expected an object");
    }
    return new DeviceList({
      accountId: string(data.account_id, "account_id"),
      accountKey: b64(data.account_key, 32, "account_key"),
      version: integer(data.version, "version"),
      timestamp: integer(data.timestamp, "timestamp"),
      devices: list(data.devices).map((d) => {
        if (d === null || typeof d !== "object" || Array.isArray(d)) {
          throw new MalformedDeviceList("device list devices: expected objects");
        }
        return new DeviceEntry({
          deviceId: string(d.device_id, "device_id"),
          identityKey: b64(d.identity_key, 32, "identity_key"),
          addedAt: integer(d.added_at, "added_at"),
          deviceSignature:
            d.device_signature === null ? null : b64(d.device_signature, 64, "device_signature"),
          protocols: protocolsOf(d),
        });
      }),
      signature: b64(data.signature, 64, "signature"),
    });
  }

  /** @returns {Uint8Array} */
  get hash() {
    return deviceListHash(this);
  }

  /** @param {string} deviceId @returns {DeviceEntry | null} */
  entry(deviceId) {
    return this.devices.find((d) => d.deviceId === deviceId) ?? null;
  }
}

/**
 * An entry's `protocols`: absent for version 1 only (never written as [1]).
 * @param {any} entry @returns {readonly number[]}
 */
function protocolsOf(entry) {
  if (!("protocols" in entry)) return V1_ONLY;
  const value = entry.protocols;
  if (!validProtocols(value) || isV1Only(value)) throw new MalformedDeviceList(PROTOCOLS_RULE);
  return Object.freeze([...value]);
}

/** @param {unknown} value @param {string} what @returns {string} */
function string(value, what) {
  if (typeof value !== "string")
    throw new MalformedDeviceList(`device list ${what}: expected a string`);
  return value;
}

/** @param {unknown} value @param {string} what @returns {number} */
function integer(value, what) {
  if (!Number.isSafeInteger(value) || /** @type {number} */ (value) < 0) {
    throw new MalformedDeviceList(`device list ${what}: expected an integer in 0..2^53-1`);
  }
  return /** @type {number} */ (value);
}

/** @param {unknown} value @returns {any[]} */
function list(value) {
  if (!Array.isArray(value)) throw new MalformedDeviceList("device list devices: expected a list");
  return value;
}

/** @param {unknown} value @param {number} length @param {string} what @returns {Uint8Array} */
function b64(value, length, what) {
  try {
    return b64uDecode(value, { length, what: `device list ${what}` });
  } catch (error) {
    if (error instanceof MalformedMessage) throw new MalformedDeviceList(error.message);
    throw error;
  }
}

/**
 * The canonical bytes the account key signs (section 4.2).
 * @param {DeviceList} deviceList
 * @returns {Uint8Array}
 */
export function deviceListBytes(deviceList) {
  checkStructure(deviceList);
  const v2 = deviceList.devices.some((d) => !isV1Only(d.protocols));
  const out = [
    label(v2 ? "Parley v2 device list" : "Parley v1 device list"),
    encStr(deviceList.accountId),
    deviceList.accountKey,
    u64(deviceList.version),
    u64(deviceList.timestamp),
    u16(deviceList.devices.length),
  ];
  for (const d of deviceList.devices) {
    out.push(encStr(d.deviceId), d.identityKey, u64(d.addedAt));
    out.push(d.deviceSignature === null ? u8(0) : concatBytes(u8(1), d.deviceSignature));
    if (v2) out.push(protocolBytes(d.protocols));
  }
  return concatBytes(...out);
}

/** @param {readonly number[]} protocols @returns {Uint8Array} */
function protocolBytes(protocols) {
  return concatBytes(u8(protocols.length), Uint8Array.from(protocols));
}

/** @param {DeviceList} deviceList @returns {Uint8Array} */
export function deviceListHash(deviceList) {
  return primitives.hash32("Parley v1 device list hash", deviceListBytes(deviceList));
}

/**
 * @param {string} accountId
 * @param {Uint8Array} accountKey
 * @param {Uint8Array} identityKey
 * @param {readonly number[]} [protocols] version 1 only: section 4.2's bytes; else the
 *   versions join them (section 27.5)
 * @returns {Uint8Array}
 */
export function deviceSignatureBytes(accountId, accountKey, identityKey, protocols = V1_ONLY) {
  if (isV1Only(protocols)) {
    return concatBytes(label("Parley v1 device signature"), encStr(accountId), accountKey, identityKey);
  }
  return concatBytes(
    label("Parley v2 device signature"),
    encStr(accountId),
    accountKey,
    identityKey,
    protocolBytes(protocols),
  );
}

/**
 * @param {string} accountId
 * @param {Uint8Array} companionIdentityKey
 * @param {string} linkId
 * @returns {Uint8Array}
 */
export function linkSignatureBytes(accountId, companionIdentityKey, linkId) {
  return concatBytes(
    label("Parley v1 link signature"),
    encStr(accountId),
    companionIdentityKey,
    encStr(linkId),
  );
}

/**
 * The companion's device signature over (account id ‖ account key ‖ own identity key
 * [‖ the versions it speaks, section 27.5]).
 * @param {IdentityKeyPair} companion
 * @param {{accountId: string, accountKey: Uint8Array, protocols?: readonly number[]}} options
 * @returns {Uint8Array}
 */
export function signDevice(companion, { accountId, accountKey, protocols = V1_ONLY }) {
  return companion.sign(deviceSignatureBytes(accountId, accountKey, companion.public, protocols));
}

/**
 * @param {Uint8Array} signature
 * @param {{accountId: string, accountKey: Uint8Array, identityKey: Uint8Array,
 *          protocols?: readonly number[]}} options
 */
export function verifyDeviceSignature(signature, { accountId, accountKey, identityKey, protocols = V1_ONLY }) {
  primitives.ed25519Verify(
    identityKey,
    deviceSignatureBytes(accountId, accountKey, identityKey, protocols),
    signature,
    { what: "device signature" },
  );
}

/**
 * The versions a companion's device signature says it speaks, for the primary that puts it in
 * its entry (section 27.5): SPOKEN_PROTOCOLS if it covers them, else version 1 only if it is
 * the version-1 signature; InvalidSignature otherwise.
 * @param {Uint8Array} signature
 * @param {{accountId: string, accountKey: Uint8Array, identityKey: Uint8Array}} options
 * @returns {readonly number[]}
 */
export function deviceSignatureProtocols(signature, { accountId, accountKey, identityKey }) {
  for (const protocols of [SPOKEN_PROTOCOLS, V1_ONLY]) {
    try {
      verifyDeviceSignature(signature, { accountId, accountKey, identityKey, protocols });
    } catch (error) {
      if (error instanceof InvalidSignature) continue;
      throw error;
    }
    return protocols;
  }
  throw new InvalidSignature("device signature: it verifies for no version this device knows");
}

/**
 * The account's link-time signature over (account id ‖ companion key ‖ link id).
 * @param {IdentityKeyPair} account
 * @param {{accountId: string, companionIdentityKey: Uint8Array, linkId: string}} options
 * @returns {Uint8Array}
 */
export function signLink(account, { accountId, companionIdentityKey, linkId }) {
  return account.sign(linkSignatureBytes(accountId, companionIdentityKey, linkId));
}

/**
 * @param {Uint8Array} signature
 * @param {{accountId: string, accountKey: Uint8Array, companionIdentityKey: Uint8Array,
 *          linkId: string}} options
 */
export function verifyLinkSignature(
  signature,
  { accountId, accountKey, companionIdentityKey, linkId },
) {
  primitives.ed25519Verify(
    accountKey,
    linkSignatureBytes(accountId, companionIdentityKey, linkId),
    signature,
    { what: "link signature" },
  );
}

/**
 * Build and sign a list; entries are sorted by the UTF-8 bytes of their device id here.
 * @param {IdentityKeyPair} account
 * @param {{accountId: string, version: number, timestamp: number, devices: DeviceEntry[]}} options
 * @returns {DeviceList}
 */
export function signDeviceList(account, { accountId, version, timestamp, devices }) {
  const sorted = [...devices].sort((a, b) =>
    compareBytes(deviceIdBytes(a.deviceId), deviceIdBytes(b.deviceId)),
  );
  const unsigned = new DeviceList({
    accountId,
    accountKey: account.public,
    version,
    timestamp,
    devices: sorted,
  });
  unsigned.signature = account.sign(deviceListBytes(unsigned));
  return unsigned;
}

/**
 * UTF-8 of a `str` field: a string without lone surrogates, at most 65535 bytes.
 * @param {unknown} value
 * @param {string} what
 * @returns {Uint8Array}
 */
function strBytes(value, what) {
  const raw = utf8Encode(/** @type {string} */ (value), MalformedDeviceList);
  if (raw.length > 0xffff) {
    throw new MalformedDeviceList(`expected ${what} of at most 65535 bytes, got ${raw.length}`);
  }
  return raw;
}

/** @param {unknown} deviceId @returns {Uint8Array} */
function deviceIdBytes(deviceId) {
  return strBytes(deviceId, "a device id");
}

/** @param {unknown} value @param {number} length @returns {boolean} */
function isBytes(value, length) {
  return value instanceof Uint8Array && value.length === length;
}

/** @param {unknown} value @returns {boolean} */
function isUint(value) {
  return Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;
}

/**
 * Section 4.3 step 1: every field has its type and size, so list_bytes cannot fail.
 * @param {DeviceList} deviceList
 */
function checkStructure(deviceList) {
  const devices = deviceList.devices;
  if (!Array.isArray(devices) || !(devices.length >= 1 && devices.length <= MAX_DEVICES)) {
    const got = Array.isArray(devices) ? devices.length : typeof devices;
    throw new MalformedDeviceList(`expected 1 to ${MAX_DEVICES} devices, got ${got}`);
  }
  strBytes(deviceList.accountId, "an account id");
  if (!isBytes(deviceList.accountKey, 32)) {
    throw new MalformedDeviceList("expected a 32-byte account key");
  }
  for (const [value, what] of [
    [deviceList.version, "version"],
    [deviceList.timestamp, "timestamp"],
  ]) {
    if (!isUint(value)) {
      throw new MalformedDeviceList(`expected ${what} to be an integer in 0..2^53-1`);
    }
  }
  for (const d of devices) {
    if (d === null || typeof d !== "object") {
      const got = d === null ? "null" : typeof d;
      throw new MalformedDeviceList(`expected device entries, got ${got}`);
    }
    if (!isUint(d.addedAt)) {
      throw new MalformedDeviceList("expected added_at to be an integer in 0..2^53-1");
    }
    if (d.deviceSignature !== null && !isBytes(d.deviceSignature, 64)) {
      throw new MalformedDeviceList("expected a 64-byte device signature or none");
    }
    if (!validProtocols(d.protocols)) throw new MalformedDeviceList(PROTOCOLS_RULE);
  }
  const ids = devices.map((d) => deviceIdBytes(d.deviceId));
  for (let i = 1; i < ids.length; i++) {
    if (compareBytes(ids[i - 1], ids[i]) >= 0) {
      throw new MalformedDeviceList("expected device ids unique and sorted by their UTF-8 bytes");
    }
  }
  const keys = devices.map((d) => d.identityKey);
  if (
    keys.some((k) => !isBytes(k, 32)) ||
    new Set(keys.map((k) => b64uEncode(k))).size !== keys.length
  ) {
    throw new MalformedDeviceList("expected unique 32-byte identity keys");
  }
  const primaries = devices.filter((d) => bytesEqual(d.identityKey, deviceList.accountKey));
  if (primaries.length !== 1) {
    throw new MalformedDeviceList(`expected exactly one primary entry, got ${primaries.length}`);
  }
  if (primaries[0].deviceSignature !== null) {
    throw new MalformedDeviceList("expected no device signature on the primary entry");
  }
}

/**
 * @param {Map<string, Uint8Array> | Record<string, Uint8Array> | null | undefined} known
 * @param {string} deviceId
 * @returns {Uint8Array | undefined}
 */
function knownKey(known, deviceId) {
  if (!known) return undefined;
  if (known instanceof Map) return known.get(deviceId);
  return Object.hasOwn(known, deviceId) ? known[deviceId] : undefined;
}

/**
 * Apply the checks of section 4.3 in order; the first failure throws its error.
 * `knownDevices` maps every device id ever accepted for this account to its identity key.
 * @param {DeviceList} deviceList
 * @param {{expectedAccountKey?: Uint8Array | null, lastAcceptedVersion?: number | null,
 *          knownDevices?: Map<string, Uint8Array> | Record<string, Uint8Array> | null}} [options]
 */
export function verifyDeviceList(
  deviceList,
  { expectedAccountKey = null, lastAcceptedVersion = null, knownDevices = null } = {},
) {
  const listBytes = deviceListBytes(deviceList);
  if (expectedAccountKey !== null && !bytesEqual(deviceList.accountKey, expectedAccountKey)) {
    throw new AccountKeyChanged(
      `device list of account ${JSON.stringify(deviceList.accountId)}: account key differs from the expected key`,
    );
  }
  primitives.ed25519Verify(deviceList.accountKey, listBytes, deviceList.signature, {
    what: "device list signature",
  });
  for (const d of deviceList.devices) {
    if (bytesEqual(d.identityKey, deviceList.accountKey)) continue;
    if (d.deviceSignature === null) {
      throw new MissingDeviceSignature(
        `device ${JSON.stringify(d.deviceId)}: expected a device signature, got none`,
      );
    }
    primitives.ed25519Verify(
      d.identityKey,
      deviceSignatureBytes(deviceList.accountId, deviceList.accountKey, d.identityKey, d.protocols),
      d.deviceSignature,
      { what: `device signature of ${JSON.stringify(d.deviceId)}` },
    );
  }
  if (lastAcceptedVersion !== null && deviceList.version <= lastAcceptedVersion) {
    throw new StaleDeviceList(
      `device list version: expected greater than ${lastAcceptedVersion}, got ${deviceList.version}`,
    );
  }
  for (const d of deviceList.devices) {
    const known = knownKey(knownDevices, d.deviceId);
    if (known !== undefined && known !== null && !bytesEqual(known, d.identityKey)) {
      throw new DeviceKeyChanged(
        `device ${JSON.stringify(d.deviceId)}: identity key differs from the one accepted before`,
      );
    }
  }
}
