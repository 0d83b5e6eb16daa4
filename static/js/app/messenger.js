// The messenger engine: contacts, device lists, fan-out sends through the outbox, receiving,
// receipts and notices (DESIGN sections 3, 6 and 7; docs/protocol.md sections 9, 10, 20).
// No DOM here: pages read IndexedDB and listen to `changes`.
//
// Several tabs are one device: session state changes happen under the "parley-state" lock,
// and only the leader tab (socket.js) sends and receives. Other tabs put what they want sent
// in the outbox and ring the leader over a BroadcastChannel.
//
// Records (IndexedDB "parley"):
//   contacts       {username, accountKey: b64u pinned at first use, addedAt,
//                   keyChanged: null | {pendingKey, at}}
//   conversations  {peer, unread, lastText, lastTimestamp, lastOutgoing}
//   messages       {key: "<author>:<message id>" | "notice:<id>", id, conversation, author,
//                   authorDevice, outgoing, kind: "text" | "notice", text, timestamp,
//                   receivedAt, status: sending | sent | delivered | read | received | failed,
//                   readSent, reason?, tone?}
//   outbox         {seq, envelopeId, recipient, contentType, body, messageId, timestamp,
//                   attempts, messageKey?, historyFor?}
//   seen           "<sender device>/<message id>" → receivedAt (content de-duplication, 10.1)
//   baseKeys       b64u X3DH base key → receivedAt (prekey replay, 7.1)
//   meta           "settings" → {readReceipts}, "history" → the history transfer's state

import {
  Content,
  ContentType,
  DeviceList,
  decodeContent,
  decodeMessage,
  encodeContent,
  encoding,
  engine,
  PrekeyBundle,
  PrekeyMessage,
  ready,
  ReplayDetected,
  systemRng,
} from "../protocol/index.js";
import { ApiError, api } from "./api.js";
import { loadKeys, topUpPrekeys } from "./device.js";
import {
  currentList,
  engineState,
  onListNotice,
  refreshList,
  refusalOf,
  runEngine,
  senderEntry,
  suspended,
} from "./lists.js";
import { decryptFrom, sessionForSending } from "./sessions.js";
import { isLeader, onDeviceFrame, onLeader, onSocketOpen, sendFrame } from "./socket.js";
import * as store from "./store.js";

const { b64uDecode, b64uEncode } = encoding;

export const MAX_MISMATCH_RETRIES = 3;
const ACCEPT_WAIT_MS = 15_000;
const RECEIPT_BATCH = 100;
const STATUS_RANK = { failed: 0, sending: 1, sent: 2, delivered: 3, read: 4 };

/** Something the person must act on before this can be sent. */
export class SendRefused extends Error {
  /** @param {string} message @param {string} code */
  constructor(message, code) {
    super(message);
    this.name = "SendRefused";
    this.code = code;
  }
}

// ------------------------------------------------------------------ change notifications

/** Fires "change" with detail {kind, peer?, ...} in every tab of this browser. */
export const changes = new EventTarget();
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("parley-messenger");
channel?.addEventListener("message", (event) => {
  const detail = event.data;
  if (detail?.kind === "outbox") {
    flush();
    return;
  }
  changes.dispatchEvent(new CustomEvent("change", { detail }));
});

/** Tell every tab of this browser that something changed. @param {Record<string, any>} detail */
export function notify(detail) {
  announce(detail);
}

/** @param {Record<string, any>} detail */
function announce(detail) {
  changes.dispatchEvent(new CustomEvent("change", { detail }));
  channel?.postMessage(detail);
}

/**
 * Run `work` holding the device's state lock (session state, prekeys, outbox order).
 * @template T @param {() => Promise<T>} work @returns {Promise<T>}
 */
export function withStateLock(work) {
  if (!("locks" in navigator)) return work();
  return navigator.locks.request("parley-state", work);
}

// ------------------------------------------------------------------ self, settings

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
  announce({ kind: "settings" });
}

// ------------------------------------------------------------------ device lists

/** @param {string} username */
const accountPath = (username) => `/api/accounts/${encodeURIComponent(username)}`;

/**
 * What the engine tells about lists (lists.js), as lines in conversations: a contact's
 * devices changed, a security code changed, a withheld or forked list (section 10.1).
 * @param {engine.Notice} notice
 */
