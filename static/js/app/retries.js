// This browser as the adapter of the engine's retry rules (docs/protocol.md 24): an envelope
// that did not decrypt is kept as a retry record and asked for again; a retry request from
// another device is answered from the resend cache (resendcache.js). The engine decides
// when to ask, how often and what to answer; this module stores what it says and queues the
// one-device sends (outbox.js), in the caller's transaction with the rest of the envelope.
//
//   retries  "<sender device>/<envelope id>" → RetryRecord JSON {sender, sender_device,
//            envelope_id, sent_at (the deliver entry's, ms), count, asked_at,
//            state: waiting | failed}

import { engine } from "../protocol/index.js";
import { loadKeys, signedPrekeyUpload } from "./device.js";
import { Change, notify } from "./events.js";
import { engineState } from "./lists.js";
import { resendItem, retryRequestItem, ringLeader } from "./outbox.js";
import { emptyConversation } from "./records.js";
import { cachedEntry } from "./resendcache.js";
import { self } from "./self.js";
import { withStateLock } from "./statelock.js";
import * as store from "./store.js";

const { retryKey } = engine;
export { retryKey };

/**
 * @typedef {object} Writes what one event's effects store, for one transaction
 * @property {string[]} stores
 * @property {(s: Record<string, IDBObjectStore>) => void} write
 * @property {any[]} announce changes to tell every tab after the commit
 */

/** Every retry record this device holds (a few: MAX_WAITING per sender device at most). */
export async function retryRecords() {
  const all = await store.readAll("retries");
  return new Map(all.map((json) => [retryKey(json.sender_device, json.envelope_id), engine.RetryRecord.fromJSON(json)]));
}

/** The records whose lines stand in the conversation with `peer`, by sent_at. @param {string} peer */
export async function retryLines(peer) {
  const all = await store.readAll("retries");
  return all.filter((r) => r.sender === peer).sort((a, b) => a.sent_at - b.sent_at);
}

/** The engine's state with the retry records. @param {string[]} accounts */
export async function retryState(accounts) {
  return (await engineState(accounts)).with({ retries: await retryRecords() });
}

/**
 * The writes of the requester's effects (24.2): records stored or forgotten (their lines
 * shown or gone), retry requests queued with this device's current signed prekey.
 * @param {any[]} effects @returns {Promise<Writes & {asks: number}>}
 */
export async function requesterWrites(effects) {
  /** @type {any[]} */
  const puts = [];
  /** @type {string[]} */
  const deletes = [];
  const items = [];
  const peers = new Set();
  for (const effect of effects) {
    if (effect instanceof engine.StoreRetry) {
      const json = effect.record.toJSON();
      puts.push(json);
      peers.add(json.sender);
    } else if (effect instanceof engine.ForgetRetry) {
      const key = retryKey(effect.senderDevice, effect.envelopeId);
      const held = await store.read("retries", key);
      if (held) peers.add(held.sender);
      deletes.push(key);
    } else if (effect instanceof engine.SendRetryRequest) {
      const keys = await loadKeys(await self());
      const signedPrekey = signedPrekeyUpload(keys);
      // with the last-resort KEM prekey, a new session from the ask is version 2 (27.5)
      const kemPrekey = keys.lastResortKemPrekey?.toPublic().toJSON() ?? null;
      const { recipient, device, envelopeId, count } = effect;
      items.push(retryRequestItem({ recipient, device, envelopeId, count, signedPrekey, kemPrekey }));
    }
  }
  const own = (await self()).accountId;
  return {
    stores: puts.length || deletes.length || items.length ? ["retries", "outbox", "conversations"] : [],
    write: (s) => {
      for (const key of deletes) s.retries.delete(key);
      for (const json of puts) {
        s.retries.put(json, retryKey(json.sender_device, json.envelope_id));
        // a contact's line stands in the conversation, which a first message may not have made yet
        if (json.sender !== own) ensureConversation(s.conversations, json.sender);
      }
      for (const item of items) s.outbox.add(item);
    },
    announce: [...peers].map((peer) => ({ kind: Change.MESSAGES, peer })),
    asks: items.length,
  };
}

