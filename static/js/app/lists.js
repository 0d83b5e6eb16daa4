// This browser as an adapter of the device engine (static/js/protocol/engine, docs/protocol.md
// section 22) for device lists: it builds the engine's state from IndexedDB, performs the
// requests the engine asks for, and stores what it says to store. No device rule lives here.

import { DeviceList, encoding, engine } from "../protocol/index.js";
import { ApiError, api } from "./api.js";
import { ListRefused, listRefused, loadKeys, recordOf, storedOf } from "./device.js";
import { blockedAccounts } from "./flags.js";
import * as store from "./store.js";
import { syncDevicesListed } from "./sync.js";

const { b64uDecode } = encoding;

/** account → device ids the server reports logged out but the primary has not re-signed */
export const suspended = new Map();

/** Notices the engine gave (devices changed, security code changed...), for the messenger. */
let noticeHandler = async (/** @type {engine.Notice} */ _notice) => {};

/** @param {(notice: engine.Notice) => Promise<void>} handler */
export function onListNotice(handler) {
  noticeHandler = handler;
}

/**
 * The engine's state for this device, with the stored lists of `accounts` and its own, the
 * caller's `sends` in flight, and the accounts the person blocked.
 * @param {string[]} accounts @param {Map<string, engine.PendingSend>} [sends]
 * @returns {Promise<engine.DeviceState>}
 */
export async function engineState(accounts, sends = new Map()) {
  const me = await store.getSelf();
  if (!me) throw new ListRefused("This browser holds no Parley device.", "no_device");
  const lists = new Map();
  const contactKeys = new Map();
  for (const account of new Set([me.accountId, ...accounts])) {
    const contact = account === me.accountId ? null : await store.read("contacts", account);
    const pinnedKey = contact?.accountKey ? b64uDecode(contact.accountKey) : null;
    const record = recordOf(await store.getAcceptedList(account), {
      pinnedKey,
      suspended: suspended.get(account) ?? new Set(),
    });
    if (record) lists.set(account, record);
    // a contact synced in from another own device: its first list must carry that key
    if (pinnedKey) contactKeys.set(account, pinnedKey);
  }
  const own = lists.get(me.accountId);
  let accountKey = own?.accountKey;
  if (!accountKey) {
    if (!me.isPrimary) throw new ListRefused("This device has no list of its own account.", "no_list");
    accountKey = (await loadKeys(me)).identity.public; // a primary's key is the account key
  }
  const blocked = await blockedAccounts();
  return new engine.DeviceState({
    accountId: me.accountId,
    deviceId: me.deviceId,
    accountKey,
    lists,
    sends,
    contactKeys,
    blocked,
  });
}

/**
 * Handle one event and every answer it leads to.
 * @param {engine.Event} event
 * @param {string[]} accounts the accounts whose lists the event concerns
 * @param {Map<string, engine.PendingSend>} [sends] the caller's sends in flight
 * @returns {Promise<{effects: any[], failures: Map<string, ApiError>}>} notices, verdicts and
 *   send plans, and the API error of each account whose fetch failed
 */
export async function runEngine(event, accounts, sends) {
  const [state, effects] = engine.handle(await engineState(accounts, sends), event);
  return drive(state, effects);
}

/**
 * Perform effects the engine returned (requests, stores) until none is left.
 * @param {engine.DeviceState} state @param {any[]} effects
 */
async function drive(state, effects) {
  const queue = [...effects];
  const out = [];
  const failures = new Map();
  while (queue.length) {
    const effect = queue.shift();
    if (effect instanceof engine.HttpRequest) {
      let status = 200;
      let body;
      try {
        const options = effect.method === "GET" ? {} : { method: effect.method, body: effect.body ?? {} };
        body = await api(effect.path, options);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        failures.set(state.pending.get(effect.requestId)?.accountId, error);
        status = error.status;
        body = { error: { code: error.code, message: error.message, data: error.data } };
      }
      let more;
      [state, more] = engine.handle(state, new engine.HttpAnswered(effect.requestId, status, body, Date.now()));
      queue.unshift(...more);
    } else if (effect instanceof engine.StoreList) {
      await storeList(effect);
    } else {
      out.push(effect);
      if (effect instanceof engine.Notice) await noticeHandler(effect);
    }
  }
  return { effects: out, failures };
}

/** Keep a verified list; sessions with devices no longer listed go. @param {engine.StoreList} effect */
async function storeList({ accountId, record }) {
  await store.putAcceptedList(accountId, storedOf(record));
  suspended.set(accountId, new Set(record.suspended));
  if (accountId === (await store.getSelf())?.accountId) {
    // the sync machine re-keys when an own device left (22.8); not awaited, see syncDevicesListed
    syncDevicesListed(record.deviceList.devices.map((d) => d.deviceId), [...record.suspended]);
  }
  const listed = new Set(record.deviceList.devices.map((d) => d.deviceId));
  const stale = (await store.readAll("sessions")).filter(
    (r) => r.accountId === accountId && !listed.has(r.deviceId),
  );
  if (stale.length) {
    await store.transact(["sessions"], (s) => stale.forEach((r) => s.sessions.delete(r.deviceId)));
  }
}

/**
 * The error a refusal notice stands for (what callers of a fetch catch), or null.
 * @param {any} notice @param {Map<string, ApiError>} failures
 */
export function refusalOf(notice, failures) {
  if (!(notice instanceof engine.Notice)) return null;
  if (notice.code === "list_unavailable") {
    return failures.get(notice.accountId) ?? new ApiError({ status: notice.data.status, code: notice.data.code, message: "The device list could not be fetched." });
  }
  if (notice.code === "security_code_changed") {
    return listRefused("AccountKeyChanged", notice.detail, "account_key_changed");
  }
  if (notice.code === "list_refused") {
    const code = notice.data.error.replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase());
    return listRefused(notice.data.error, notice.detail, code);
  }
  return null;
}

/**
 * Throw the error of a refusal notice about `accountId` in a run, if there is one.
 * @param {string} accountId @param {{effects: any[], failures: Map<string, ApiError>}} run
 */
export function throwFor(accountId, { effects, failures }) {
  for (const effect of effects) {
    const error = effect.accountId === accountId ? refusalOf(effect, failures) : null;
    if (error) throw error;
  }
}

/**
 * The accepted list of an account, fetched first when there is none, when it is older than
 * the engine's LIST_MAX_AGE_MS, or when `refresh`.
 * @param {string} accountId @param {{refresh?: boolean}} [options]
 * @returns {Promise<DeviceList>}
 */
export async function currentList(accountId, { refresh = false } = {}) {
  throwFor(accountId, await runEngine(new engine.ListWanted(accountId, Date.now(), refresh), [accountId]));
  const stored = await store.getAcceptedList(accountId);
  if (!stored) throw new ListRefused(`No device list of ${accountId} could be had.`, "no_list");
  return DeviceList.fromJSON(stored.list);
}

/**
 * Fetch and verify an account's list now: the own one under the own account key, a
 * contact's under the key pinned at first use.
 * @param {string} accountId @returns {Promise<DeviceList>}
 */
export function refreshList(accountId) {
  return currentList(accountId, { refresh: true });
}

/**
 * The entry of an envelope's sender device in a verified list (fetched when the cache lacks it).
 * @param {string} sender @param {string} senderDevice
 */
export async function senderEntry(sender, senderDevice) {
  throwFor(sender, await runEngine(new engine.SenderSeen(sender, senderDevice, Date.now()), [sender]));
  const stored = await store.getAcceptedList(sender);
  return stored ? DeviceList.fromJSON(stored.list).entry(senderDevice) : null;
}
