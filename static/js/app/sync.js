// This browser as an adapter of the sync machine (static/js/protocol/engine/sync.js,
// docs/protocol.md section 22.8): what follows the account (contacts, read positions,
// settings, each device's last use) read from and written to the account's state log. It runs the
// machine under the "parley-sync" Web Lock (several tabs are one device), performs its
// requests, keeps its state in IndexedDB meta "sync", and hands what changed to the module
// that owns each store (contacts.js, inbox.js, self.js register with onSynced). No sync rule
// lives here.

import { ContentType, engine, MAX_SNAPSHOT_BYTES, ready, systemRng } from "../protocol/index.js";
import { ApiError, api } from "./api.js";
import { Change, notify } from "./events.js";
import * as store from "./store.js";

/** @typedef {{collection: string, index: string[], value: Record<string, any> | null}} SyncChange */

/** collection → what applies a change of it to this browser's stores */
const appliers = new Map();
/** @type {((body: Record<string, any>, contentType: number) => Promise<void>) | null} */
let keySharer = null; // none until outbox.js loads: what is to be sent waits in meta "sync-owed"

/**
 * Who applies changes of `collection` (the module that owns the store they land in).
 * @param {string} collection @param {(change: SyncChange) => Promise<void>} apply
 */
export function onSynced(collection, apply) {
  appliers.set(collection, apply);
}

/**
 * Who sends the sync key (type 7) and checkpoints (type 8) to the own devices (outbox.js).
 * @param {(body: Record<string, any>, contentType: number) => Promise<void>} share
 */
export function onKeyShared(share) {
  keySharer = share;
}

/** @returns {Promise<engine.SyncState | null>} */
async function loadState() {
  const me = await store.getSelf();
  if (!me) return null;
  const stored = await store.read("meta", "sync");
  return stored ? engine.SyncState.fromJSON(stored) : new engine.SyncState({ accountId: me.accountId, deviceId: me.deviceId });
}

/** The stored sync state's last refusal, [error, message], or null (for the notice). */
export async function lastRefusal() {
  return (await loadState())?.refused ?? null;
}

/** @param {string} collection @param {string[]} index */
export async function syncedValue(collection, index) {
  return (await loadState())?.account.get(collection, index) ?? null;
}

/**
 * What is not yet handed to the machine (meta "sync-queue"): the person's changes and the own
 * devices as just listed, kept at once in their own transaction, and a sync key or checkpoint
 * from an own device, kept in the transaction of the envelope that brought it (before its
 * ack) — because a page may close (a click on another chat, the page a new device lands on)
 * while an earlier run still holds the machine's lock; the next run takes them, on this page
 * or the next. (A device's removal told only to a run that never ran was a re-key lost: the
 * next page's list is no news.)
 * @typedef {{id: string, now: number, mutations?: [string, string[], Record<string, any> | null][],
 *   key?: {senderDevice: string, body: any}, checkpoint?: {senderDevice: string, body: any},
 *   devices?: {listed: string[], suspended: string[]}}} QueuedMutations
 */
const QUEUE = "sync-queue";

/** @returns {Promise<QueuedMutations[]>} */
async function queued() {
  return (await store.read("meta", QUEUE)) ?? [];
}

/**
 * What the stored state holds and this browser's stores may not yet (meta "sync-owed"): the
 * [collection, index] of each change still to apply, and each key (type 7) or checkpoint
 * (type 8) body still to send to the own devices. Kept in the transaction of the state that
 * owes them, because that state never reads those changes from the log again nor shares that
 * key again, and a page may close while a run still waits on the server (a new device's first
 * page, left at once; the devices page left during a re-key): the run hands them on at its
 * end, or the next run does, on this page or the next (a change with the value the state holds
 * then; a body sent twice is harmless: a key joins the ring once, a checkpoint is compared).
 * @typedef {{changes: [string, string[]][], shares: [Record<string, any>, number][]}} Owed
 */
const OWED = "sync-owed";

/** @returns {Promise<Owed>} */
async function loadOwed() {
  const stored = await store.read("meta", OWED);
  return { changes: stored?.changes ?? [], shares: stored?.shares ?? [] };
}

/**
 * A filter of a run's effects that takes each change (once per index) and each body to send
 * into `owing`, and leaves the effects still to perform.
 * @param {Owed} owing
 */
