// The outbox (IndexedDB "outbox"): what this device wants sent, in order, and the leader
// tab's sending of it (docs/protocol.md section 20): the engine plans each send and decides
// the retry after `mismatched_devices` (fanout.js asks it), fanout.js encrypts, one `send`
// frame goes out and the leader waits for `accepted`.
// Other tabs put items in the outbox and ring the leader (events.js). A retry request or a
// resend (docs/protocol.md 24) goes to one device, as a partial send the engine did not plan.
//
//   outbox  {seq, envelopeId, recipient, contentType, body, messageId, timestamp, attempts,
//            messageKey?, historyFor?, device? (a one-device send), retry? ({count} of a
//            retry request; {newSession, signedPrekey, alias: {sentAt, count}} of a resend),
//            group? (b64u group id: a group send, groups.js), frame? (its planned frame)}

import { ContentType, encoding, engine, frames, MAX_RECEIPT_IDS, ready, systemRng } from "../protocol/index.js";
import { ApiError } from "./api.js";
import { Change, changes, notify, onOutboxRung, ringOtherTabs } from "./events.js";
import { encryptItem, planSend } from "./fanout.js";
import { groupRecord, groupSendAnswered, planGroupSend } from "./groups.js";
import { OutboxDrain } from "./outboxdrain.js";
import { STATUS_RANK, emptyConversation, outboxItem, sentIn, textRecord } from "./records.js";
import { SendRefused, self } from "./self.js";
import { isLeader, onSocketClose, sendFrame } from "./socket.js";
import { withStateLock } from "./statelock.js";
import * as store from "./store.js";
import { onKeyShared } from "./sync.js";

const { b64uEncode } = encoding;

const ACCEPT_WAIT_MS = 15_000;


/** @param {any} message a text record */
function textItem(message) {
  return outboxItem(message.conversation, ContentType.TEXT, { text: message.text }, {
    messageId: message.id,
    timestamp: message.timestamp,
    messageKey: message.key,
  });
}

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
  const timestamp = Date.now();
  const message = textRecord({
    author: me.accountId,
    id: b64uEncode(systemRng(16)),
    conversation: peer,
    authorDevice: me.deviceId,
    outgoing: true,
    text,
    timestamp,
    receivedAt: timestamp,
    status: "sending",
    readSent: true,
  });
  const conversation = (await store.read("conversations", peer)) ?? emptyConversation(peer);
  await store.transact(["messages", "conversations", "outbox"], (s) => {
    s.messages.put(message);
    // its flags (pinned, archived, muted) and read position stay: only its last line changes
    s.conversations.put(sentIn(conversation, message));
    s.outbox.add(textItem(message));
  });
  notify({ kind: Change.MESSAGES, peer });
  ringLeader();
  return message;
}

/**
 * Send a text to a group: stored at once as "sending" in its conversation, then planned by
 * the group machine and sent by the leader as one `group_send` (docs/protocol.md 25.9).
 * @param {string} groupId b64u @param {string} text
 */
export async function sendGroupText(groupId, text) {
  await ready();
  const me = await self();
  const record = await groupRecord(groupId);
  const to = [...(record?.chain?.members ?? [])].filter((a) => a !== me.accountId);
  const timestamp = Date.now();
  const id = b64uEncode(systemRng(16));
  const line = {
    key: `${groupId}:${me.accountId}:${id}`,
    group: groupId,
    kind: "text",
    timestamp,
    author: me.accountId,
    authorDevice: me.deviceId,
    id,
    text,
    outgoing: true,
    status: "sending",
    receivedAt: timestamp,
    to,
  };
  const item = { ...outboxItem(me.accountId, ContentType.TEXT, { text }, { messageId: id, timestamp, messageKey: line.key }), group: groupId };
  await store.transact(["groupMessages", "outbox"], (s) => {
    s.groupMessages.put(line);
    s.outbox.add(item);
  });
  notify({ kind: Change.GROUPS, group: groupId });
  ringLeader();
  return line;
}

/**
 * A retry request for the one device that sent `envelopeId` (24.1), for the caller's
 * transaction.
 * @param {{recipient: string, device: string, envelopeId: string, count: number, signedPrekey: any,
 *   kemPrekey?: any}} request kemPrekey: the requester's last-resort KEM prekey (27.5)
 */
export function retryRequestItem({ recipient, device, envelopeId, count, signedPrekey, kemPrekey = null }) {
  /** @type {Record<string, any>} */
  const body = { envelope_id: envelopeId, count, signed_prekey: signedPrekey };
  if (kemPrekey) body.kem_prekey = kemPrekey;
  return { ...outboxItem(recipient, ContentType.RETRY_REQUEST, body), device, retry: { count } };
}