async function listNotice(notice) {
  const me = await store.getSelf();
  const account = notice.accountId;
  const { data } = notice;
  if (!me) return;
  if (notice.code === "devices_changed" && account !== me.accountId) {
    const count = (await store.getAcceptedList(account))?.list.devices.length ?? 0;
    const { added, removed } = data;
    const what =
      added.length && !removed.length
        ? `${account} linked a new device`
        : removed.length && !added.length
          ? `${account} removed a device`
          : `${account}'s devices changed`;
    await addNotice(
      account,
      `${what}. Messages now go to ${count} device${count === 1 ? "" : "s"} (device list version ${data.version}).`,
      "info",
    );
  } else if (notice.code === "security_code_changed" && account !== me.accountId) {
    await securityCodeChanged(account, data.account_key);
  } else if (notice.code === "list_forked") {
    await addNotice(
      account,
      `${account}'s device signed with a different device list of the same version (a forked list). Be careful.`,
      "warn",
    );
  } else if (notice.code === "list_withheld") {
    await addNotice(
      account,
      `${account}'s device uses device list version ${data.claimed}, but the server serves version ${data.served}. It may be withholding a change.`,
      "warn",
    );
  } else if (data.reason === "freeze" && LIST_REFUSALS.has(notice.code)) {
    const error = refusalOf(notice, new Map());
    await addNotice(account, `${account}'s newer device list could not be verified: ${error?.message}`, "warn");
  }
}
onListNotice(listNotice);
const LIST_REFUSALS = new Set(["list_refused", "list_unavailable", "security_code_changed"]);

/** @param {string} accountId @param {DeviceList} list */
function active(accountId, list) {
  const out = suspended.get(accountId) ?? new Set();
  return list.devices.filter((d) => !out.has(d.deviceId));
}

// ------------------------------------------------------------------ contacts

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
  const contact = {
    username: name,
    accountKey: b64uEncode(list.accountKey),
    addedAt: Date.now(),
    keyChanged: null,
  };
  await store.transact(["contacts", "conversations"], (s) => {
    s.contacts.put(contact);
    const request = s.conversations.get(name);
    request.onsuccess = () => {
      if (!request.result) s.conversations.put(emptyConversation(name));
    };
  });
  announce({ kind: "contacts", peer: name });
  return contact;
}

/** @param {string} peer */
function emptyConversation(peer) {
  return { peer, unread: 0, lastText: "", lastTimestamp: 0, lastOutgoing: false };
}

/** @param {string} username @param {string} pendingKey b64u, the served list's account key */
async function securityCodeChanged(username, pendingKey) {
  const contact = await store.read("contacts", username);
  if (!contact) return;
  if (contact.keyChanged?.pendingKey === pendingKey) return;
  await store.write("contacts", { ...contact, keyChanged: { pendingKey, at: Date.now() } });
  await addNotice(
    username,
    `${username}'s security code changed. They may have set up Parley again on a new phone, or someone may be intercepting. Nothing more is sent until you confirm the new code.`,
    "warn",
  );
  announce({ kind: "contacts", peer: username });
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
  await addNotice(username, `You accepted ${username}'s new security code.`, "info");
  announce({ kind: "contacts", peer: username });
}

// ------------------------------------------------------------------ notices

/**
 * A line in a conversation that is not a message ("security code changed", "new device").
 * @param {string} peer @param {string} text @param {"info" | "warn" | "error"} tone
 */
export async function addNotice(peer, text, tone) {
  const id = b64uEncode(crypto.getRandomValues(new Uint8Array(12)));
  const now = Date.now();
  await store.transact(["messages", "conversations"], (s) => {
    s.messages.put({
      key: `notice:${id}`,
      id,
      conversation: peer,
      author: null,
      authorDevice: null,
      outgoing: false,
      kind: "notice",
      tone,
      text,
      timestamp: now,
      receivedAt: now,
      status: "notice",
      readSent: true,
    });
    const request = s.conversations.get(peer);
    request.onsuccess = () => {
      if (!request.result) s.conversations.put(emptyConversation(peer));
    };
  });
  announce({ kind: "messages", peer });
}

// ------------------------------------------------------------------ sending

/**
 * Send a text to a contact: stored at once as "sending", then encrypted and sent by the leader.
 * @param {string} peer @param {string} text
 */