function owedTaker(owing) {
  const held = new Set(owing.changes.map((key) => JSON.stringify(key)));
  return (/** @type {any[]} */ effects) =>
    effects.filter((effect) => {
      if (effect instanceof engine.ShareSyncKey) {
        owing.shares.push([effect.body, ContentType.ACCOUNT_SYNC_KEY]);
      } else if (effect instanceof engine.ShareSyncCheckpoint) {
        owing.shares.push([effect.body, ContentType.ACCOUNT_SYNC_CHECKPOINT]);
      } else if (effect instanceof engine.SyncChanged) {
        for (const { collection, index } of effect.changes) {
          const key = JSON.stringify([collection, index]);
          if (!held.has(key)) owing.changes.push([collection, [...index]]);
          held.add(key);
        }
      } else return true;
      return false;
    });
}

/**
 * The state and what it owes, for the transaction `s` (its stores include "meta").
 * @param {Record<string, IDBObjectStore>} s @param {any} json @param {Owed} owing
 */
function keep(s, json, owing) {
  s.meta.put(json, "sync");
  s.meta.put(owing, OWED);
}

/**
 * Handle the queued changes and one event (none: only the queue), and every answer they lead
 * to, then apply what changed (and what an earlier run left to apply).
 * @param {((seed: Uint8Array) => engine.SyncEvent) | null} makeEvent
 */
function run(makeEvent) {
  const work = async () => {
    await ready();
    let state = await loadState();
    if (!state) return;
    const owing = await loadOwed();
    const owe = owedTaker(owing);
    /** @type {any[]} */
    const queue = [];
    const taken = await queued();
    if (taken.length) {
      // the queued changes and the state that holds them are stored in one transaction
      for (const item of taken) {
        let effects;
        [state, effects] = engine.handleSync(state, queuedEvent(item, systemRng(32)));
        queue.push(...owe(effects).filter((e) => !(e instanceof engine.StoreSync)));
      }
      const ids = new Set(taken.map((q) => q.id));
      const json = state.toJSON();
      await store.transact(["meta"], (s) => {
        keep(s, json, owing);
        const get = s.meta.get(QUEUE);
        get.onsuccess = () => s.meta.put((get.result ?? []).filter((/** @type {QueuedMutations} */ q) => !ids.has(q.id)), QUEUE);
      });
    }
    if (makeEvent) {
      let effects;
      [state, effects] = engine.handleSync(state, makeEvent(systemRng(32)));
      queue.push(...owe(effects));
    }
    while (queue.length) {
      const effect = queue.shift();
      if (effect instanceof engine.StoreSync) {
        // the machine stores its state first in each step, with what that step owes
        const json = effect.state.toJSON();
        await store.transact(["meta"], (s) => keep(s, json, owing));
      } else if (effect instanceof engine.HttpRequest) {
        const [status, body] = await perform(effect);
        let more;
        const answer = new engine.SyncAnswered(effect.requestId, status, body, Date.now(), systemRng(32));
        [state, more] = engine.handleSync(state, answer);
        queue.unshift(...owe(more));
      } else if (effect instanceof engine.Notice) {
        if (effect.code !== "sync_key_awaited") console.warn(`Parley: sync ${effect.code}`, effect.data);
      }
    }
    if (owing.changes.length) {
      const account = state.account;
      for (const [collection, index] of owing.changes) {
        try {
          await appliers.get(collection)?.({ collection, index, value: account.get(collection, index) });
        } catch (error) {
          console.warn("Parley: a synced change could not be applied", { collection, index }, error);
        }
      }
      owing.changes = [];
      await store.write("meta", owing, OWED);
    }
    notify({ kind: Change.SYNC, refused: state.refused });
    if (owing.shares.length && keySharer) {
      for (const [body, contentType] of owing.shares) await keySharer(body, contentType);
      owing.shares = [];
      await store.write("meta", owing, OWED);
    }
  };
  const locked = "locks" in navigator ? navigator.locks.request("parley-sync", work) : work();
  return locked.catch((error) => console.warn("Parley: account sync failed", error));
}

