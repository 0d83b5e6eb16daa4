// Contacts: adding one (its signed list verified, its account key pinned at first use), a
// changed security code, and the person confirming the new one.

import { encoding, ready } from "../protocol/index.js";
import { ApiError } from "./api.js";
import { Change, notify } from "./events.js";
import { refreshList } from "./lists.js";
import { displayName, fetchDisplayName } from "./names.js";
import { addNotice } from "./notices.js";
import { contactRecord, emptyConversation, syncedContact } from "./records.js";
import { SendRefused, self } from "./self.js";
import * as store from "./store.js";
import { onSynced, syncMutate } from "./sync.js";

/**
 * Add a contact: fetch and verify their signed list and pin the account key at first use.
 * @param {string} username
 */
export async function addContact(username) {
  await ready();
  const me = await self();
  const name = username.trim();
  if (!name) throw new SendRefused("Enter a username.", "invalid_input");
  if (name === me.accountId) {
    throw new SendRefused(
      "That is your own account: your other devices get what you send automatically.",
      "own_account",
    );
  }
  const existing = await store.read("contacts", name);
  if (existing) return existing;
  let list;
  try {
    list = await refreshList(name);
  } catch (error) {
    if (error instanceof ApiError && error.code === "account_not_found") {
      throw new SendRefused(`There is no Parley account named “${name}”.`, "account_not_found");
    }
    throw error;
  }
  const contact = contactRecord(name, encoding.b64uEncode(list.accountKey), await fetchDisplayName(name));
  await store.transact(["contacts", "conversations"], (s) => {
    s.contacts.put(contact);
    const request = s.conversations.get(name);
    request.onsuccess = () => {
      if (!request.result) s.conversations.put(emptyConversation(name));
    };
  });
  notify({ kind: Change.CONTACTS, peer: name });
  // the contact follows the account to its other devices (docs/protocol.md 22.8)
  await syncMutate([syncedContact(contact)]);
  return contact;
}

/**
 * Remove a contact on every own device (a tombstone in the synced state); the conversation
 * and its messages stay.
 * @param {string} username
 */
export async function removeContact(username) {
  await store.transact(["contacts"], (s) => s.contacts.delete(username));
  notify({ kind: Change.CONTACTS, peer: username });
  await syncMutate([["contacts", [username], null]]);
}

/**
 * A contact another own device added or removed. An added one is pinned to the account key
 * that device verified; a contact known here already keeps its record.
 * @param {{index: string[], value: Record<string, any> | null}} change
 */
async function applySyncedContact({ index: [username], value }) {
  const me = await store.getSelf();
  if (!me || username === me.accountId) return;
  const existing = await store.read("contacts", username);
  if (value === null) {
    if (!existing) return;
    await store.transact(["contacts"], (s) => s.contacts.delete(username));
  } else {
    const nickname = typeof value.nickname === "string" ? value.nickname : "";
    if (existing) {
      // the key stays the one verified here; the nickname follows the account
      if ((existing.nickname ?? "") === nickname) return;
      await store.write("contacts", { ...existing, nickname });
      notify({ kind: Change.CONTACTS, peer: username });
      return;
    }
    if (typeof value.account_key !== "string") return;
    const contact = { ...contactRecord(username, value.account_key), nickname };
    await store.transact(["contacts", "conversations"], (s) => {
      s.contacts.put(contact);
      const request = s.conversations.get(username);
      request.onsuccess = () => {
        if (!request.result) s.conversations.put(emptyConversation(username));
      };
    });
  }
  notify({ kind: Change.CONTACTS, peer: username });
}
onSynced("contacts", applySyncedContact);

/** @param {string} username */
export function contact(username) {
  return store.read("contacts", username);
}

/**
 * The served list of a contact is signed by another account key: hold everything until the
 * person confirms the new code (one notice per new key).
 * @param {string} username @param {string} pendingKey b64u, the served list's account key
 */
export async function securityCodeChanged(username, pendingKey) {
  const contact = await store.read("contacts", username);
  if (!contact) return;
  if (contact.keyChanged?.pendingKey === pendingKey) return;
  await store.write("contacts", { ...contact, keyChanged: { pendingKey, at: Date.now() } });
  const name = await displayName(username);
  await addNotice(
    username,
    `${name}'s security code changed. They may have set up Parley again on a new phone, or someone may be intercepting. Nothing more is sent until you confirm the new code.`,
    "warn",
  );
  notify({ kind: Change.CONTACTS, peer: username });
}

/**
 * The person checked the new safety number: pin the new account key and verify the list
 * under it (version rollback and device-key checks still apply).
 * @param {string} username
 */
export async function confirmSecurityCode(username) {
  const contact = await store.read("contacts", username);
  if (!contact?.keyChanged?.pendingKey) return;
  const accepted = await store.getAcceptedList(username);
  if (accepted) {
    await store.putAcceptedList(username, { ...accepted, accountKey: contact.keyChanged.pendingKey });
  }
  await store.write("contacts", {
    ...contact,
    accountKey: contact.keyChanged.pendingKey,
    keyChanged: null,
  });
  await refreshList(username);
  await addNotice(username, `You accepted ${await displayName(username)}'s new security code.`, "info");
  notify({ kind: Change.CONTACTS, peer: username });
}
