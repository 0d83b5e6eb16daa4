// Safety numbers for a pair of accounts (docs/protocol.md section 11).

import { concatBytes, encStr } from "./encoding.js";
import { hash32 } from "./primitives.js";

export const QR_PREFIX = "PARLEY-SN1:";

/**
 * 30 digits for one account.
 * @param {string} accountId
 * @param {Uint8Array} accountKey
 * @returns {string}
 */
export function fingerprint(accountId, accountKey) {
  const digest = hash32("Parley v1 safety number", concatBytes(encStr(accountId), accountKey));
  let digits = "";
  for (let i = 0; i < 30; i += 5) {
    let chunk = 0;
    for (let j = i; j < i + 5; j++) chunk = chunk * 256 + digest[j];
    digits += String(chunk % 100000).padStart(5, "0");
  }
  return digits;
}

/**
 * 60 digits, identical for both parties: the two fingerprints in string order.
 * @param {string} accountIdA
 * @param {Uint8Array} accountKeyA
 * @param {string} accountIdB
 * @param {Uint8Array} accountKeyB
 * @returns {string}
 */
export function safetyNumber(accountIdA, accountKeyA, accountIdB, accountKeyB) {
  const a = fingerprint(accountIdA, accountKeyA);
  const b = fingerprint(accountIdB, accountKeyB);
  return a < b ? a + b : b + a;
}

/** @param {string} number @returns {string} groups of 5 digits separated by spaces */
export function formatSafetyNumber(number) {
  const groups = [];
  for (let i = 0; i < number.length; i += 5) groups.push(number.slice(i, i + 5));
  return groups.join(" ");
}

/** @param {string} number @returns {string} the text the QR code encodes */
export function safetyQrPayload(number) {
  return QR_PREFIX + number;
}