/**
 * A resend to the one device that asked (24.1), for the caller's transaction: `content` (b64u)
 * or null, in a new session from the request's signed prekey when `newSession`; cached as an
 * alias of the entry it answers (`alias`: that entry's sent_at and count).
 * @param {{recipient: string, device: string, envelopeId: string, content: string | null,
 *   newSession: boolean, signedPrekey: any, kemPrekey?: any,
 *   alias: {sentAt: number, count: number} | null}} resend
 */
export function resendItem({ recipient, device, envelopeId, content, newSession, signedPrekey, kemPrekey = null, alias }) {
  const body = { envelope_id: envelopeId, content };
  return {
    ...outboxItem(recipient, ContentType.RESEND, body),
    device,
    retry: { newSession, signedPrekey, kemPrekey, alias },
  };
}

/** Queue a failed message again (after a confirmed security code, for instance). @param {string} key */
export async function retryMessage(key) {
  const message = await store.read("messages", key);
  if (!message || message.status !== "failed") return;
  await store.transact(["messages", "outbox"], (s) => {
    s.messages.put({ ...message, status: "sending", reason: undefined });
    s.outbox.add(textItem(message));
  });
  notify({ kind: Change.MESSAGES, peer: message.conversation });
  ringLeader();
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
      if (detail.kind !== Change.OUTBOX_DONE || detail.envelopeId !== item.envelopeId) return;
      changes.removeEventListener("change", listener);
      detail.ok ? resolve(undefined) : reject(new Error(detail.reason));
    };
    changes.addEventListener("change", listener);
  });
  await store.transact(["outbox"], (s) => s.outbox.add(item));
  ringLeader();
  return done;
}

/**
 * Queue the account sync key (content type 7) or this device's sync checkpoint (type 8) for
 * every other own device, when there is one (docs/protocol.md 22.8).
 * @param {Record<string, any>} body @param {number} [contentType]
 */
export async function sendSyncKey(body, contentType = ContentType.ACCOUNT_SYNC_KEY) {
  const me = await self();
  const own = await store.getAcceptedList(me.accountId);
  const others = (own?.list?.devices ?? []).filter((/** @type {any} */ d) => d.device_id !== me.deviceId);
  if (!others.length) return;
  await store.transact(["outbox"], (s) => s.outbox.add(outboxItem(me.accountId, contentType, body)));
  ringLeader();
}
onKeyShared(sendSyncKey);

/**
 * Receipts the engine decided on (to a contact whose security code is confirmed), in batches.
 * @param {string} peer @param {"delivered" | "read"} kind @param {string[]} ids
 */
export async function queueReceipt(peer, kind, ids) {
  await store.transact(["outbox"], (s) => {
    for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) {
      s.outbox.add(outboxItem(peer, ContentType.RECEIPT, { kind, message_ids: ids.slice(i, i + MAX_RECEIPT_IDS) }));
    }
  });
  ringLeader();
}

/** Have the leader send what is in the outbox (this tab, or another one). */
export function ringLeader() {
  if (isLeader()) flush();
  else ringOtherTabs();
}
onOutboxRung(() => flush());

// ------------------------------------------------------------------ the leader's sending

/** envelope id → resolver of the server's answer */
const waiting = new Map();

/** The server answered a `send` (an `accepted` or `error` frame). @param {string} id @param {any} frame */
export function answered(id, frame) {
  waiting.get(id)?.(frame);
}

// A send still unanswered when its socket closes (its node stopped or died) will not be answered
// on that socket: it goes again, with the same envelope id, on the next one (stored once).
onSocketClose(() => {
  for (const resolve of [...waiting.values()]) resolve(null);
});

/** @param {string} id @returns {Promise<any>} the `accepted` or `error` frame, or null (none came, or the socket closed) */
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

const drain = new OutboxDrain();

/** Send the outbox in order (leader only). Safe to call any time. */
export async function flush() {
  if (!isLeader() || !drain.ring()) return;
  try {
    do {
      if (!(await sendAll())) return;
    } while (drain.emptied());
  } finally {
    drain.stopped();
  }
}

/** The items in order until none is left (true) or one cannot go now (false). */
async function sendAll() {
  for (;;) {
    const [item] = await store.readAll("outbox", IDBKeyRange.lowerBound(0));
    if (!item) return true;
    if (!(await sendItem(item))) return false;
  }
}

/**
 * One item: planned by the engine, encrypted, sent, then wait for `accepted`; after
 * `mismatched_devices` the engine refetches and verifies the lists and plans again, or
 * refuses. False when the socket is not there to send on.
 * @param {any} item
 */
