// The inbox: the leader tab's handling of `deliver` frames (docs/protocol.md sections 7, 10
// and 20). Each envelope is decrypted from a device of a verified list, checked by the device
// engine (who may send which content, the sender's list stamp), stored with its session state
// in one transaction, then acked; receipts and follow-ups that need the network come after.
//
//   seen      "<sender device>/<message id>" → receivedAt (content de-duplication, 10.1)
//   baseKeys  b64u X3DH base key → receivedAt (prekey replay, 7.1)

import {
  decodeContent,
  decodeMessage,
  encoding,
  engine,
  frames,
  PrekeyMessage,
  ReplayDetected,
} from "../protocol/index.js";
import { ApiError, api } from "./api.js";
import { loadKeys, topUpPrekeys } from "./device.js";
import { Change, notify } from "./events.js";
import { acceptHistoryKey } from "./history.js";
import { engineState, refusalOf, runEngine, senderEntry } from "./lists.js";
import { displayName } from "./names.js";
import { addNotice } from "./notices.js";
import { closeNotification } from "./notifications.js";
import { flush, queueReceipt } from "./outbox.js";
import { STATUS_RANK, emptyConversation, messageKey, textRecord, unsupportedRecord, withMessage } from "./records.js";
import { self, settings } from "./self.js";
import { decryptFrom } from "./sessions.js";
import { sendFrame } from "./socket.js";
import { withStateLock } from "./statelock.js";
import * as store from "./store.js";
import { onSynced, syncCheckpointReceived, syncedValue, syncKeyReceived, syncMutate } from "./sync.js";

const { b64uDecode, b64uEncode, bytesEqual } = encoding;

let receiving = Promise.resolve();
/** Contents whose effect needs the network after the envelope is stored. */
const followUps = [];

