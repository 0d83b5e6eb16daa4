// Client fan-out (docs/protocol.md section 9): the engine plans which devices get an outbox
// item (static/js/protocol/engine/sending.js); this module encrypts it for exactly those, one
// ciphertext per device over the pairwise sessions (sessions.js). Call under the state lock.

import {
  Content,
  ContentType,
  DeviceList,
  DowngradeRefused,
  encodeContent,
  encoding,
  engine,
  outdatedFor,
  PrekeyBundle,
  systemRng,
} from "../protocol/index.js";
import { api } from "./api.js";
import { loadKeys } from "./device.js";
import { runEngine, throwFor } from "./lists.js";
import { cacheEntry, keepInCache } from "./resendcache.js";
import { SendRefused, self } from "./self.js";
import { replaced, retryRequestReuses, sessionForSending, sessionFromSignedPrekey } from "./sessions.js";
import * as store from "./store.js";

const { b64uDecode, b64uEncode } = encoding;

/** @param {string} username */
const accountPath = (username) => `/api/accounts/${encodeURIComponent(username)}`;

/**
 * The engine's plan of an outbox item's send: on a new send (`engine.SendWanted`) or the
 * server's answer to it (`engine.FrameReceived`). A list it could not verify throws that
 * list's error, any other refusal SendRefused.
 * @param {engine.SendWanted | engine.FrameReceived} event @param {any} item
 * @returns {Promise<engine.SendPlan>}
 */
export async function planSend(event, item) {
  const me = await self();
  const sends = new Map([[item.envelopeId, new engine.PendingSend(item.recipient, item.attempts + 1)]]);
  const run = await runEngine(event, [item.recipient], sends);
  throwFor(me.accountId, run);
  throwFor(item.recipient, run);
  for (const effect of run.effects) {
    if (effect instanceof engine.SendPlan) return effect;
    if (effect instanceof engine.Notice && effect.code === "send_refused") throw sendRefusal(effect);
  }
  throw new SendRefused(`No plan to send to ${item.recipient}.`, "not_planned");
}

/** The SendRefused a `send_refused` notice stands for. @param {engine.Notice} notice */
function sendRefusal({ accountId, data }) {
  if (data.reason === "mismatched_devices") {
    return new SendRefused(
      `The server kept refusing the devices of ${accountId} after ${engine.MAX_MISMATCH_RETRIES} retries with freshly verified device lists.`,
      "mismatched_devices",
    );
  }
  if (data.reason === "blocked") {
    return new SendRefused(`You blocked ${accountId}. Unblock them to send.`, "blocked");
  }
  if (data.reason === "device_removed") {
    return new SendRefused("This device is no longer in your account's signed device list.", "device_removed");
  }
  return new SendRefused(`No verified device list to send to ${accountId} (${data.reason}).`, String(data.reason));
}

/** @param {string} accountId @returns {Promise<DeviceList>} the accepted list the engine planned from */
async function acceptedList(accountId) {
  const stored = await store.getAcceptedList(accountId);
  if (!stored) throw new SendRefused(`No device list of ${accountId} is stored.`, "no_list");
  return DeviceList.fromJSON(stored.list);
}

/**
 * Encrypt an outbox item for the devices the engine planned (section 9): the content for
 * each of `plan.devices`, a sent transcript for each of `plan.transcripts` (a one-device
 * send: its one device), cached for a resend with the sessions (24.3).
 * @param {any} item @param {{devices: string[], transcripts: string[]}} plan
 * @returns {Promise<Record<string, string>>} device id → b64u ciphertext
 */
