// What the person decided about a conversation or an account, following the account to its
// other devices (docs/protocol.md 22.8): a conversation pinned, archived or muted (fields of
// its record in "conversations"), and the accounts blocked (meta "blocked", which the device
// engine gets as `blocked`: their contents are dropped, nothing is sent to them). What these
// change in the list and in notifications is the pages' (chats.js, notifications.js, title.js).

import { Change, notify } from "./events.js";
import { emptyConversation } from "./records.js";
import { withStateLock } from "./statelock.js";
import * as store from "./store.js";
import { onSynced, syncMutate } from "./sync.js";

/** The flags of a conversation; each is also the name of its synced collection. */
export const FLAGS = /** @type {const} */ (["pinned", "archived", "muted"]);

/** @typedef {typeof FLAGS[number]} Flag */

/** @returns {Promise<Set<string>>} the accounts the person blocked */
export async function blockedAccounts() {
  const stored = await store.read("meta", "blocked");
  return new Set(Array.isArray(stored) ? stored : []);
}

/**
 * Store a conversation's flag. A flag can come before any message (a companion that has no
 * history yet): the conversation is made for it. The own account has no conversation.
 * @param {string} peer @param {Flag} flag @param {boolean} on
 */
async function storeFlag(peer, flag, on) {
  const me = await store.getSelf();
  if (!me || peer === me.accountId) return;
  // under the state lock: the inbox rewrites the record of a conversation a message came in
  const changed = await withStateLock(async () => {
    const conversation = await store.read("conversations", peer);
    if (Boolean(conversation?.[flag]) === on) return false;
    await store.write("conversations", { ...(conversation ?? emptyConversation(peer)), [flag]: on });
    return true;
  });
  if (changed) notify({ kind: Change.FLAGS, peer });
}

/**
 * The person pinned, archived or muted a conversation (or undid it), on every own device.
 * @param {string} peer @param {Flag} flag @param {boolean} on
 */
export async function setConversationFlag(peer, flag, on) {
  // the change is queued for the other devices first: the page may close at any moment
  const synced = syncMutate([[flag, [peer], { on }]]);
  await storeFlag(peer, flag, on);
  await synced;
}

/** @param {string} username @param {boolean} on */
async function storeBlocked(username, on) {
  const me = await store.getSelf();
  if (!me || username === me.accountId) return;
  const blocked = await blockedAccounts();
  if (blocked.has(username) === on) return;
  if (on) blocked.add(username);
  else blocked.delete(username);
  await store.write("meta", [...blocked].sort(), "blocked");
  notify({ kind: Change.FLAGS, peer: username });
}

/**
 * Block an account (or unblock it) on every own device: what it sends is dropped unseen and
 * unanswered, and nothing is sent to it (the device engine's rule, 22.6).
 * @param {string} username @param {boolean} on
 */
export async function setBlocked(username, on) {
  const synced = syncMutate([["blocked", [username], { on }]]);
  await storeBlocked(username, on);
  await synced;
}

for (const flag of FLAGS) {
  onSynced(flag, async ({ index: [peer], value }) => {
    if (typeof value?.on === "boolean" || value === null) await storeFlag(peer, flag, value?.on ?? false);
  });
}
onSynced("blocked", async ({ index: [username], value }) => {
  if (typeof value?.on === "boolean" || value === null) await storeBlocked(username, value?.on ?? false);
});