export async function sendText(peer, text) {
  await ready();
  const me = await self();
  const contact = await store.read("contacts", peer);
  if (!contact) throw new SendRefused(`Add ${peer} as a contact first.`, "not_a_contact");
  if (contact.keyChanged) {
    throw new SendRefused(
      `${peer}'s security code changed. Check it and confirm before sending.`,
      "security_code_changed",
    );
  }
  const messageId = b64uEncode(systemRng(16));
  const timestamp = Date.now();
  const key = `${me.accountId}:${messageId}`;
  const message = {
    key,
    id: messageId,
    conversation: peer,
    author: me.accountId,
    authorDevice: me.deviceId,
    outgoing: true,
    kind: "text",
    text,
    timestamp,
    receivedAt: timestamp,
    status: "sending",
    readSent: true,
  };
  await store.transact(["messages", "conversations", "outbox"], (s) => {
    s.messages.put(message);
    s.conversations.put({
      peer,
      unread: 0,
      lastText: text,
      lastTimestamp: timestamp,
      lastOutgoing: true,
    });
    s.outbox.add(outboxItem(peer, ContentType.TEXT, { text }, { messageId, timestamp, messageKey: key }));
  });
  announce({ kind: "messages", peer });
  ringLeader();
  return message;
}

/** Queue a failed message again (after a confirmed security code, for instance). @param {string} key */
export async function retryMessage(key) {
  const message = await store.read("messages", key);
  if (!message || message.status !== "failed") return;
  await store.transact(["messages", "outbox"], (s) => {
    s.messages.put({ ...message, status: "sending", reason: undefined });
    s.outbox.add(
      outboxItem(message.conversation, ContentType.TEXT, { text: message.text }, {
        messageId: message.id,
        timestamp: message.timestamp,
        messageKey: key,
      }),
    );
  });
  announce({ kind: "messages", peer: message.conversation });
  ringLeader();
}

/**
 * @param {string} recipient @param {number} contentType @param {any} body
 * @param {{messageId?: string, timestamp?: number, messageKey?: string, historyFor?: string}} [extra]
 */
function outboxItem(recipient, contentType, body, extra = {}) {
  return {
    envelopeId: b64uEncode(systemRng(16)),
    recipient,
    contentType,
    body,
    messageId: extra.messageId ?? b64uEncode(systemRng(16)),
    timestamp: extra.timestamp ?? Date.now(),
    attempts: 0,
    messageKey: extra.messageKey ?? null,
    historyFor: extra.historyFor ?? null,
  };
}

/**
 * Queue a content for the own account (history bundle key for one new device); resolves
 * when the server accepted it.
 * @param {{historyFor: string, body: any}} item
 */
export async function sendHistoryKey({ historyFor, body }) {
  const me = await self();
  const item = outboxItem(me.accountId, ContentType.HISTORY_BUNDLE_KEY, body, { historyFor });
  const done = new Promise((resolve, reject) => {
    const listener = (/** @type {any} */ event) => {
      const detail = event.detail;
      if (detail.kind !== "outbox-done" || detail.envelopeId !== item.envelopeId) return;
      changes.removeEventListener("change", listener);
      detail.ok ? resolve(undefined) : reject(new Error(detail.reason));
    };
    changes.addEventListener("change", listener);
  });
  await store.transact(["outbox"], (s) => s.outbox.add(item));
  ringLeader();
  return done;
}

function ringLeader() {
  if (isLeader()) flush();
  else channel?.postMessage({ kind: "outbox" });
}

/**
 * Encrypt an outbox item for every target device (section 9): the content for each device
 * of the recipient's verified list, a sent transcript for every other own device.
 * @param {any} item
 * @returns {Promise<Record<string, string>>} device id → b64u ciphertext
 */