async function sendItem(item) {
  if (item.group) return sendGroupItem(item);
  /** @type {{devices: string[], transcripts: string[]}} */
  let plan;
  if (item.device) {
    // a retry request or a resend: the one device the retry rules named (24.4)
    plan = { devices: [item.device], transcripts: [] };
  } else {
    try {
      const wanted = new engine.SendWanted(item.envelopeId, item.recipient, Date.now());
      plan = await withStateLock(() => planSend(wanted, item));
    } catch (error) {
      return notNow(error) ? false : failItem(item, error);
    }
  }
  for (;;) {
    let targets;
    try {
      const planned = plan;
      targets = await withStateLock(() => encryptItem(item, planned));
    } catch (error) {
      return notNow(error) ? false : failItem(item, error);
    }
    const answer = answerFor(item.envelopeId);
    const partial = item.device ? { partial: true } : {};
    // a file's blob is granted to the devices the send names (docs/protocol.md 19.5)
    const files = item.contentType === ContentType.ATTACHMENT ? { attachments: [item.body.blob_id] } : {};
    if (!sendFrame({ type: frames.SEND, id: item.envelopeId, recipient: item.recipient, targets, ...partial, ...files })) {
      answered(item.envelopeId, null);
      return false;
    }
    const frame = await answer;
    if (!frame) {
      window.setTimeout(flush, 2000);
      return false;
    }
    if (frame.type === frames.ACCEPTED) {
      await finishItem(item, true, "");
      return true;
    }
    if (frame.code === "rate_limited") {
      await new Promise((r) => setTimeout(r, Number(frame.data?.retry_after_ms) || 1000));
      return true;
    }
    // a one-device send is not planned again: a request the device still needs is asked again
    if (frame.code !== "mismatched_devices" || item.device) {
      await finishItem(item, false, frame.message || frame.code);
      return true;
    }
    try {
      const mismatch = new engine.FrameReceived(frame, Date.now());
      plan = await withStateLock(() => planSend(mismatch, item));
    } catch (error) {
      return failItem(item, error);
    }
    item = { ...item, attempts: item.attempts + 1 };
    await store.write("outbox", item);
  }
}

/**
 * A group send: planned once by the group machine (the frame kept with the item, so a send
 * left unanswered goes again as the same frame, stored once), then as `sendItem`.
 * @param {any} item
 */
async function sendGroupItem(item) {
  for (;;) {
    if (!item.frame) {
      try {
        const planning = item;
        item = { ...item, frame: await withStateLock(() => planGroupSend(planning)) };
      } catch (error) {
        return notNow(error) ? false : failItem(item, error);
      }
      await store.write("outbox", item);
    }
    const answer = answerFor(item.envelopeId);
    if (!sendFrame(item.frame)) {
      answered(item.envelopeId, null);
      return false;
    }
    const frame = await answer;
    if (!frame) {
      window.setTimeout(flush, 2000);
      return false;
    }
    if (frame.code === "rate_limited") {
      await new Promise((r) => setTimeout(r, Number(frame.data?.retry_after_ms) || 1000));
      continue;
    }
    let again;
    try {
      const sent = item;
      again = await withStateLock(() => groupSendAnswered(sent, frame));
    } catch (error) {
      return notNow(error) ? false : failItem(item, error);
    }
    if (!again) {
      await finishItem(item, true, "");
      return true;
    }
    item = { ...item, frame: again, attempts: item.attempts + 1 };
    await store.write("outbox", item);
  }
}

/** A failure to try again later (no network, signed out) rather than to report. @param {unknown} error */
function notNow(error) {
  if (error instanceof ApiError && (error.code === "network" || error.status === 401)) {
    window.setTimeout(flush, 3000);
    return true;
  }
  return false;
}

/** @param {any} item @param {unknown} error */
async function failItem(item, error) {
  await finishItem(item, false, /** @type {any} */ (error).message ?? String(error));
  return true;
}

/** @param {any} item @param {boolean} ok @param {string} reason */
async function finishItem(item, ok, reason) {
  if (item.group) return finishGroupItem(item, ok, reason);
  const message = item.messageKey ? await store.read("messages", item.messageKey) : null;
  await store.transact(["outbox", "messages"], (s) => {
    s.outbox.delete(item.seq);
    if (message) {
      const status = ok ? (STATUS_RANK[message.status] >= STATUS_RANK.sent ? message.status : "sent") : "failed";
      s.messages.put({ ...message, status, reason: ok ? undefined : reason });
    }
  });
  notify({ kind: Change.OUTBOX_DONE, envelopeId: item.envelopeId, ok, reason });
  if (message) notify({ kind: Change.MESSAGES, peer: message.conversation });
}

/** @param {any} item @param {boolean} ok @param {string} reason */
async function finishGroupItem(item, ok, reason) {
  const line = await store.read("groupMessages", item.messageKey);
  await store.transact(["outbox", "groupMessages"], (s) => {
    s.outbox.delete(item.seq);
    if (line) s.groupMessages.put({ ...line, status: ok ? "sent" : "failed", reason: ok ? undefined : reason });
  });
  notify({ kind: Change.OUTBOX_DONE, envelopeId: item.envelopeId, ok, reason });
  notify({ kind: Change.GROUPS, group: item.group });
}
