// The account's display name: set from any own device (POST /api/me/display-name), public
// like the username (docs/protocol.md section 19); the other own devices learn it from the
// `account_renamed` frame and keep it in their device record.

import { api } from "./api.js";
import { Change, notify } from "./events.js";
import * as store from "./store.js";

/** The longest display name the server keeps. */
export const MAX_DISPLAY_NAME = 64;

/** @param {string} displayName */
async function keep(displayName) {
  const me = await store.getSelf();
  if (!me || me.displayName === displayName) return;
  await store.putSelf({ ...me, displayName });
  notify({ kind: Change.ACCOUNT });
}

/**
 * Set the account's display name; the answer is the name as the server stored it (trimmed).
 * @param {string} displayName @returns {Promise<string>}
 */
export async function renameAccount(displayName) {
  const answer = await api("/api/me/display-name", { method: "POST", body: { display_name: displayName } });
  await keep(answer.display_name);
  return answer.display_name;
}

/** Another own device set the account's display name. @param {any} frame */
export async function accountRenamed(frame) {
  if (typeof frame.display_name !== "string" || !frame.display_name) return;
  await keep(frame.display_name.slice(0, MAX_DISPLAY_NAME));
}