async function encryptItem(item) {
  const me = await self();
  const keys = await loadKeys(me);
  const ownList = await currentList(me.accountId);
  const own = { list: ownList, version: ownList.version, hash: ownList.hash };
  if (!own.list.entry(me.deviceId)) {
    throw new SendRefused("This device is no longer in your account's signed device list.", "device_removed");
  }
  const toSelf = item.recipient === me.accountId;
  if (!toSelf) {
    const contact = await store.read("contacts", item.recipient);
    if (contact?.keyChanged) {
      throw new SendRefused(
        `${item.recipient}'s security code changed; confirm it before sending.`,
        "security_code_changed",
      );
    }
  }
  const theirs = toSelf ? own : { list: await currentList(item.recipient) };
  const recipientEntries = active(item.recipient, theirs.list).filter(
    (d) => d.deviceId !== me.deviceId,
  );
  const ownEntries = toSelf
    ? []
    : active(me.accountId, own.list).filter((d) => d.deviceId !== me.deviceId);
  const stamp = { timestamp: item.timestamp, senderListVersion: own.version, senderListHash: own.hash };
  const content = encodeContent(
    new Content({
      type: item.contentType,
      messageId: b64uDecode(item.messageId, { length: 16, what: "message id" }),
      ...stamp,
      body: item.body,
    }),
  );
  /** @type {Map<string, Uint8Array>} device id → encoded content */
  const plaintexts = new Map();
  if (toSelf) {
    // A history key goes to the new device only; every other own device must be named in
    // the send too, and gets the own list as a device-list notice.
    const notice = encodeContent(
      newContent(ContentType.DEVICE_LIST_NOTICE, { device_list: own.list.toJSON() }, stamp),
    );
    for (const d of recipientEntries) {
      plaintexts.set(d.deviceId, d.deviceId === item.historyFor ? content : notice);
    }
    if (item.historyFor && !plaintexts.has(item.historyFor)) {
      throw new SendRefused("The new device is not in your signed device list yet.", "not_listed");
    }
  } else {
    for (const d of recipientEntries) plaintexts.set(d.deviceId, content);
    if (ownEntries.length) {
      const transcript = encodeContent(
        newContent(
          ContentType.SENT_TRANSCRIPT,
          { recipient: item.recipient, content: b64uEncode(content) },
          stamp,
        ),
      );
      for (const d of ownEntries) plaintexts.set(d.deviceId, transcript);
    }
  }
  const entries = [...recipientEntries.map((d) => [item.recipient, d]), ...ownEntries.map((d) => [me.accountId, d])];
  const records = new Map();
  for (const [, d] of entries) records.set(d.deviceId, await store.read("sessions", d.deviceId));
  const needBundles = new Set(entries.filter(([, d]) => !records.get(d.deviceId)?.current).map(([a]) => a));
  /** @type {Map<string, PrekeyBundle>} */
  const bundles = new Map();
  for (const account of [...needBundles].sort()) {
    const answer = await api(`${accountPath(account)}/bundles`, { method: "POST", body: {} });
    for (const json of answer?.bundles ?? []) {
      try {
        const bundle = PrekeyBundle.fromJSON(json);
        bundles.set(bundle.deviceId, bundle);
      } catch {
        // a malformed bundle: that device has no session and the send says so below
      }
    }
  }
  /** @type {Record<string, string>} */
  const targets = {};
  const updated = [];
  for (const [account, d] of [...entries].sort((a, b) => (a[1].deviceId < b[1].deviceId ? -1 : 1))) {
    const record = records.get(d.deviceId);
    const session = sessionForSending({
      record,
      listedKey: d.identityKey,
      bundle: bundles.get(d.deviceId),
      keys,
    });
    if (!session) {
      throw new SendRefused(`The key directory has no prekeys for a device of ${account}.`, "no_bundle");
    }
    targets[d.deviceId] = b64uEncode(session.encrypt(/** @type {Uint8Array} */ (plaintexts.get(d.deviceId)), systemRng));
    updated.push({
      deviceId: d.deviceId,
      accountId: account,
      current: session.toJSON(),
      previous: record?.previous ?? null,
    });
  }
  await store.transact(["sessions"], (s) => {
    for (const r of updated) s.sessions.put(r);
  });
  return targets;
}

/** @param {number} type @param {any} body @param {any} stamp */
function newContent(type, body, stamp) {
  return new Content({ type, messageId: systemRng(16), ...stamp, body });
}

/** envelope id → resolver of the server's answer */
const waiting = new Map();

/** @param {string} id @returns {Promise<any>} the `accepted` or `error` frame, or null */
function answerFor(id) {
  return new Promise((resolve) => {
    const timer = window.setTimeout(() => {
      waiting.delete(id);
      resolve(null);
    }, ACCEPT_WAIT_MS);
    waiting.set(id, (/** @type {any} */ frame) => {
      clearTimeout(timer);
      waiting.delete(id);
      resolve(frame);
    });
  });
}

let flushing = false;
let flushAgain = false;

/** Send the outbox in order (leader only). Safe to call any time. */
export async function flush() {
  if (!isLeader()) return;
  if (flushing) {
    flushAgain = true;
    return;
  }
  flushing = true;
  try {
    do {
      flushAgain = false;
      for (;;) {
        const [item] = await store.readAll("outbox", IDBKeyRange.lowerBound(0));
        if (!item) break;
        const sent = await sendItem(item);
        if (!sent) return;
      }
    } while (flushAgain);
  } finally {
    flushing = false;
  }
}

/**
 * One item: encrypt, send, wait for `accepted`; on `mismatched_devices` refetch and verify
 * both lists and retry (at most 3 times). False when the socket is not there to send on.
 * @param {any} item
 */