/** The machine's event for a queued item. @param {QueuedMutations} item @param {Uint8Array} seed */
function queuedEvent(item, seed) {
  if (item.key) return new engine.SyncKeyReceived(item.key.senderDevice, item.key.body, item.now, seed);
  if (item.checkpoint) {
    return new engine.SyncCheckpointReceived(item.checkpoint.senderDevice, item.checkpoint.body, item.now, seed);
  }
  if (item.devices) return new engine.SyncDevicesListed(item.devices.listed, item.devices.suspended, item.now, seed);
  return new engine.SyncMutated(item.mutations ?? [], item.now, seed);
}

/** A page of the log may hold one snapshot of up to 8 MiB, as base64url in JSON (19.3). */
const STATE_ANSWER_BYTES = Math.ceil((MAX_SNAPSHOT_BYTES * 4) / 3) + 1024 * 1024;

/** @param {engine.HttpRequest} effect @returns {Promise<[number, any]>} */
async function perform(effect) {
  try {
    const options =
      effect.method === "GET" ? { maxBytes: STATE_ANSWER_BYTES } : { method: effect.method, body: effect.body };
    return [effect.method === "GET" ? 200 : 201, await api(effect.path, options)];
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return [error.status, { error: { code: error.code, message: error.message, data: error.data } }];
  }
}

/**
 * The person changed what follows the account: each [collection, index, value | null].
 * @param {[string, string[], Record<string, any> | null][]} mutations
 */
export function syncMutate(mutations) {
  return queueAndRun({ id: crypto.randomUUID(), mutations, now: Date.now() });
}

/**
 * Add `item` to the queue in the transaction `s` (its stores include "meta").
 * @param {Record<string, IDBObjectStore>} s @param {QueuedMutations} item
 */
function enqueue(s, item) {
  const get = s.meta.get(QUEUE);
  get.onsuccess = () => s.meta.put([...(get.result ?? []), item], QUEUE);
}

/** Keep `item` in the queue, then run the machine on the queue. @param {QueuedMutations} item */
async function queueAndRun(item) {
  await store.transact(["meta"], (s) => enqueue(s, item));
  return run(null);
}

/** Read the log: `version` from a state_changed frame, or null on (re)connect and load. @param {number | null} version */
export function syncFetch(version) {
  return run((seed) => new engine.SyncFetchWanted(version, Date.now(), seed));
}

/**
 * An account sync key (`kind` "key") or checkpoint ("checkpoint") the device engine accepted
 * from an own device, kept in the transaction `s` of the envelope that brought it (its stores
 * include "meta"); `syncQueued` then runs the machine on it.
 * @param {Record<string, IDBObjectStore>} s @param {"key" | "checkpoint"} kind
 * @param {string} senderDevice @param {any} body
 */
export function queueReceived(s, kind, senderDevice, body) {
  enqueue(s, { id: crypto.randomUUID(), now: Date.now(), [kind]: { senderDevice, body } });
}

/** Run the machine on what is queued (a key or checkpoint just kept with its envelope). */
export function syncQueued() {
  return run(null);
}

/** A device was just linked by this one: send it the sync key (made first if the account has none). */
export function shareSyncKey() {
  return run((seed) => new engine.SyncKeyShareWanted(Date.now(), seed));
}

/**
 * The own account's list as this browser just verified it, and the devices the server reports
 * logged out: the machine re-keys when an own device left (22.8). Not awaited by callers that
 * hold the state lock: a run may queue a key share, which takes it.
 * @param {string[]} listed @param {string[]} suspended
 */
export function syncDevicesListed(listed, suspended) {
  return queueAndRun({ id: crypto.randomUUID(), devices: { listed, suspended }, now: Date.now() });
}

/** The person uses this device: the machine writes its last use when one is due (22.8). */
export function syncDeviceUsed() {
  return run((seed) => new engine.SyncDeviceUsed(Date.now(), seed));
}

/**
 * Each own device's last use as it wrote it into the synced state (ms), by device id.
 * @returns {Promise<Map<string, number>>}
 */
export async function lastUses() {
  const found = new Map();
  const state = await loadState();
  if (!state) return found;
  for (const [index, value] of state.account.collection(engine.DEVICES)) {
    const used = engine.lastUsed(value);
    if (used !== null && index.length === 1) found.set(index[0], used);
  }
  return found;
}