export async function encryptItem(item, plan) {
  const me = await self();
  const keys = await loadKeys(me);
  const ownList = await acceptedList(me.accountId);
  const own = { list: ownList, version: ownList.version, hash: ownList.hash };
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
  const theirs = toSelf ? ownList : await acceptedList(item.recipient);
  if (item.device && !theirs.entry(item.device)) {
    throw new SendRefused("The device is no longer in its account's signed device list.", "not_listed");
  }
  const listed = (/** @type {DeviceList} */ list, /** @type {string} */ id) =>
    /** @type {import("../protocol/devicelist.js").DeviceEntry} */ (list.entry(id));
  const recipientEntries = plan.devices.map((id) => listed(theirs, id));
  const ownEntries = plan.transcripts.map((id) => listed(ownList, id));
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
    // Any other content to the own account (the sync key) goes to every own device.
    for (const d of recipientEntries) {
      plaintexts.set(d.deviceId, !item.historyFor || d.deviceId === item.historyFor ? content : notice);
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
  // A retry request and a resend pick their session by 24.1 (sessions.js); anything else
  // goes in the stored session, or a new one when there is none.
  /** @type {Map<string, import("../protocol/index.js").Session>} */
  const chosen = new Map();
  /** @type {Set<string>} devices that need a new session from a claimed bundle */
  const fresh = new Set();
  for (const [, d] of entries) {
    const record = records.get(d.deviceId);
    if (item.contentType === ContentType.RETRY_REQUEST) {
      if (!retryRequestReuses(record, d, item.retry.count)) fresh.add(d.deviceId);
    } else if (item.retry?.newSession) {
      const { signedPrekey, kemPrekey } = item.retry;
      chosen.set(d.deviceId, sessionFromSignedPrekey({ entry: d, signedPrekey, kemPrekey, keys }));
    } else if (!record?.current || outdatedFor(record.current, d.speaksV2)) {
      fresh.add(d.deviceId); // none yet, or a version-1 one with a version-2 device (27.5)
    }
  }
  const needBundles = new Set(entries.filter(([, d]) => fresh.has(d.deviceId)).map(([a]) => a));
  /** @type {Map<string, PrekeyBundle>} */
  const bundles = new Map();
  for (const account of [...needBundles].sort()) {
    // a one-device send claims that device's bundle only (its one-time prekey is not wasted)
    const body = item.device ? { device_ids: [item.device] } : {};
    const answer = await api(`${accountPath(account)}/bundles`, { method: "POST", body });
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
    let session;
    try {
      session =
        chosen.get(d.deviceId) ??
        sessionForSending({
          record,
          listedKey: d.identityKey,
          speaksV2: d.speaksV2,
          bundle: bundles.get(d.deviceId),
          keys,
          fresh: fresh.has(d.deviceId),
        });
    } catch (error) {
      if (!(error instanceof DowngradeRefused)) throw error;
      throw new SendRefused(
        `Not sent: the server left out the post-quantum key of a device of ${account}, whose signed list says it has one.`,
        error.code,
      );
    }
    if (!session) {
      throw new SendRefused(`The key directory has no prekeys for a device of ${account}.`, "no_bundle");
    }
    targets[d.deviceId] = b64uEncode(session.encrypt(/** @type {Uint8Array} */ (plaintexts.get(d.deviceId)), systemRng));
    // a new session archives the one it replaces, for late messages (7.1)
    const replaces = Boolean(record?.current) && (fresh.has(d.deviceId) || chosen.has(d.deviceId));
    updated.push(
      replaces
        ? replaced(record, account, d.deviceId, session)
        : { ...record, deviceId: d.deviceId, accountId: account, current: session.toJSON() },
    );
  }
  // What was encrypted is cached with the sessions that encrypted it (24.3), in one transaction.
  const cached = cacheEntry(item, plaintexts, Date.now());
  await store.transact(["sessions", "resendCache"], (s) => {
    for (const r of updated) s.sessions.put(r);
    if (cached) keepInCache(s.resendCache, cached);
  });
  return targets;
}

/** @param {number} type @param {any} body @param {any} stamp */
function newContent(type, body, stamp) {
  return new Content({ type, messageId: systemRng(16), ...stamp, body });
}

/**
 * The sender-key distributions of a planned group send (docs/protocol.md 25.8): one type-11
 * content (its body names no recipient) encrypted over the pairwise session with exactly each
 * device, a new session from its bundle where there is none; cached for a resend (24.3)
 * under the send's id, with the sessions, in one transaction.
 * @param {any} item the group outbox item @param {[string, string, Record<string, any>][]} distributions
 * @returns {Promise<Record<string, string>>} device id → b64u ciphertext
 */
export async function encryptDistributions(item, distributions) {
  if (!distributions.length) return {};
  const me = await self();
  const keys = await loadKeys(me);
  const own = await acceptedList(me.accountId);
  const content = encodeContent(
    newContent(ContentType.GROUP_SENDER_KEY, distributions[0][2], {
      timestamp: Date.now(),
      senderListVersion: own.version,
      senderListHash: own.hash,
    }),
  );
  /** @type {Map<string, DeviceList>} */
  const lists = new Map();
  const records = new Map();
  /** @type {Map<string, string[]>} account → devices without a session */
  const lacking = new Map();
  for (const [account, deviceId] of distributions) {
    if (!lists.has(account)) lists.set(account, await acceptedList(account));
    const record = await store.read("sessions", deviceId);
    records.set(deviceId, record);
    if (!record?.current) lacking.set(account, [...(lacking.get(account) ?? []), deviceId]);
  }
  /** @type {Map<string, PrekeyBundle>} */
  const bundles = new Map();
  for (const [account, deviceIds] of [...lacking].sort()) {
    const answer = await api(`${accountPath(account)}/bundles`, { method: "POST", body: { device_ids: deviceIds } });
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
  for (const [account, deviceId] of distributions) {
    const entry = lists.get(account)?.entry(deviceId);
    if (!entry) throw new SendRefused(`A device of ${account} is not in its signed device list.`, "not_listed");
    const record = records.get(deviceId);
    const fresh = !record?.current;
    const session = sessionForSending({ record, listedKey: entry.identityKey, bundle: bundles.get(deviceId), keys, fresh });
    if (!session) throw new SendRefused(`The key directory has no prekeys for a device of ${account}.`, "no_bundle");
    targets[deviceId] = b64uEncode(session.encrypt(content, systemRng));
    updated.push({ ...record, deviceId, accountId: account, current: session.toJSON() });
  }
  const cached = {
    envelope_id: item.envelopeId,
    recipient: `group:${item.group}`,
    sent_at: Date.now(),
    targets: Object.fromEntries(Object.keys(targets).map((d) => [d, b64uEncode(content)])),
    resends: {},
  };
  await store.transact(["sessions", "resendCache"], (s) => {
    for (const r of updated) s.sessions.put(r);
    keepInCache(s.resendCache, cached);
  });
  return targets;
}