async function sendItem(item) {
  let targets;
  try {
    targets = await withStateLock(() => encryptItem(item));
  } catch (error) {
    if (error instanceof ApiError && (error.code === "network" || error.status === 401)) {
      window.setTimeout(flush, 3000);
      return false;
    }
    await finishItem(item, false, /** @type {any} */ (error).message ?? String(error));
    return true;
  }
  const answer = answerFor(item.envelopeId);
  if (!sendFrame({ type: "send", id: item.envelopeId, recipient: item.recipient, targets })) {
    waiting.get(item.envelopeId)?.(null);
    return false;
  }
  const frame = await answer;
  if (!frame) {
    window.setTimeout(flush, 2000);
    return false;
  }
  if (frame.type === "accepted") {
    await finishItem(item, true, "");
    return true;
  }
  if (frame.code === "mismatched_devices" && item.attempts < MAX_MISMATCH_RETRIES) {
    const me = await self();
    try {
      for (const account of new Set([me.accountId, item.recipient])) {
        await refreshList(account);
        const stale = frame.data?.stale;
        if (Array.isArray(stale)) {
          const set = suspended.get(account) ?? new Set();
          stale.filter((s) => typeof s === "string").forEach((s) => set.add(s));
          suspended.set(account, set);
        }
      }
    } catch (error) {
      await finishItem(item, false, /** @type {any} */ (error).message ?? String(error));
      return true;
    }
    await store.write("outbox", { ...item, attempts: item.attempts + 1 });
    return true;
  }
  if (frame.code === "rate_limited") {
    await new Promise((r) => setTimeout(r, Number(frame.data?.retry_after_ms) || 1000));
    return true;
  }
  const reason =
    frame.code === "mismatched_devices"
      ? `The server kept refusing the devices of ${item.recipient} after ${MAX_MISMATCH_RETRIES} retries with freshly verified device lists.`
      : frame.message || frame.code;
  await finishItem(item, false, reason);
  return true;
}

/** @param {any} item @param {boolean} ok @param {string} reason */
async function finishItem(item, ok, reason) {
  const message = item.messageKey ? await store.read("messages", item.messageKey) : null;
  await store.transact(["outbox", "messages"], (s) => {
    s.outbox.delete(item.seq);
    if (message) {
      const status = ok ? (STATUS_RANK[message.status] >= STATUS_RANK.sent ? message.status : "sent") : "failed";
      s.messages.put({ ...message, status, reason: ok ? undefined : reason });
    }
  });
  announce({ kind: "outbox-done", envelopeId: item.envelopeId, ok, reason });
  if (message) announce({ kind: "messages", peer: message.conversation });
}

// ------------------------------------------------------------------ receiving

let receiving = Promise.resolve();
/** Contents whose effect needs the network after the envelope is stored. */
const followUps = [];

/** @param {any[]} envelopes */
function onDeliver(envelopes) {
  receiving = receiving.then(async () => {
    const receipts = new Map();
    let usedPrekey = false;
    for (const envelope of envelopes) {
      try {
        const outcome = await withStateLock(() => receiveOne(envelope));
        if (outcome.delivered) {
          const ids = receipts.get(envelope.sender) ?? [];
          ids.push(outcome.delivered);
          receipts.set(envelope.sender, ids);
        }
        usedPrekey ||= outcome.usedPrekey;
      } catch (error) {
        // The server or the network failing: leave the envelope queued for a redelivery.
        if (error instanceof ApiError && (error.status === 0 || error.status >= 500)) continue;
        console.warn("Parley: an envelope could not be handled", error);
      }
      // Ack after storing: the server deletes the row, and a redelivery would be refused
      // as a replay by the ratchet anyway.
      sendFrame({ type: "ack", seqs: [envelope.seq] });
    }
    for (const [peer, ids] of receipts) await queueReceipt(peer, "delivered", ids);
    while (followUps.length) {
      const next = followUps.shift();
      try {
        await next();
      } catch (error) {
        console.warn("Parley: a follow-up failed", error);
      }
    }
    if (usedPrekey) await refillPrekeys();
    flush();
  });
}

/** Top the server's pool of one-time prekeys up: after using one, and at once when the
 * server says `prekeys_low` (another device claimed one and few are left). */
function refillPrekeys() {
  return withStateLock(async () => {
    const me = await store.getSelf();
    if (me) await topUpPrekeys(me, api);
  }).catch((error) => console.warn("Parley: prekey top-up failed", error));
}

