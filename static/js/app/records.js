// The records of IndexedDB "parley" that pages show, built in one place, and the reads pages
// make of them.
//
//   contacts       {username, accountKey: b64u pinned at first use, addedAt,
//                   keyChanged: null | {pendingKey, at}, displayName: the contact's own
//                   (public, from the server), displayNameAt: when it was read (read again
//                   after a day), nickname: the person's own for them (names.js)}
//   conversations  {peer, unread, lastText, lastTimestamp, lastOutgoing, readUpTo?: the
//                   account's read position as this device last knew it (docs/protocol.md 22.8),
//                   pinned?, archived?, muted? (flags.js, synced)}
//   messages       {key: "<author>:<message id>" | "notice:<id>", id, conversation, author,
//                   authorDevice, outgoing, kind: "text" | "unsupported" | "notice", text,
//                   timestamp, contentType (unsupported),
//                   receivedAt, status: sending | sent | delivered | read | received | failed,
//                   readSent, reason?, tone?}
//
// The device's other stores: outbox (outbox.js), seen and baseKeys (inbox.js), sessions
// (sessions.js), lists (lists.js), retries (retries.js), resendCache (resendcache.js), meta
// ("settings": self.js, "history": history.js, "blocked": the usernames the person blocked,
// flags.js).

import { encoding, systemRng } from "../protocol/index.js";
import * as store from "./store.js";

/** How far an outgoing message got; a receipt only ever moves it forward. */
export const STATUS_RANK = { failed: 0, sending: 1, sent: 2, delivered: 3, read: 4 };

/** @param {string} author @param {string} id b64u message id */
export const messageKey = (author, id) => `${author}:${id}`;

/**
 * A text message, sent or received.
 * @param {{author: string, id: string, conversation: string, authorDevice: string | null,
 *   outgoing: boolean, text: string, timestamp: number, status: string, readSent: boolean,
 *   receivedAt?: number}} fields
 */
export function textRecord({ author, id, conversation, authorDevice, outgoing, text, timestamp, status, readSent, receivedAt = Date.now() }) {
  return {
    key: messageKey(author, id),
    id,
    conversation,
    author,
    authorDevice,
    outgoing,
    kind: "text",
    text,
    timestamp,
    receivedAt,
    status,
    readSent,
  };
}

/**
 * A message of a content type this version does not know (a newer Parley's): kept and shown,
 * never dropped (docs/protocol.md section 10).
 * @param {{author: string, id: string, conversation: string, authorDevice: string | null,
 *   timestamp: number, contentType: number, receivedAt?: number}} fields
 */
export function unsupportedRecord({ author, id, conversation, authorDevice, timestamp, contentType, receivedAt = Date.now() }) {
  return {
    key: messageKey(author, id),
    id,
    conversation,
    author,
    authorDevice,
    outgoing: false,
    kind: "unsupported",
    contentType,
    text: "A message this version of Parley cannot show. Update Parley to see it.",
    timestamp,
    receivedAt,
    status: "received",
    readSent: true,
  };
}

/**
 * A file (an attachment pointer, docs/protocol.md 26.2), kept with its pointer; files.js
 * fetches it when the person asks.
 * @param {{author: string, id: string, conversation: string, authorDevice: string | null,
 *   outgoing: boolean, pointer: Record<string, any>, timestamp: number, status: string,
 *   readSent: boolean, receivedAt?: number}} fields
 */
export function attachmentRecord({ author, id, conversation, authorDevice, outgoing, pointer, timestamp, status, readSent, receivedAt = Date.now() }) {
  return {
    ...textRecord({ author, id, conversation, authorDevice, outgoing, text: "", timestamp, status, readSent, receivedAt }),
    kind: "attachment",
    attachment: pointer,
    text: `File: ${pointer.name} (${fileSize(pointer.size)})`,
  };
}

