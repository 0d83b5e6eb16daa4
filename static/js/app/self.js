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

/**
 * The person's settings of this device, with their defaults: read receipts on; message text
 * in system notifications off (a locked screen shows who wrote, not what).
 * @typedef {{readReceipts: boolean, notificationPreviews: boolean}} Settings
 */
export const DEFAULT_SETTINGS = Object.freeze({ readReceipts: true, notificationPreviews: false });

/** @returns {Promise<Settings>} */
export async function settings() {
  return { ...DEFAULT_SETTINGS, ...((await store.read("meta", "settings")) ?? {}) };
}

/** Change some settings, keeping the others. @param {Partial<Settings>} changed */
export async function saveSettings(changed) {
  await store.write("meta", { ...(await settings()), ...changed }, "settings");
  notify({ kind: Change.SETTINGS });
}
