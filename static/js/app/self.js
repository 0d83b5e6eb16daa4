// This browser's own device record and its settings, and the refusal a person must act on.

import { Change, notify } from "./events.js";
import * as store from "./store.js";
import { onSynced, syncMutate } from "./sync.js";

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
 * in system notifications off (a locked screen shows who wrote, not what); pictures fetched as
 * soon as they are shown in a conversation (files.js), on.
 * @typedef {{readReceipts: boolean, notificationPreviews: boolean, downloadPictures: boolean}} Settings
 */
export const DEFAULT_SETTINGS = Object.freeze({ readReceipts: true, notificationPreviews: false, downloadPictures: true });

/** @returns {Promise<Settings>} */
export async function settings() {
  return { ...DEFAULT_SETTINGS, ...((await store.read("meta", "settings")) ?? {}) };
}

/** The settings that follow the account: index in the synced "settings" collection → field. */
/** @type {Map<string, keyof Settings>} */
const SYNCED_SETTINGS = new Map([
  ["read_receipts", "readReceipts"],
  ["notification_previews", "notificationPreviews"],
  ["download_pictures", "downloadPictures"],
]);

/** Change some settings, keeping the others. @param {Partial<Settings>} changed */
export async function saveSettings(changed) {
  const before = await settings();
  const value = { ...before, ...changed };
  await store.write("meta", value, "settings");
  notify({ kind: Change.SETTINGS });
  // the settings follow the account to its other devices (docs/protocol.md 22.8)
  /** @type {[string, string[], Record<string, any>][]} */
  const mutations = [];
  for (const [name, field] of SYNCED_SETTINGS) {
    if (before[field] !== value[field]) mutations.push(["settings", [name], { on: Boolean(value[field]) }]);
  }
  if (mutations.length) await syncMutate(mutations);
}

/** A setting another own device changed. @param {{index: string[], value: Record<string, any> | null}} change */
async function applySyncedSetting({ index: [name], value }) {
  const field = SYNCED_SETTINGS.get(name);
  if (!field || typeof value?.on !== "boolean") return;
  const current = await settings();
  if (current[field] === value.on) return;
  await store.write("meta", { ...current, [field]: value.on }, "settings");
  notify({ kind: Change.SETTINGS });
}
onSynced("settings", applySyncedSetting);