/** A size in bytes as people read it. @param {number} bytes */
export function fileSize(bytes) {
  if (bytes < 1000) return `${bytes} bytes`;
  const [value, unit] = bytes < 1e6 ? [bytes / 1e3, "KB"] : bytes < 1e9 ? [bytes / 1e6, "MB"] : [bytes / 1e9, "GB"];
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`;
}

/**
 * A line in a conversation that is not a message ("security code changed", "new device").
 * @param {{id: string, conversation: string, text: string, tone: "info" | "warn" | "error", at: number}} fields
 */
export function noticeRecord({ id, conversation, text, tone, at }) {
  return {
    key: `notice:${id}`,
    id,
    conversation,
    author: null,
    authorDevice: null,
    outgoing: false,
    kind: "notice",
    tone,
    text,
    timestamp: at,
    receivedAt: at,
    status: "notice",
    readSent: true,
  };
}

/**
 * @param {string} username @param {string} accountKey b64u, pinned at first use
 * @param {string} [displayName] the name the contact chose ("" when it could not be had)
 */
export function contactRecord(username, accountKey, displayName = "") {
  const now = Date.now();
  return { username, accountKey, addedAt: now, keyChanged: null, displayName, displayNameAt: now, nickname: "" };
}

/**
 * A contact as the synced state holds it ("contacts", [username]): the key this device
 * verified, when it was added, the person's nickname for it.
 * @param {{username: string, accountKey: string, addedAt: number, nickname?: string}} contact
 * @returns {[string, string[], Record<string, any>]}
 */
export function syncedContact(contact) {
  return [
    "contacts",
    [contact.username],
    { account_key: contact.accountKey, added_at: contact.addedAt, nickname: contact.nickname ?? "" },
  ];
}

/** @param {string} peer */
export function emptyConversation(peer) {
  return { peer, unread: 0, lastText: "", lastTimestamp: 0, lastOutgoing: false };
}

/**
 * The conversation after the person wrote `message` in it: read, with it as its last line,
 * everything else (its flags, its read position) as it was.
 * @param {any} conversation @param {any} message
 */
export function sentIn(conversation, message) {
  return { ...conversation, unread: 0, lastText: message.text, lastTimestamp: message.timestamp, lastOutgoing: true };
}

/**
 * The conversation with `message` in it: its last line when it is the newest.
 * @param {any} conversation @param {any} message @param {number} unread
 */
export function withMessage(conversation, message, unread) {
  const newer = message.timestamp >= (conversation.lastTimestamp ?? 0);
  return {
    ...conversation,
    unread,
    lastText: newer ? message.text : conversation.lastText,
    lastTimestamp: newer ? message.timestamp : conversation.lastTimestamp,
    lastOutgoing: newer ? message.outgoing : conversation.lastOutgoing,
  };
}

/** @returns {Promise<any[]>} conversations, most recent first */
export async function conversations() {
  const all = await store.readAll("conversations");
  return all.sort((a, b) => b.lastTimestamp - a.lastTimestamp || a.peer.localeCompare(b.peer));
}

/** @param {string} peer @returns {Promise<any>} the conversation's record, if any */
export function conversation(peer) {
  return store.read("conversations", peer);
}

/** @param {string} peer @returns {Promise<any[]>} in time order */
export async function messages(peer) {
  const range = IDBKeyRange.bound([peer, -Infinity], [peer, Infinity]);
  const all = await store.readIndex("messages", "byConversation", range);
  return all.sort((a, b) => a.timestamp - b.timestamp || a.receivedAt - b.receivedAt);
}

/**
 * An item of the outbox (outbox.js sends it).
 * @param {string} recipient @param {number} contentType @param {any} body
 * @param {{messageId?: string, timestamp?: number, messageKey?: string, historyFor?: string}} [extra]
 */
export function outboxItem(recipient, contentType, body, extra = {}) {
  return {
    envelopeId: encoding.b64uEncode(systemRng(16)),
    recipient,
    contentType,
    body,
    messageId: extra.messageId ?? encoding.b64uEncode(systemRng(16)),
    timestamp: extra.timestamp ?? Date.now(),
    attempts: 0,
    messageKey: extra.messageKey ?? null,
    historyFor: extra.historyFor ?? null,
  };
}
