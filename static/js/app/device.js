// This browser as a device: key generation, prekey uploads, and the account-signed device
// list (checked, accepted and re-signed here; protocol in static/js/protocol). The device-key
// sign-in is api.js's, which this module must not import (api.js imports it).

import {
  DeviceEntry,
  DeviceKeys,
  DeviceList,
  encoding,
  engine,
  generateDeviceKeys,
  generateOneTimePrekeys,
  kemPrekeyJson,
  planKemRefill,
  ready,
  signDeviceList,
  SPOKEN_PROTOCOLS,
  systemRng,
} from "../protocol/index.js";

import { withStateLock } from "./statelock.js";
import { getAcceptedList, getSelf, putAcceptedList, putSelf } from "./store.js";

const { b64uDecode, b64uEncode } = encoding;

export const ONE_TIME_PREKEYS = 50;
const LOW_WATER = 20;
export const KEM_PREKEYS = 25; // one-time KEM prekeys on the server (docs/protocol.md 27.6)

/** A random 16-byte device id (22 base64url characters). */
export function newDeviceId() {
  return b64uEncode(crypto.getRandomValues(new Uint8Array(16)));
}

/** "Chrome on macOS" and the like, from what the browser says about itself. */
export function describePlatform() {
  const data = /** @type {any} */ (navigator).userAgentData;
  const ua = navigator.userAgent;
  let os = data?.platform || "";
  if (!os) {
    if (/iPhone|iPad/.test(ua)) os = "iOS";
    else if (/Android/.test(ua)) os = "Android";
    else if (/Mac OS X/.test(ua)) os = "macOS";
    else if (/Windows/.test(ua)) os = "Windows";
    else if (/Linux/.test(ua)) os = "Linux";
    else os = "an unknown system";
  }
  let browser = "Browser";
  const brands = (data?.brands || []).map((b) => b.brand);
  const known = ["Microsoft Edge", "Google Chrome", "Opera", "Brave", "Chromium"];
  const brand = known.find((name) => brands.includes(name));
  if (brand) browser = brand.replace("Google ", "");
  else if (/Firefox\//.test(ua)) browser = "Firefox";
  else if (/Edg\//.test(ua)) browser = "Edge";
  else if (/Chrome\//.test(ua)) browser = "Chrome";
  else if (/Safari\//.test(ua)) browser = "Safari";
  return `${browser} on ${os}`;
}

/**
 * Fresh device keys with one signed prekey, a pool of one-time prekeys and a last-resort KEM
 * prekey (id 1: its bundle has a KEM prekey from the start, docs/protocol.md 27.6).
 */
export async function createDeviceKeys() {
  await ready();
  const ids = Array.from({ length: ONE_TIME_PREKEYS }, (_, i) => i + 1);
  const kemIds = Array.from({ length: KEM_PREKEYS }, (_, i) => i + 2);
  const keys = generateDeviceKeys(systemRng, {
    signedPrekeyId: 1,
    oneTimePrekeyIds: ids,
    lastResortKemPrekeyId: 1,
    kemPrekeyIds: kemIds,
  });
  return { deviceId: newDeviceId(), keys, nextPrekeyId: ONE_TIME_PREKEYS + 1, nextKemPrekeyId: KEM_PREKEYS + 2 };
}

/**
 * A new device's prekeys as sign-up, re-registration and linking take them: the signed one,
 * the one-time ones and the last-resort KEM prekey.
 * @param {DeviceKeys} keys
 */
export function prekeysUpload(keys) {
  const last = keys.lastResortKemPrekey;
  return {
    signed_prekey: signedPrekeyUpload(keys),
    one_time_prekeys: oneTimePrekeysUpload(keys.oneTimePrekeys),
    ...(last ? { last_resort_kem_prekey: kemPrekeyJson(last), kem_prekeys: keys.kemPrekeys.map(kemPrekeyJson) } : {}),
  };
}

/** @param {DeviceKeys} keys the public half of the signed prekey, as the API takes it */
export function signedPrekeyUpload(keys) {
  return {
    id: keys.signedPrekey.id,
    public_key: b64uEncode(keys.signedPrekey.key.public),
    signature: b64uEncode(keys.signedPrekey.signature),
  };
}

/** @param {import("../protocol/index.js").OneTimePrekey[]} prekeys */
export function oneTimePrekeysUpload(prekeys) {
  return prekeys.map((k) => ({ id: k.id, public_key: b64uEncode(k.key.public) }));
}

/** @param {{keys: any}} self @returns {Promise<DeviceKeys>} */
export async function loadKeys(self) {
  await ready();
  return DeviceKeys.fromJSON(self.keys);
}

/**
 * topUpPrekeys under the device's state lock, from the device record as stored then: two tabs
 * (or a page and the one it navigated to) topping up at once would number their new keys
 * alike, and the record one of them stores would not hold the private halves of what the
 * server took from the other.
 * @param {(path: string, options?: any) => Promise<any>} call the signed-in API
 * @returns {Promise<import("./store.js").SelfRecord | undefined>}
 */
export function refillPrekeys(call) {
  return withStateLock(async () => {
    const me = await getSelf();
    return me ? topUpPrekeys(me, call) : undefined;
  });
}

/**
 * Top the server's pool of one-time prekeys up when it runs low, and its KEM prekeys as the
 * protocol plans it (a last-resort one, and the one-time pool back up to KEM_PREKEYS,
 * docs/protocol.md 27.1). The private halves are kept before the server can hand out the
 * public ones.
 * Call it through refillPrekeys, under the lock.
 * @param {import("./store.js").SelfRecord} self
 * @param {(path: string, options?: any) => Promise<any>} call the signed-in API
 * @returns {Promise<import("./store.js").SelfRecord>}
 */
async function topUpPrekeys(self, call) {
  const counts = await call("/api/prekeys");
  let updated = self;
  if (counts.one_time_prekeys < LOW_WATER) {
    const keys = await loadKeys(updated);
    const ids = Array.from({ length: ONE_TIME_PREKEYS }, (_, i) => updated.nextPrekeyId + i);
    const fresh = generateOneTimePrekeys(ids, systemRng);
    keys.oneTimePrekeys.push(...fresh);
    updated = { ...updated, keys: keys.toJSON(), nextPrekeyId: updated.nextPrekeyId + ids.length };
    await putSelf(updated);
    await call("/api/prekeys", {
      method: "POST",
      body: { one_time_prekeys: oneTimePrekeysUpload(fresh) },
    });
  }
  if (typeof counts.kem_prekeys !== "number") return updated; // a server from before them
  const plan = planKemRefill(await loadKeys(updated), {
    stored: counts.kem_prekeys,
    lastResortStored: counts.last_resort_kem_prekey ?? null,
    nextId: updated.nextKemPrekeyId ?? 1,
    target: KEM_PREKEYS,
    rng: systemRng,
  });
  if (plan === null) return updated;
  updated = { ...updated, keys: plan.keys.toJSON(), nextKemPrekeyId: plan.nextId };
  await putSelf(updated);
  for (const body of plan.uploads) await call("/api/prekeys", { method: "POST", body });
  return updated;
}

/**
 * The first list of a new account (version 1), or of a re-registered one (the next version):
 * only the primary.
 * @param {{accountId: string, deviceId: string, keys: DeviceKeys, version?: number}} input
 */
export function firstDeviceList({ accountId, deviceId, keys, version = 1 }) {
  const now = Date.now();
  return signDeviceList(keys.identity, {
    accountId,
    version,
    timestamp: now,
    devices: [
      new DeviceEntry({
        deviceId,
        identityKey: keys.identity.public,
        addedAt: now,
        deviceSignature: null,
        protocols: SPOKEN_PROTOCOLS,
      }),
    ],
  });
}

/**
 * The next list, signed by the account key: the current devices minus `remove`, plus `add`.
 * @param {DeviceKeys} keys the primary's keys
 * @param {DeviceList} current
 * @param {{remove?: string[], add?: DeviceEntry | null}} change
 */
export function nextDeviceList(keys, current, { remove = [], add = null }) {
  // the primary's own entry says what this build speaks (docs/protocol.md 27.5)
  const devices = current.devices
    .filter((d) => !remove.includes(d.deviceId))
    .map((d) =>
      d.deviceSignature === null && !d.speaksV2 ? new DeviceEntry({ ...d, protocols: SPOKEN_PROTOCOLS }) : d,
    );
  if (add) devices.push(add);
  return signDeviceList(keys.identity, {
    accountId: current.accountId,
    version: current.version + 1,
    timestamp: Math.max(Date.now(), current.timestamp + 1),
    devices,
  });
}

export class ListRefused extends Error {
  /** @param {string} message @param {string} code */
  constructor(message, code) {
    super(message);
    this.name = "ListRefused";
    this.code = code;
  }
}

/**
 * The ListRefused for a protocol error the engine raised or named.
 * @param {string} errorName @param {string} message @param {string} code
 */
export function listRefused(errorName, message, code) {
  return errorName === "MalformedDeviceList"
    ? new ListRefused(`The device list is malformed: ${message}`, code)
    : new ListRefused(`The device list was refused: ${message}`, code);
}

/**
 * The engine's record of a stored list (IndexedDB "lists"), or null.
 * @param {import("./store.js").AcceptedList | undefined} stored
 * @param {{pinnedKey?: Uint8Array | null, suspended?: Set<string>}} [options]
 */
export function recordOf(stored, { pinnedKey = null, suspended = new Set() } = {}) {
  if (!stored?.list) return null;
  return new engine.ListRecord({
    deviceList: DeviceList.fromJSON(stored.list),
    accountKey: pinnedKey ?? b64uDecode(stored.accountKey),
    knownDevices: new Map(
      Object.entries(stored.knownDevices ?? {}).map(([id, key]) => [id, b64uDecode(key)]),
    ),
    suspended,
    checkedAt: stored.checkedAt ?? 0,
  });
}

/** @param {import("../protocol/engine/state.js").ListRecord} record @returns {import("./store.js").AcceptedList} */
export function storedOf(record) {
  return {
    version: record.version,
    hash: b64uEncode(record.hash),
    accountKey: b64uEncode(record.accountKey),
    knownDevices: Object.fromEntries(
      [...record.knownDevices].map(([id, key]) => [id, b64uEncode(key)]),
    ),
    list: record.deviceList.toJSON(),
    checkedAt: record.checkedAt,
  };
}

/**
 * Check a list against what this device accepted before (the engine's acceptList, section
 * 4.3) and remember it. The list accepted last, served again, is not a rollback.
 * @param {any} json the list's JSON
 * @param {{accountId: string, accountKey?: Uint8Array}} expected
 * @returns {Promise<DeviceList>}
 */
export async function acceptDeviceList(json, { accountId, accountKey }) {
  await ready();
  let list;
  try {
    [list] = engine.parseListing(accountId, { device_list: json });
  } catch (error) {
    throw listRefused("MalformedDeviceList", error.message, error.code ?? "malformed");
  }
  let record;
  try {
    record = engine.acceptList(recordOf(await getAcceptedList(accountId)), list, {
      expectedAccountKey: accountKey ?? null,
      now: Date.now(),
    });
  } catch (error) {
    throw listRefused(error.name, error.message, error.code ?? "refused");
  }
  await putAcceptedList(accountId, storedOf(record));
  return list;
}

export { b64uDecode, b64uEncode, DeviceEntry, DeviceList };
