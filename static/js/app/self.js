// This browser's own device record and its settings, and the refusal a person must act on.

import { Change, notify } from "./events.js";
import * as store from "./store.js";

/** Something the person must act on before this can be sent. */
export class SendRefused extends Error {
  /** @param {string} message @param {string} code */
  constructor(message, code) {
    super(message);
    this.name = "SendRefused";
    this.code = code;
  }
}

/** @returns {Promise<import("./store.js").SelfRecord>} */
export async function self() {
  const record = await store.getSelf();
  if (!record) throw new SendRefused("This browser holds no Parley device.", "no_device");
  return record;
}

/** @returns {Promise<{readReceipts: boolean}>} */
export async function settings() {
  return { readReceipts: true, ...((await store.read("meta", "settings")) ?? {}) };
}

/** @param {{readReceipts: boolean}} value */
export async function saveSettings(value) {
  await store.write("meta", value, "settings");
  notify({ kind: Change.SETTINGS });
}