/** A `deliver` frame's envelopes, handled in order after those before. @param {any[]} envelopes */
export function onDeliver(envelopes) {
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
      sendFrame({ type: frames.ACK, seqs: [envelope.seq] });
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
export function refillPrekeys() {
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
    const name = await displayName(sender);
    await addNotice(
      sender,
      `A message that claimed to be from ${name} was refused: it came from a device that is not one of ${name}'s.`,
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
    await addNotice(sender, `A message from ${await displayName(sender)} could not be read.`, "warn");
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
    console.warn("Parley: a message could not be decrypted", error);
    const name = await displayName(sender);
    await addNotice(
      sender,
      `A message from ${name} could not be decrypted, so ${name} was not told it arrived.`,
      "warn",
    );
    return none;
  }
  const id = b64uEncode(content.messageId);
  const seenKey = engine.seenKey(senderDevice, id);
  const base = await engineState([sender]);
  // The engine decides what the content does (section 22.6): on the facts the store holds.
  const decided = new engine.ContentDecrypted(sender, senderDevice, content.type, id, content.timestamp, content.body, Date.now());
  const [, applied] = engine.handle(
    base.with({
      seen: (await store.read("seen", seenKey)) ? new Set([seenKey]) : new Set(),
      contacts: await receiptContacts(sender),
      historyFrom: await awaitedHistoryFrom(me, base),
    }),
    decided,
  );
  // a repeat, or a content from a blocked account: acked, nothing applied, no stamp followed
  const dropped = applied.some((e) => e instanceof engine.DropDuplicate || e instanceof engine.DropBlocked);
  // Who may send which content, and the stamp (section 22.4).
  const received = new engine.ContentReceived(
    sender,
    senderDevice,
    content.type,
    content.senderListVersion,
    content.senderListHash,
    Date.now(),
  );
  const [, effects] = dropped ? [null, []] : engine.handle(base, received);
  const verdict = effects.find((e) => e instanceof engine.ContentVerdict);
  const plan = dropped
    ? null
    : verdict?.verdict === "refuse"
      ? refusedPlan(sender)
      : await planEffects(me, sender, applied);
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
  for (const detail of plan.announce) notify(detail);
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
 * The device that approved this one, while this device awaits its history key (only that
 * device may send it, once; section 12): the primary, whose key is the account key.
 * @param {any} me @param {engine.DeviceState} state @returns {Promise<string | null>}
 */
async function awaitedHistoryFrom(me, state) {
  if (!me.awaitingHistory || (await store.read("meta", "history"))) return null;
  const own = state.lists.get(me.accountId);
  const primary = own?.deviceList.devices.find((d) => bytesEqual(d.identityKey, own.accountKey));
  return primary?.deviceId ?? null;
}

/**
 * The engine's effects of one content as writes for one transaction.
 * @param {any} me @param {string} sender @param {any[]} effects
 * @returns {Promise<{stores: string[], write: (s: Record<string, IDBObjectStore>) => void,
 *   announce: any[], delivered?: string, after?: () => Promise<void>}>}
 */
async function planEffects(me, sender, effects) {
  /** @type {{stores: string[], write: (s: Record<string, IDBObjectStore>) => void, announce: any[], delivered?: string, after?: () => Promise<void>}} */
  let plan = { stores: [], write: () => {}, announce: [] };
  for (const effect of effects) {
    if (effect instanceof engine.StoreMessage) {
      plan = await messagePlan(effect.record);
    } else if (effect instanceof engine.SendContent && effect.body.kind === "delivered") {
      // Receipts only to contacts, and only for what decrypted (DESIGN section 7).
      plan = plan.stores.length ? { ...plan, delivered: effect.body.message_ids[0] } : plan;
    } else if (effect instanceof engine.ApplyReceipt) {
      plan = await receiptPlan(me.accountId, sender, { kind: effect.receipt, message_ids: effect.messageIds }, sender);
    } else if (effect instanceof engine.MarkRead) {
      plan = await readElsewherePlan(effect.peer, effect.messageIds);
    } else if (effect instanceof engine.AcceptHistoryKey) {
      const body = /** @type {any} */ (effect.body);
      const from = effect.senderDevice;
      plan = { ...plan, after: () => acceptHistoryKey(from, body) };
    } else if (effect instanceof engine.AcceptSyncKey) {
      const body = /** @type {any} */ (effect.body);
      const from = effect.senderDevice;
      plan = { ...plan, after: () => syncKeyReceived(from, body) };
    } else if (effect instanceof engine.AcceptSyncCheckpoint) {
      const body = /** @type {any} */ (effect.body);
      const from = effect.senderDevice;
      plan = { ...plan, after: () => syncCheckpointReceived(from, body) };
    } else if (effect instanceof engine.ContentVerdict) {
      console.warn(`Parley: a content from ${sender} was refused (${effect.reason}).`);
    }
  }
  return plan;
}

/**
 * The engine's `contacts` for a content from `peer`: a contact whose security code is the
 * confirmed one (a pending key change sends no receipts until the person confirms it).
 * @param {string} peer @returns {Promise<Set<string>>}
 */
async function receiptContacts(peer) {
  const contact = await store.read("contacts", peer);
  return contact && !contact.keyChanged ? new Set([peer]) : new Set();
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
    after: async () =>
      addNotice(
        sender,
        `${await displayName(sender)}'s device sent something only your own devices may send; it was refused.`,
        "warn",
      ),
  };
}

/**
 * A receipt from `peer` for messages `author` wrote in the conversation with `peer`.
 * @param {string} author @param {string} peer @param {any} body @param {string} announcePeer
 */
async function receiptPlan(author, peer, body, announcePeer) {
  const updates = [];
  for (const mid of body.message_ids) {
    const message = await store.read("messages", messageKey(author, mid));
    if (!message || message.conversation !== peer || !message.outgoing) continue;
    if (STATUS_RANK[body.kind] > (STATUS_RANK[message.status] ?? 0)) {
      updates.push({ ...message, status: body.kind, reason: undefined });
    }
  }
  return {
    stores: ["messages"],
    write: (/** @type {any} */ s) => updates.forEach((m) => s.messages.put(m)),
    announce: [{ kind: Change.MESSAGES, peer: announcePeer }],
  };
}

/**
 * A message to store (a text from a contact or an own device's sent transcript, or an
 * unsupported one), unless it is stored already.
 * @param {any} record the engine's message record
 */
async function messagePlan(record) {
  const nothing = { stores: [], write: () => {}, announce: [] };
  const peer = record.conversation;
  if (await store.read("messages", messageKey(record.author, record.id))) return nothing;
  const conversation = (await store.read("conversations", peer)) ?? emptyConversation(peer);
  const fields = { author: record.author, id: record.id, conversation: peer, authorDevice: record.author_device };
  const message =
    record.kind === "text"
      ? textRecord({
          ...fields,
          outgoing: record.outgoing,
          text: record.text,
          timestamp: record.timestamp,
          status: record.status,
          readSent: record.outgoing,
        })
      : unsupportedRecord({ ...fields, timestamp: record.timestamp, contentType: record.content_type });
  // a text the account's read position covers was read on another own device (22.8)
  const position = conversation.readUpTo == null ? null : { read_up_to: conversation.readUpTo };
  const covered = engine.readState([{ ...record, read: record.outgoing }], position).read.length > 0;
  if (covered) message.readSent = true;
  const unread = conversation.unread + (record.outgoing || covered ? 0 : 1);
  return {
    stores: ["messages", "conversations"],
    write: (/** @type {Record<string, IDBObjectStore>} */ s) => {
      s.messages.put(message);
      s.conversations.put(withMessage(conversation, message, unread));
    },
    announce: [record.outgoing ? { kind: Change.MESSAGES, peer } : { kind: Change.MESSAGES, peer, incoming: true }],
  };
}

/**
 * Another own device read these messages of the conversation with `peer`.
 * @param {string} peer @param {string[]} ids
 */
async function readElsewherePlan(peer, ids) {
  const conversation = (await store.read("conversations", peer)) ?? emptyConversation(peer);
  const read = [];
  for (const mid of ids) {
    const message = await store.read("messages", messageKey(peer, mid));
    if (message && !message.readSent) read.push({ ...message, readSent: true });
  }
  const unread = Math.max(0, conversation.unread - read.length);
  return {
    stores: ["messages", "conversations"],
    write: (/** @type {Record<string, IDBObjectStore>} */ s) => {
      read.forEach((m) => s.messages.put(m));
      s.conversations.put({ ...conversation, unread });
    },
    announce: [{ kind: Change.MESSAGES, peer }],
  };
}

/**
 * Another own device read the conversation with `peer` up to a timestamp: what came until
 * then is read here too, and the unread count is what came after.
 * @param {{index: string[], value: Record<string, any> | null}} change
 */
async function applySyncedRead({ index: [peer], value }) {
  const upTo = engine.readUpTo(value);
  if (upTo === null) return;
  const conversation = await store.read("conversations", peer);
  if (!conversation) return;
  const range = IDBKeyRange.bound([peer, -Infinity], [peer, Infinity]);
  const all = await store.readIndex("messages", "byConversation", range);
  const { read, unread } = engine.readState(all.map(readMessage), value);
  const covered = new Set(read);
  const changed = conversation.unread !== unread.length || conversation.readUpTo !== upTo;
  if (!read.length && !changed) return;
  await store.transact(["messages", "conversations"], (s) => {
    all.filter((m) => !m.outgoing && covered.has(m.id)).forEach((m) => s.messages.put({ ...m, readSent: true }));
    s.conversations.put({ ...conversation, unread: unread.length, readUpTo: upTo });
  });
  notify({ kind: Change.MESSAGES, peer });
}

/** A stored message as the engine's read rules take it (`read`: read here). @param {any} m */
function readMessage(m) {
  return { id: m.id, kind: m.kind, outgoing: m.outgoing, timestamp: m.timestamp, read: Boolean(m.readSent) };
}
onSynced("conversations", applySyncedRead);

/**
 * The conversation is open and visible: mark its messages read here, and tell the contact
 * (and, through the transcript, the own devices) unless read receipts are off.
 * @param {string} peer
 */
export async function markRead(peer) {
  const range = IDBKeyRange.bound([peer, -Infinity], [peer, Infinity]);
  const all = await store.readIndex("messages", "byConversation", range);
  const unread = all.filter((m) => m.kind === "text" && !m.outgoing && !m.readSent);
  const conversation = await store.read("conversations", peer);
  if (!unread.length && !conversation?.unread) return;
  closeNotification(peer);
  // the read position follows the account to its other devices, only ever forward (22.8)
  const written = engine.readPosition(all.map(readMessage), await syncedValue("conversations", [peer]));
  await store.transact(["messages", "conversations"], (s) => {
    unread.forEach((m) => s.messages.put({ ...m, readSent: true }));
    if (conversation) {
      const readUpTo = written?.read_up_to ?? conversation.readUpTo;
      s.conversations.put({ ...conversation, unread: 0, ...(readUpTo == null ? {} : { readUpTo }) });
    }
  });
  notify({ kind: Change.MESSAGES, peer });
  if (written) await syncMutate([["conversations", [peer], written]]);
  const state = (await engineState([])).with({
    readReceipts: Boolean((await settings()).readReceipts),
    contacts: await receiptContacts(peer),
  });
  const read = new engine.MessagesRead(peer, unread.map((m) => m.id), Date.now());
  for (const effect of engine.handle(state, read)[1]) {
    if (effect instanceof engine.SendContent) await queueReceipt(effect.recipient, effect.body.kind, effect.body.message_ids);
  }
}
