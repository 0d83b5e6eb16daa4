// Client fan-out: one content encrypted for many devices (docs/protocol.md section 9).

import { compareBytes, utf8Encode } from "./encoding.js";

/** @typedef {import("./ratchet.js").Session} Session */
/** @typedef {import("./rng.js").Rng} Rng */

/**
 * Encrypt `content` once per session, in ascending order of the device ids' UTF-8 bytes
 * (so rng use is reproducible); mutates the sessions.
 * @param {Uint8Array} content
 * @param {Map<string, Session> | Record<string, Session>} sessions
 * @param {Rng} rng
 * @returns {Map<string, Uint8Array>} device id → message bytes, in that order
 */
export function encryptForDevices(content, sessions, rng) {
  const entries = sessions instanceof Map ? [...sessions] : Object.entries(sessions);
  const keyed = entries.map(([deviceId, session]) => ({
    deviceId,
    session,
    sortKey: utf8Encode(deviceId),
  }));
  keyed.sort((a, b) => compareBytes(a.sortKey, b.sortKey));
  const out = new Map();
  for (const { deviceId, session } of keyed) out.set(deviceId, session.encrypt(content, rng));
  return out;
}
