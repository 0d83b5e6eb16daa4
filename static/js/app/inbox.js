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
  ProtocolError,
  ReplayDetected,
} from "../protocol/index.js";
import { ApiError, api } from "./api.js";
import { loadKeys, refillPrekeys as refillPrekeysLocked } from "./device.js";
import { Change, notify } from "./events.js";
import { groupKeyReceived, groupMessageReceived, groupReceiptReceived } from "./groups.js";
import { acceptHistoryKey } from "./history.js";
import { engineState, refusalOf, runEngine, senderEntry } from "./lists.js";
import { displayName } from "./names.js";
import { addNotice } from "./notices.js";
import { closeNotification } from "./notifications.js";
import { flush, queueReceipt } from "./outbox.js";
import {
  STATUS_RANK,
  attachmentRecord,
  emptyConversation,
  messageKey,
  textRecord,
  unsupportedRecord,
  withMessage,
} from "./records.js";
import { decryptFailed, requesterWrites, resendWrites, retryState } from "./retries.js";
import { self, settings } from "./self.js";
import { decryptFrom } from "./sessions.js";
import { sendFrame } from "./socket.js";
import { withStateLock } from "./statelock.js";
import * as store from "./store.js";
import { onSynced, queueReceived, syncedValue, syncMutate, syncQueued } from "./sync.js";

const { b64uDecode, b64uEncode, bytesEqual } = encoding;

let receiving = Promise.resolve();
/** Queue positions handled and acked by this page, oldest first: a `fetch` or a re-push
 * delivers an envelope again until its ack arrives, and it is not handled twice (a group
 * message handled again would be told as a replay). */
const processed = new Set();
const PROCESSED_MEMORY = 20000;
/** Contents whose effect needs the network after the envelope is stored. */
const followUps = [];