/** @param {IDBObjectStore} conversations @param {string} peer */
function ensureConversation(conversations, peer) {
  const request = conversations.get(peer);
  request.onsuccess = () => {
    if (!request.result) conversations.put(emptyConversation(peer));
  };
}

/**
 * A retry request the engine accepted (`accept_retry_request`): what the cache holds for
 * it, handed to the engine as `retry_requested`, and the writes of its answer (24.3): the
 * raised count and the resend queued.
 * @param {engine.DeviceState} state @param {any} effect @returns {Promise<Writes>}
 */
export async function resendWrites(state, effect) {
  const { sender, senderDevice, body } = effect;
  const cached = await cachedEntry(body.envelope_id);
  const requested = new engine.RetryRequested(sender, senderDevice, body, cached, Date.now());
  const [, effects] = engine.handle(state, requested);
  /** @type {Map<string, number>} device → count */
  const counts = new Map();
  const items = [];
  for (const e of effects) {
    if (e instanceof engine.StoreResendCount) counts.set(e.device, e.count);
    else if (e instanceof engine.Resend) {
      const alias = cached ? { sentAt: cached.sent_at, count: counts.get(e.device) ?? 0 } : null;
      const { recipient, device, envelopeId, content, newSession, signedPrekey, kemPrekey } = e;
      items.push(resendItem({ recipient, device, envelopeId, content, newSession, signedPrekey, kemPrekey, alias }));
    }
  }
  return {
    stores: ["resendCache", "outbox"],
    write: (s) => {
      if (cached && counts.size) s.resendCache.put({ ...cached, resends: { ...cached.resends, ...Object.fromEntries(counts) } });
      for (const item of items) s.outbox.add(item);
    },
    announce: [],
  };
}

/**
 * Handle a requester's event (`retry_due`, `retry_again`) under the state lock and store
 * what it says; the leader sends the requests it queued.
 * @param {engine.Event} event
 */
async function runRetries(event) {
  const asked = await withStateLock(async () => {
    const held = await retryRecords();
    if (!held.size) return 0;
    const state = (await engineState([])).with({ retries: held });
    const writes = await requesterWrites(engine.handle(state, event)[1]);
    if (!writes.stores.length) return 0;
    await store.transact(writes.stores, writes.write);
    writes.announce.forEach(notify);
    return writes.asks;
  });
  if (asked) ringLeader();
}

/** The timer of the leader tab while its socket is open: ask again what is due (24.2). */
export function retryDue() {
  return runRetries(new engine.RetryDue(Date.now())).catch((error) => console.warn("Parley: retries failed", error));
}

/**
 * The person asked again for a message that could not be decrypted.
 * @param {string} senderDevice @param {string} envelopeId
 */
export function askAgain(senderDevice, envelopeId) {
  return runRetries(new engine.RetryAgain(senderDevice, envelopeId, Date.now()));
}

/**
 * An envelope from a device of a verified list did not decrypt (not a replay): the engine's
 * `decrypt_failed`, its record and request stored (inside the caller's state lock).
 * @param {{sender: string, senderDevice: string, envelope: any, reason: string}} failure
 */
export async function decryptFailed({ sender, senderDevice, envelope, reason }) {
  const sentAt = Number.isSafeInteger(envelope.sent_at) ? envelope.sent_at : Date.now();
  const event = new engine.DecryptFailed(sender, senderDevice, String(envelope.id), sentAt, reason, Date.now());
  const writes = await requesterWrites(engine.handle(await retryState([sender]), event)[1]);
  if (writes.stores.length) await store.transact(writes.stores, writes.write);
  writes.announce.forEach(notify);
  return writes.asks;
}
