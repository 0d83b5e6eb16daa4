// Accepting a device list (docs/protocol.md sections 4.3 and 22.4); mirror of
// protocol/engine/lists.py: pure functions over a `ListRecord`, used by `handle` and by
// adapters that hold a list already.

import { DeviceList, verifyDeviceList } from "../devicelist.js";
import { bytesEqual } from "../encoding.js";
import { MalformedDeviceList } from "../exceptions.js";
import { ListRecord } from "./state.js";

/**
 * The key directory's path of an account's list (every byte outside A-Z a-z 0-9 _ . ~ -
 * percent-encoded, as Python's `quote(safe="")`).
 * @param {string} accountId
 */
export function deviceListPath(accountId) {
  const escaped = encodeURIComponent(accountId).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `/api/accounts/${escaped}/device-list`;
}

/**
 * The server's answer `{device_list, suspended}`: the list (not yet verified) and the device
 * ids it reports logged out; a suspension only shrinks the signed set (DESIGN §7).
 * @param {string} accountId @param {any} body
 * @returns {[DeviceList, Set<string>]}
 */
export function parseListing(accountId, body) {
  if (body === null || typeof body !== "object" || Array.isArray(body) || !("device_list" in body)) {
    throw new MalformedDeviceList("device list answer: expected an object with 'device_list'");
  }
  const deviceList = DeviceList.fromJSON(body.device_list);
  if (deviceList.accountId !== accountId) {
    throw new MalformedDeviceList(
      `device list: expected account ${JSON.stringify(accountId)}, got ${JSON.stringify(deviceList.accountId)}`,
    );
  }
  const suspended = body.suspended ?? [];
  if (!Array.isArray(suspended) || !suspended.every((d) => typeof d === "string")) {
    throw new MalformedDeviceList("device list answer: expected 'suspended' to be a list of ids");
  }
  return [deviceList, new Set(suspended)];
}

/**
 * Verify a served list against everything accepted before (section 4.3: account key,
 * signatures, rollback, key change of a known device id) and return the record to store.
 *
 * Without `expectedAccountKey`, the key pinned in `record` applies (none at first use).
 * The list accepted last, served again unchanged, is not a rollback: its record comes back
 * with the new `checkedAt`. Throws the ProtocolError of the first failing check.
 * @param {ListRecord | null} record
 * @param {DeviceList} deviceList
 * @param {{expectedAccountKey: Uint8Array | null, now: number, suspended?: Set<string>}} options
 * @returns {ListRecord}
 */
export function acceptList(record, deviceList, { expectedAccountKey, now, suspended = new Set() }) {
  if (record !== null && record.deviceList.accountId !== deviceList.accountId) {
    throw new MalformedDeviceList(
      `device list: expected account ${JSON.stringify(record.deviceList.accountId)}, got ${JSON.stringify(deviceList.accountId)}`,
    );
  }
  const hash = deviceList.hash; // checks the structure too (section 4.3 step 1)
  if (record !== null && bytesEqual(record.hash, hash)) return record.with({ suspended, checkedAt: now });
  verifyDeviceList(deviceList, {
    expectedAccountKey: expectedAccountKey ?? (record === null ? null : record.accountKey),
    lastAcceptedVersion: record === null ? null : record.version,
    knownDevices: record === null ? null : record.knownDevices,
  });
  const known = new Map(record === null ? [] : record.knownDevices);
  for (const d of deviceList.devices) known.set(d.deviceId, d.identityKey);
  return new ListRecord({
    deviceList,
    accountKey: deviceList.accountKey,
    knownDevices: known,
    suspended,
    checkedAt: now,
  });
}

/**
 * The `devices_changed` notice's data: the new version, device ids added and removed.
 * @param {DeviceList} before @param {DeviceList} after
 */
export function listChanges(before, after) {
  const old = new Set(before.devices.map((d) => d.deviceId));
  const fresh = new Set(after.devices.map((d) => d.deviceId));
  return {
    version: after.version,
    added: after.devices.filter((d) => !old.has(d.deviceId)).map((d) => d.deviceId),
    removed: before.devices.filter((d) => !fresh.has(d.deviceId)).map((d) => d.deviceId),
  };
}
