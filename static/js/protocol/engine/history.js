// What a history bundle holds (docs/protocol.md section 22.7); mirror of
// protocol/engine/history.py: the approving device's choice of what to send a newly linked
// device, and the new device's choice of what to import. The sealing, upload and download
// are the adapter's (history.js seals; section 12).

import { validatePointer } from "../attachments.js";
import { b64uDecode } from "../encoding.js";
import { MalformedMessage } from "../exceptions.js";

export const HISTORY_FORMAT = "parley-history-1";
export const HISTORY_DAYS = 90;
const DAY_MS = 86_400_000;
const OUTGOING_STATUSES = new Set(["sent", "delivered", "read"]);

/** @param {unknown} value @returns {value is number} */
const isUint = (value) => Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;

/** A text's status on the new device. @param {boolean} outgoing @param {unknown} status */
function statusOf(outgoing, status) {
  if (!outgoing) return "received";
  // a send still in flight or failed is "sent" there: its own outbox holds nothing to retry
  return typeof status === "string" && OUTGOING_STATUSES.has(status) ? status : "sent";
}

/** A file's pointer (section 26.2) as a bundle may carry it. @param {unknown} value */
function isPointer(value) {
  try {
    validatePointer(value);
    return true;
  } catch (error) {
    if (error instanceof MalformedMessage) return false;
    throw error;
  }
}

/**
 * What a bundle keeps of a stored message: its text, or its file's pointer; null for anything
 * else (an unsupported message, a file still uploading, without a pointer).
 * @param {any} m @returns {{text: string} | {attachment: any} | null}
 */
function shownOf(m) {
  if (m.kind === "text") return { text: m.text };
  if (m.kind === "attachment" && isPointer(m.attachment)) return { attachment: m.attachment };
  return null;
}

/** @param {string} a @param {string} b */
const byCodePoint = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** @param {any[]} entries */
const byTime = (entries) => entries.sort((a, b) => a.timestamp - b.timestamp || byCodePoint(a.id, b.id));

/**
 * The bundle of the text messages of the last HISTORY_DAYS, by conversation (peers in order,
 * messages by time), and every contact. `messages` are engine message records (section 22.3
 * `store_message`); `contacts` are `{username, account_key}`; `groupMessages` are the texts
 * of groups, `{kind, group_id, id, author, text, timestamp}`, by group.
 * @param {Iterable<any>} messages @param {Iterable<{username: string, account_key: string}>} contacts
 * @param {number} now @param {Iterable<any>} [groupMessages]
 * @returns {{bundle: any, count: number}}
 */
export function historyBundle(messages, contacts, now, groupMessages = []) {
  const since = now - HISTORY_DAYS * DAY_MS;
  /** @type {Map<string, any[]>} */
  const byGroup = new Map();
  for (const g of groupMessages) {
    if (g.kind !== "text" || g.timestamp < since) continue;
    const list = byGroup.get(g.group_id) ?? [];
    list.push({ id: g.id, author: g.author, text: g.text, timestamp: g.timestamp });
    byGroup.set(g.group_id, list);
  }
  const groups = [...byGroup.keys()].sort(byCodePoint).map((groupId) => ({
    group_id: groupId,
    messages: byTime(/** @type {any[]} */ (byGroup.get(groupId))),
  }));
  /** @type {Map<string, any[]>} */
  const byPeer = new Map();
  for (const m of messages) {
    const shown = shownOf(m);
    if (shown === null || m.timestamp < since) continue;
    const outgoing = m.outgoing === true;
    const list = byPeer.get(m.conversation) ?? [];
    list.push({
      id: m.id,
      author: m.author,
      outgoing,
      ...shown,
      timestamp: m.timestamp,
      status: statusOf(outgoing, m.status),
    });
    byPeer.set(m.conversation, list);
  }
  const conversations = [...byPeer.keys()].sort(byCodePoint).map((peer) => ({
    peer,
    messages: byTime(/** @type {any[]} */ (byPeer.get(peer))),
  }));
  const bundle = {
    format: HISTORY_FORMAT,
    contacts: [...contacts]
      .map((c) => ({ username: c.username, account_key: c.account_key }))
      .sort((a, b) => byCodePoint(a.username, b.username)),
    conversations,
    groups,
  };
  return { bundle, count: [...conversations, ...groups].reduce((n, c) => n + c.messages.length, 0) };
}

/**
 * What a new device imports from a bundle it opened: `{contacts: [{username, account_key}],
 * messages: [engine message records], group_messages: [{group_id, id, author, outgoing, text,
 * timestamp}]}`. Contacts it has and its own account are left out; an
 * entry of the wrong shape is skipped, not fatal; a bundle not in HISTORY_FORMAT throws
 * MalformedMessage (nothing is imported). A message already stored is kept as it is by the
 * adapter, as for every `store_message`.
 * @param {any} bundle @param {{accountId: string, contacts: Iterable<string>}} known
 * @returns {{contacts: {username: string, account_key: string}[], messages: any[], group_messages: any[]}}
 */
export function historyRecords(bundle, { accountId, contacts }) {
  const isObject = (/** @type {any} */ v) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObject(bundle) || bundle.format !== HISTORY_FORMAT || !Array.isArray(bundle.conversations)) {
    throw new MalformedMessage("the history is not in a format this version understands");
  }
  const known = new Set([...contacts, accountId]);
  const newContacts = [];
  for (const c of Array.isArray(bundle.contacts) ? bundle.contacts : []) {
    if (!isObject(c)) continue;
    const { username, account_key: key } = c;
    if (typeof username === "string" && typeof key === "string" && !known.has(username)) {
      known.add(username);
      newContacts.push({ username, account_key: key });
    }
  }
  const records = [];
  for (const conversation of bundle.conversations) {
    if (!isObject(conversation)) continue;
    const { peer, messages } = conversation;
    if (typeof peer !== "string" || !Array.isArray(messages)) continue;
    for (const m of messages) {
      if (!isObject(m)) continue;
      if (typeof m.id !== "string" || !isUint(m.timestamp)) continue;
      let shown;
      if (typeof m.text === "string") shown = { kind: "text", text: m.text };
      else if (!("text" in m) && isPointer(m.attachment)) shown = { kind: "attachment", attachment: m.attachment };
      else continue;
      const outgoing = m.outgoing === true;
      records.push({
        ...shown,
        author: outgoing ? accountId : peer, // never the bundle's word
        author_device: null,
        conversation: peer,
        id: m.id,
        outgoing,
        status: statusOf(outgoing, m.status),
        timestamp: m.timestamp,
      });
    }
  }
  const groupRecords = [];
  for (const group of Array.isArray(bundle.groups) ? bundle.groups : []) {
    if (!isObject(group) || !isGroupId(group.group_id) || !Array.isArray(group.messages)) continue;
    for (const m of group.messages) {
      if (!isObject(m)) continue;
      if (typeof m.id !== "string" || typeof m.text !== "string" || !isUint(m.timestamp)) continue;
      if (typeof m.author !== "string" || !m.author) continue;
      groupRecords.push({
        group_id: group.group_id,
        id: m.id,
        author: m.author, // a group has many: the own device's word, as its texts
        outgoing: m.author === accountId,
        text: m.text,
        timestamp: m.timestamp,
      });
    }
  }
  return { contacts: newContacts, messages: records, group_messages: groupRecords };
}

/** @param {unknown} value */
function isGroupId(value) {
  try {
    b64uDecode(/** @type {any} */ (value), { length: 16, what: "group id" });
  } catch (error) {
    if (error instanceof MalformedMessage) return false;
    throw error;
  }
  return true;
}