/**
 * @param {any} envelope a `deliver` entry
 * @returns {Promise<{delivered: string | null, usedPrekey: boolean}>}
 */
async function receiveOne(envelope) {
  const none = { delivered: null, usedPrekey: false };
  const me = await self();
  const sender = String(envelope.sender);
  const senderDevice = String(envelope.sender_device);
  const entry = await senderEntry(sender, senderDevice);
  if (!entry) {
    await addNotice(
      sender,
      `A message that claimed to come from a device of ${sender} was refused: that device is not in their signed device list.`,
      "warn",
    );
    return none;
  }
  const data = b64uDecode(String(envelope.ciphertext), { what: "envelope ciphertext" });
  const keys = await loadKeys(me);
  let baseKeyUsed = false;
  let wire;
  try {
    wire = decodeMessage(data);
  } catch {
    await addNotice(sender, `A message from ${sender} could not be read (malformed).`, "warn");
    return none;
  }
  if (wire instanceof PrekeyMessage) {
    baseKeyUsed = Boolean(await store.read("baseKeys", b64uEncode(wire.baseKey)));
  }
  let decrypted;
  let content;
  try {
    decrypted = decryptFrom({
      data,
      accountId: sender,
      deviceId: senderDevice,
      listedKey: entry.identityKey,
      record: await store.read("sessions", senderDevice),
      keys,
      baseKeyUsed,
    });
    content = decodeContent(decrypted.plaintext);
  } catch (error) {
    // A replay is what at-least-once delivery and a misbehaving server look like: silent.
    if (error instanceof ReplayDetected) return none;
    await addNotice(
      sender,
      `A message from ${sender} could not be decrypted (${/** @type {any} */ (error).message}). No receipt was sent.`,
      "warn",
    );
    return none;
  }
  const seenKey = `${senderDevice}/${b64uEncode(content.messageId)}`;
  const duplicate = Boolean(await store.read("seen", seenKey));
  // The engine decides who may send which content, and checks the stamp (section 22.4).
  const received = new engine.ContentReceived(
    sender,
    senderDevice,
    content.type,
    content.senderListVersion,
    content.senderListHash,
    Date.now(),
  );
  const [, effects] = duplicate ? [null, []] : engine.handle(await engineState([sender]), received);
  const verdict = effects.find((e) => e instanceof engine.ContentVerdict);
  const plan = duplicate
    ? null
    : verdict?.verdict === "refuse"
      ? refusedPlan(sender)
      : await planContent(me, sender, entry, content);
  const now = Date.now();
  await store.transact(["sessions", "baseKeys", "seen", "device", ...(plan?.stores ?? [])], (s) => {
    s.sessions.put(decrypted.record);
    if (decrypted.baseKey) s.baseKeys.put(now, decrypted.baseKey);
    if (decrypted.oneTimePrekeyId !== null) {
      const otp = decrypted.oneTimePrekeyId;
      s.device.put(
        {
          ...me,
          keys: {
            ...me.keys,
            one_time_prekeys: me.keys.one_time_prekeys.filter((/** @type {any} */ k) => k.id !== otp),
          },
        },
        "self",
      );
    }
    s.seen.put(now, seenKey);
    plan?.write(s);
  });
  if (!plan) return { ...none, usedPrekey: decrypted.oneTimePrekeyId !== null };
  for (const detail of plan.announce) announce(detail);
  if (plan.after) followUps.push(plan.after);
  // The stamp's fetches, after the envelope is stored: run again on the lists stored by then.
  followUps.push(async () => {
    const run = await runEngine(received, [sender]);
    for (const effect of run.effects) {
      const error = effect.data?.reason === "notice" ? refusalOf(effect, run.failures) : null;
      if (error) console.warn("Parley: own device list refresh failed", error);
    }
  });
  return { delivered: plan.delivered ?? null, usedPrekey: decrypted.oneTimePrekeyId !== null };
}

/**
 * What one content changes (acceptance rules of section 10), as writes for one transaction.
 * @param {any} me @param {string} sender @param {any} entry @param {any} content
 * @returns {Promise<{stores: string[], write: (s: Record<string, IDBObjectStore>) => void,
 *   announce: any[], delivered?: string, after?: () => Promise<void>}>}
 */