/** A `deliver` frame's envelopes, handled in order after those before. @param {any[]} envelopes */
export function onDeliver(envelopes) {
  receiving = receiving.then(async () => {
    const receipts = new Map();
    let usedPrekey = false;
    for (const envelope of envelopes) {
      if (processed.has(envelope.seq)) {
        sendFrame({ type: frames.ACK, seqs: [envelope.seq] });
        continue;
      }
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
      processed.add(envelope.seq);
      if (processed.size > PROCESSED_MEMORY) processed.delete(processed.values().next().value);
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
  return refillPrekeysLocked(api).catch((error) => console.warn("Parley: prekey top-up failed", error));
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
  // a group message (docs/protocol.md 25.9): its pairwise part, when one rode along (a sender
  // key, 25.4), first and stored; then the group message itself, for the group machine
  const groupOnly = envelope.group !== undefined && envelope.ciphertext === undefined;
  const outcome = groupOnly ? none : await receivePairwise(me, envelope, entry);
  if (envelope.group !== undefined) {
    const refused = await groupMessageReceived(sender, senderDevice, String(envelope.group));
    if (refused) console.warn(`Parley: a group message from ${sender} was refused (${refused}).`);
  }
  return outcome;
}

/**
 * The pairwise ciphertext of a deliver entry from a device of the sender's verified list.
 * @param {any} me @param {any} envelope @param {{identityKey: Uint8Array}} entry
 * @returns {Promise<{delivered: string | null, usedPrekey: boolean}>}
 */
async function receivePairwise(me, envelope, entry) {
  const none = { delivered: null, usedPrekey: false };
  const sender = String(envelope.sender);
  const senderDevice = String(envelope.sender_device);
  const keys = await loadKeys(me);
  let decrypted;
  let content;
  try {
    const data = b64uDecode(String(envelope.ciphertext), { what: "envelope ciphertext" });
    const wire = decodeMessage(data);
    const baseKeyUsed = wire instanceof PrekeyMessage && Boolean(await store.read("baseKeys", b64uEncode(wire.baseKey)));
    decrypted = decryptFrom({
      data,
      accountId: sender,
      deviceId: senderDevice,
      listedKey: entry.identityKey,
      speaksV2: entry.speaksV2,
      record: await store.read("sessions", senderDevice),
      keys,
      baseKeyUsed,
    });
    content = decodeContent(decrypted.plaintext);
  } catch (error) {
    // A replay is what at-least-once delivery and a misbehaving server look like: silent.
    if (error instanceof ReplayDetected) return none;
    // Anything else is asked for again (24.2): the record and its request are stored before the ack.
    console.warn("Parley: a message could not be decrypted", error);
    const reason = error instanceof ProtocolError ? error.code : "not_decrypted";
    await decryptFailed({ sender, senderDevice, envelope, reason });
    return none;
  }
  const plan = await contentPlan(me, sender, senderDevice, content, { outer: true });
  const now = Date.now();
  await store.transact(["sessions", "baseKeys", "seen", "device", ...plan.stores], (s) => {
    s.sessions.put(decrypted.record);
    if (decrypted.baseKey) s.baseKeys.put(now, decrypted.baseKey);
    const otp = decrypted.oneTimePrekeyId;
    const kem = decrypted.oneTimeKemPrekeyId;
    if (otp !== null || kem !== null) {
      const keys = { ...me.keys };
      keys.one_time_prekeys = keys.one_time_prekeys.filter((/** @type {any} */ k) => k.id !== otp);
      if (keys.kem_prekeys) keys.kem_prekeys = keys.kem_prekeys.filter((/** @type {any} */ k) => k.id !== kem);
      s.device.put({ ...me, keys }, "self");
    }
    for (const key of plan.seen) s.seen.put(now, key);
    plan.write(s);
  });
  const usedPrekey = decrypted.oneTimePrekeyId !== null || decrypted.oneTimeKemPrekeyId !== null;
  for (const detail of plan.announce) notify(detail);
  for (const work of plan.locked) {
    try {
      await work();
    } catch (error) {
      // a sender key not taken is asked for again by the retries of section 24
      console.warn("Parley: a content could not be applied", error);
    }
  }
  followUps.push(...plan.after);
  // The stamps' fetches, after the envelope is stored: run again on the lists stored by then.
  for (const received of plan.received) {
    followUps.push(async () => {
      const run = await runEngine(received, [sender]);
      for (const effect of run.effects) {
        const error = effect.data?.reason === "notice" ? refusalOf(effect, run.failures) : null;
        if (error) console.warn("Parley: own device list refresh failed", error);
      }
    });
  }
  return { delivered: plan.delivered ?? null, usedPrekey };
}

/**
 * @typedef {object} Plan the writes of one content (and of a resend's inner one), for the
 *   envelope's transaction, and what comes after its commit
 * @property {string[]} stores
 * @property {(s: Record<string, IDBObjectStore>) => void} write
 * @property {any[]} announce
 * @property {string[]} seen content keys to remember (10.1)
 * @property {engine.ContentReceived[]} received stamps to follow after the commit (22.4)
 * @property {(() => Promise<void>)[]} locked work after the commit, still under the state lock
 *   and before the ack (a sender key for the group machine, before the message it came with)
 * @property {(() => Promise<void>)[]} after follow-ups that need the network
 * @property {string} [delivered] the message id a delivery receipt is owed for
 */

/** @returns {Plan} */
const nothing = () => ({ stores: [], write: () => {}, announce: [], seen: [], received: [], locked: [], after: [] });

/** Two plans as one, in order. @param {Plan} a @param {Partial<Plan>} b @returns {Plan} */
function merged(a, b) {
  return {
    stores: [...new Set([...a.stores, ...(b.stores ?? [])])],
    write: (s) => {
      a.write(s);
      b.write?.(s);
    },
    announce: [...a.announce, ...(b.announce ?? [])],
    seen: [...a.seen, ...(b.seen ?? [])],
    received: [...a.received, ...(b.received ?? [])],
    locked: [...a.locked, ...(b.locked ?? [])],
    after: [...a.after, ...(b.after ?? [])],
    delivered: b.delivered ?? a.delivered,
  };
}

/**
 * What a decrypted content does, as the engine decides it (section 22.6) on the facts the
 * store holds; a resend's inner content goes the same way, as a content from that device.
 * @param {any} me @param {string} sender @param {string} senderDevice
 * @param {import("../protocol/index.js").Content} content @param {{outer: boolean}} where
 * @returns {Promise<Plan>}
 */
async function contentPlan(me, sender, senderDevice, content, { outer }) {
  const id = b64uEncode(content.messageId);
  const seenKey = engine.seenKey(senderDevice, id);
  const base = await retryState([sender]);
  const decided = new engine.ContentDecrypted(sender, senderDevice, content.type, id, content.timestamp, content.body, Date.now());
  const [, applied] = engine.handle(
    base.with({
      seen: (await store.read("seen", seenKey)) ? new Set([seenKey]) : new Set(),
      contacts: await receiptContacts(sender),
      historyFrom: await awaitedHistoryFrom(me, base),
    }),
    decided,
  );
  const plan = { ...nothing(), seen: [seenKey] };
  // a repeat, or a content from a blocked account: acked, nothing applied, no stamp followed
  if (applied.some((e) => e instanceof engine.DropDuplicate || e instanceof engine.DropBlocked)) return plan;
  // Who may send which content, and the stamp (section 22.4).
  const received = new engine.ContentReceived(
    sender,
    senderDevice,
    content.type,
    content.senderListVersion,
    content.senderListHash,
    Date.now(),
  );
  const [, effects] = engine.handle(base, received);
  const verdict = effects.find((e) => e instanceof engine.ContentVerdict);
  const applies = verdict?.verdict === "refuse" ? refusedPlan(sender) : await planEffects(me, sender, applied, base, outer);
  return merged({ ...plan, received: [received] }, applies);
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
 * @param {engine.DeviceState} state the engine's state they came from
 * @param {boolean} outer false for a resend's inner content (which cannot be a resend)
 * @returns {Promise<Partial<Plan>>}
 */
async function planEffects(me, sender, effects, state, outer) {
  /** @type {Plan} */
  let plan = nothing();
  const retries = effects.filter((e) => e instanceof engine.StoreRetry || e instanceof engine.ForgetRetry);
  if (retries.length) plan = merged(plan, await requesterWrites(retries));
  for (const effect of effects) {
    if (effect instanceof engine.StoreMessage) {
      plan = merged(plan, await messagePlan(effect.record));
    } else if (effect instanceof engine.SendContent && effect.body.kind === "delivered") {
      // Receipts only to contacts, and only for what decrypted and was new (DESIGN section 7).
      if (plan.stores.includes("messages")) plan = { ...plan, delivered: effect.body.message_ids[0] };
    } else if (effect instanceof engine.ApplyReceipt) {
      const body = { kind: effect.receipt, message_ids: effect.messageIds };
      plan = merged(plan, await receiptPlan(me.accountId, sender, body, sender));
    } else if (effect instanceof engine.MarkRead) {
      plan = merged(plan, await readElsewherePlan(effect.peer, effect.messageIds));
    } else if (effect instanceof engine.AcceptHistoryKey) {
      const body = /** @type {any} */ (effect.body);
      const from = effect.senderDevice;
      plan = merged(plan, { after: [() => acceptHistoryKey(from, body)] });
    } else if (effect instanceof engine.AcceptSyncKey || effect instanceof engine.AcceptSyncCheckpoint) {
      // kept with the envelope (before its ack), then handed to the sync machine: a page left
      // at once (a new device's first pages) must not lose the account's key
      const body = /** @type {any} */ (effect.body);
      const from = effect.senderDevice;
      const kind = effect instanceof engine.AcceptSyncKey ? "key" : "checkpoint";
      plan = merged(plan, {
        stores: ["meta"],
        write: (s) => queueReceived(s, kind, from, body),
        after: [() => syncQueued()],
      });
    } else if (effect instanceof engine.AcceptGroupKey) {
      // a sender key for a group, for the group machine (25.8)
      const body = /** @type {any} */ (effect.body);
      const { sender: from, senderDevice } = effect;
      plan = merged(plan, { locked: [() => groupKeyReceived(from, senderDevice, body)] });
    } else if (effect instanceof engine.AcceptGroupReceipt) {
      // a member's receipt for own group texts, for the group machine (25.10)
      const body = /** @type {any} */ (effect.body);
      const { sender: from, senderDevice } = effect;
      plan = merged(plan, { locked: [() => groupReceiptReceived(from, senderDevice, body)] });
    } else if (effect instanceof engine.AcceptRetryRequest) {
      plan = merged(plan, await resendWrites(state, effect));
    } else if (effect instanceof engine.AcceptResend && outer) {
      // the content that did not decrypt, sent again: applied as a content from that device
      const inner = decodeContent(b64uDecode(effect.content, { what: "resent content" }));
      plan = merged(plan, await contentPlan(me, effect.sender, effect.senderDevice, inner, { outer: false }));
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
    after: [
      async () =>
        addNotice(
          sender,
          `${await displayName(sender)}'s device sent something only your own devices may send; it was refused.`,
          "warn",
        ),
    ],
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
  const peer = record.conversation;
  if (await store.read("messages", messageKey(record.author, record.id))) return {};
  const conversation = (await store.read("conversations", peer)) ?? emptyConversation(peer);
  const fields = { author: record.author, id: record.id, conversation: peer, authorDevice: record.author_device };
  const shown = { ...fields, outgoing: record.outgoing, timestamp: record.timestamp, status: record.status, readSent: record.outgoing };
  const message =
    record.kind === "text"
      ? textRecord({ ...shown, text: record.text })
      : record.kind === "attachment"
        ? attachmentRecord({ ...shown, pointer: record.attachment })
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
  const unread = all.filter((m) => (m.kind === "text" || m.kind === "attachment") && !m.outgoing && !m.readSent);
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
