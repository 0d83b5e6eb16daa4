// Names a person reads: a contact's nickname (set on any own device; it follows the account
// in the synced state, "contacts") or else the display name the contact chose at sign-up (public on the server, read
// from GET /api/accounts/<username>/profile, docs/protocol.md section 19), else the username.
// Every page and notice asks here, so a name that arrives later from synced state shows
// everywhere once it is written to the contact record.

import { ApiError, api } from "./api.js";
import { Change, notify } from "./events.js";
import { syncedContact } from "./records.js";
import * as store from "./store.js";
import { syncMutate } from "./sync.js";
import { nameOf } from "./wording.js";

/** The longest nickname or display name (the server's limit for display names). */
export const MAX_NAME = 64;

export { nameOf };

/**
 * The name to show for an account: the own display name, a contact's nickname or display
 * name, or the username of someone who is not a contact.
 * @param {string} username @returns {Promise<string>}
 */
export async function displayName(username) {
  const me = await store.getSelf();
  if (me && username === me.accountId) return me.displayName || username;
  return nameOf(username, await store.read("contacts", username));
}

/** Every contact's name at once, for lists. @returns {Promise<Map<string, string>>} */
export async function displayNames() {
  const contacts = await store.readAll("contacts");
  return new Map(contacts.map((c) => [c.username, nameOf(c.username, c)]));
}

/**
 * The display name an account chose, as the server says; "" when it cannot be had now.
 * @param {string} username @returns {Promise<string>}
 */
export async function fetchDisplayName(username) {
  try {
    const profile = await api(`/api/accounts/${encodeURIComponent(username)}/profile`);
    return typeof profile?.display_name === "string" ? profile.display_name.slice(0, MAX_NAME) : "";
  } catch (error) {
    if (error instanceof ApiError) return "";
    throw error;
  }
}

/** A contact's display name is read from the server again after this long (it may change). */
export const DISPLAY_NAME_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/**
 * Keep a contact's display name (from the server now, or `value` when given), with when it
 * was read; says so to every tab when it changed.
 * @param {string} username @param {string} [value]
 */
export async function refreshDisplayName(username, value) {
  const displayName = value ?? (await fetchDisplayName(username));
  if (!displayName) return;
  const contact = await store.read("contacts", username);
  if (!contact) return;
  await store.write("contacts", { ...contact, displayName, displayNameAt: Date.now() });
  if (contact.displayName !== displayName) notify({ kind: Change.CONTACTS, peer: username });
}

/**
 * Ask the server for the display name of each contact that has none yet (stored before
 * display names were, or imported with the message history) or read more than a day ago
 * (the contact may have changed it), once per `asked` set.
 * @param {Set<string>} asked usernames already asked on this page
 */
export async function fillMissingDisplayNames(asked) {
  const stale = Date.now() - DISPLAY_NAME_MAX_AGE_MS;
  for (const contact of await store.readAll("contacts")) {
    if (asked.has(contact.username)) continue;
    if (contact.displayName && (contact.displayNameAt ?? 0) > stale) continue;
    asked.add(contact.username);
    await refreshDisplayName(contact.username);
  }
}

/**
 * The person's own name for a contact ("" removes it), kept in the contact record.
 * @param {string} username @param {string} nickname
 */
export async function setNickname(username, nickname) {
  const value = nickname.trim().slice(0, MAX_NAME);
  const contact = await store.read("contacts", username);
  if (!contact || (contact.nickname ?? "") === value) return;
  const changed = { ...contact, nickname: value };
  await store.write("contacts", changed);
  notify({ kind: Change.CONTACTS, peer: username });
  await syncMutate([syncedContact(changed)]); // the nickname follows the account
}

/**
 * This device's name as the server has it now (any own device may rename it), else the
 * one it was linked with.
 * @returns {Promise<string>}
 */
export async function ownDeviceName() {
  const me = await store.getSelf();
  try {
    const answer = await api("/api/me");
    if (typeof answer?.device?.name === "string") return answer.device.name;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
  return me?.name ?? "";
}