async function planContent(me, sender, entry, content) {
  const nothing = { stores: [], write: () => {}, announce: [] };
  const fromSelf = sender === me.accountId;
  const id = b64uEncode(content.messageId);
  switch (content.type) {
    case ContentType.TEXT: {
      if (fromSelf) return nothing;
      const key = `${sender}:${id}`;
      if (await store.read("messages", key)) return nothing;
      const conversation = (await store.read("conversations", sender)) ?? emptyConversation(sender);
      const contact = await store.read("contacts", sender);
      const message = {
        key,
        id,
        conversation: sender,
        author: sender,
        authorDevice: entry.deviceId,
        outgoing: false,
        kind: "text",
        text: content.body.text,
        timestamp: content.timestamp,
        receivedAt: Date.now(),
        status: "received",
        readSent: false,
      };
      return {
        stores: ["messages", "conversations"],
        write: (s) => {
          s.messages.put(message);
          s.conversations.put(latest(conversation, message, conversation.unread + 1));
        },
        announce: [{ kind: "messages", peer: sender, incoming: true }],
        // Receipts only to contacts, and only for what decrypted (DESIGN section 7).
        delivered: contact ? id : undefined,
      };
    }
    case ContentType.RECEIPT: {
      if (fromSelf) return nothing;
      return receiptPlan(me.accountId, sender, content.body, sender);
    }
    case ContentType.SENT_TRANSCRIPT:
    case ContentType.DEVICE_LIST_NOTICE:
    case ContentType.HISTORY_BUNDLE_KEY: {
      // accepted by the engine: from another own device (its fetch of the own list for a
      // device-list notice is among the engine's effects)
      if (content.type === ContentType.DEVICE_LIST_NOTICE) return nothing;
      if (content.type === ContentType.HISTORY_BUNDLE_KEY) {
        const { acceptHistoryKey } = await import("./history.js");
        return { ...nothing, after: () => acceptHistoryKey(entry, content.body) };
      }
      return transcriptPlan(me, entry, content.body);
    }
    default:
      return nothing;
  }
}

/**
 * A content only own devices may send, from a contact's device (the engine refused it).
 * @param {string} sender
 */
function refusedPlan(sender) {
  return {
    stores: [],
    write: () => {},
    announce: [],
    after: () =>
      addNotice(
        sender,
        `${sender}'s device sent something only your own devices may send; it was refused.`,
        "warn",
      ),
  };
}

/** @param {any} conversation @param {any} message @param {number} unread */
function latest(conversation, message, unread) {
  const newer = message.timestamp >= (conversation.lastTimestamp ?? 0);
  return {
    ...conversation,
    unread,
    lastText: newer ? message.text : conversation.lastText,
    lastTimestamp: newer ? message.timestamp : conversation.lastTimestamp,
    lastOutgoing: newer ? message.outgoing : conversation.lastOutgoing,
  };
}

/**
 * A receipt from `peer` for messages `author` wrote in the conversation with `peer`.
 * @param {string} author @param {string} peer @param {any} body @param {string} announcePeer
 */
async function receiptPlan(author, peer, body, announcePeer) {
  const updates = [];
  for (const mid of body.message_ids) {
    const message = await store.read("messages", `${author}:${mid}`);
    if (!message || message.conversation !== peer || !message.outgoing) continue;
    if (STATUS_RANK[body.kind] > (STATUS_RANK[message.status] ?? 0)) {
      updates.push({ ...message, status: body.kind, reason: undefined });
    }
  }
  return {
    stores: ["messages"],
    write: (/** @type {any} */ s) => updates.forEach((m) => s.messages.put(m)),
    announce: [{ kind: "messages", peer: announcePeer }],
  };
}

/**
 * A sent transcript from another own device: its text to a contact, or its read receipt
 * (the conversation was read there).
 * @param {any} me @param {any} entry @param {any} body
 */
async function transcriptPlan(me, entry, body) {
  const inner = decodeContent(b64uDecode(body.content));
  const peer = body.recipient;
  const conversation = (await store.read("conversations", peer)) ?? emptyConversation(peer);
  if (inner.type === ContentType.TEXT) {
    const id = b64uEncode(inner.messageId);
    const key = `${me.accountId}:${id}`;
    if (await store.read("messages", key)) return { stores: [], write: () => {}, announce: [] };
    const message = {
      key,
      id,
      conversation: peer,
      author: me.accountId,
      authorDevice: entry.deviceId,
      outgoing: true,
      kind: "text",
      text: inner.body.text,
      timestamp: inner.timestamp,
      receivedAt: Date.now(),
      status: "sent",
      readSent: true,
    };
    return {
      stores: ["messages", "conversations"],
      write: (s) => {
        s.messages.put(message);
        s.conversations.put(latest(conversation, message, conversation.unread));
      },
      announce: [{ kind: "messages", peer }],
    };
  }
  if (inner.type === ContentType.RECEIPT && inner.body.kind === "read") {
    const read = [];
    for (const mid of inner.body.message_ids) {
      const message = await store.read("messages", `${peer}:${mid}`);
      if (message && !message.readSent) read.push({ ...message, readSent: true });
    }
    const unread = Math.max(0, conversation.unread - read.length);
    return {
      stores: ["messages", "conversations"],
      write: (s) => {
        read.forEach((m) => s.messages.put(m));
        s.conversations.put({ ...conversation, unread });
      },
      announce: [{ kind: "messages", peer }],
    };
  }
  return { stores: [], write: () => {}, announce: [] };
}

/**
 * @param {string} peer @param {"delivered" | "read"} kind @param {string[]} ids
 */
async function queueReceipt(peer, kind, ids) {
  const contact = await store.read("contacts", peer);
  if (!contact || contact.keyChanged) return;
  await store.transact(["outbox"], (s) => {
    for (let i = 0; i < ids.length; i += RECEIPT_BATCH) {
      s.outbox.add(outboxItem(peer, ContentType.RECEIPT, { kind, message_ids: ids.slice(i, i + RECEIPT_BATCH) }));
    }
  });
  ringLeader();
}

/**
 * The conversation is open and visible: mark its messages read here, and tell the contact
 * (and, through the transcript, the own devices) unless read receipts are off.
 * @param {string} peer
 */
export async function markRead(peer) {
  const range = IDBKeyRange.bound([peer, -Infinity], [peer, Infinity]);
  const unread = (await store.readIndex("messages", "byConversation", range)).filter(
    (m) => m.kind === "text" && !m.outgoing && !m.readSent,
  );
  const conversation = await store.read("conversations", peer);
  if (!unread.length && !conversation?.unread) return;
  await store.transact(["messages", "conversations"], (s) => {
    unread.forEach((m) => s.messages.put({ ...m, readSent: true }));
    if (conversation) s.conversations.put({ ...conversation, unread: 0 });
  });
  announce({ kind: "messages", peer });
  if (unread.length && (await settings()).readReceipts) {
    await queueReceipt(peer, "read", unread.map((m) => m.id));
  }
}

// ------------------------------------------------------------------ reads for pages

/** @returns {Promise<any[]>} conversations, most recent first */
export async function conversations() {
  const all = await store.readAll("conversations");
  return all.sort((a, b) => b.lastTimestamp - a.lastTimestamp || a.peer.localeCompare(b.peer));
}

/** @param {string} peer @returns {Promise<any[]>} in time order */
export async function messages(peer) {
  const range = IDBKeyRange.bound([peer, -Infinity], [peer, Infinity]);
  const all = await store.readIndex("messages", "byConversation", range);
  return all.sort((a, b) => a.timestamp - b.timestamp || a.receivedAt - b.receivedAt);
}

/** @param {string} username */
export function contact(username) {
  return store.read("contacts", username);
}

// ------------------------------------------------------------------ start

let started = false;

/** Run the engine in this tab: as leader it receives and sends; otherwise it only listens. */
export async function startMessenger() {
  if (started) return;
  started = true;
  if (!(await store.getSelf())) return;
  await ready();
  onLeader(() => {
    onDeviceFrame((frame) => {
      if (frame.type === "deliver" && Array.isArray(frame.envelopes)) onDeliver(frame.envelopes);
      else if (frame.type === "accepted") waiting.get(frame.id)?.(frame);
      else if (frame.type === "error" && frame.ref) waiting.get(frame.ref)?.(frame);
      else if (frame.type === "devices_changed") {
        runEngine(new engine.FrameReceived(frame, Date.now()), [])
          .then((run) => run.effects.forEach((e) => {
            const error = refusalOf(e, run.failures);
            if (error) console.warn("Parley: own device list refresh failed", error);
          }))
          .catch((error) => console.warn("Parley: own device list refresh failed", error));
      } else if (frame.type === "prekeys_low") refillPrekeys();
    });
    onSocketOpen(() => flush());
    // Deliveries that reached the socket before this listener existed were not handled:
    // ask for every unacknowledged envelope again (repeats are refused as replays, silently),
    // and check the prekey pool, whose `prekeys_low` on connect may have been missed too.
    if (sendFrame({ type: "fetch" })) {
      flush();
      refillPrekeys();
    }
    import("./history.js").then((h) => h.resumeHistory());
  });
}
