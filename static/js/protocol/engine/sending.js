// Planning a send and the retry after `mismatched_devices` (docs/protocol.md sections 9, 20
// and 22.4); mirror of protocol/engine/sending.py. Which devices get the content and which a
// sent transcript, read from verified lists only. The engine plans; the adapter encrypts for
// the planned devices and sends.

import { Notice, SendPlan } from "./effects.js";
import { ListWanted } from "./events.js";
import { isBlocked, PendingSend } from "./state.js";

/** @typedef {import("./state.js").DeviceState} DeviceState */
/** @typedef {import("./state.js").ListRecord} ListRecord */
/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {[DeviceState, Effect[]]} Result */
/** @typedef {(state: DeviceState, event: ListWanted) => Result} ListWanter */

/** Re-plans after mismatched_devices (section 20). */
export const MAX_MISMATCH_RETRIES = 3;
/** List notices that leave a send without a verified list to plan from (section 22.3). */
const LIST_REFUSALS = new Set(["list_refused", "security_code_changed", "list_unavailable"]);

/**
 * A new send: the lists it needs are fetched when missing or stale, then it is planned.
 * Nothing goes to an account the person blocked (not even a receipt), and nothing is fetched.
 * @param {DeviceState} state @param {import("./events.js").SendWanted} event @param {ListWanter} listWanted
 * @returns {Result}
 */
export function sendWanted(state, event, listWanted) {
  if (isBlocked(state, event.recipient)) {
    const why = { envelope_id: event.envelopeId, reason: "blocked" };
    return [drop(state, event.envelopeId), [new Notice(event.recipient, "send_refused", why)]];
  }
  return gather(state, event.envelopeId, new PendingSend(event.recipient), event.now, listWanted, false);
}

/**
 * The server's answer to a send. After `mismatched_devices` both lists are fetched and
 * verified again and the send re-planned from them, at most MAX_MISMATCH_RETRIES times.
 *
 * The frame's device ids are not trusted: a `missing` device is sent to only once a verified
 * list holds it, and `stale` ids only shrink the set (DESIGN section 7).
 * @param {DeviceState} state @param {import("./events.js").FrameReceived} event @param {ListWanter} listWanted
 * @returns {Result}
 */
export function sendAnswered(state, event, listWanted) {
  const { frame } = event;
  if (frame?.type === "accepted") return [drop(state, frame.id), []];
  const ref = frame?.ref;
  const send = typeof ref === "string" ? state.sends.get(ref) : undefined;
  if (!send || frame.code !== "mismatched_devices" || send.waiting.length) {
    return [state, []]; // another refusal: the adapter reports or resends the frame as is
  }
  const data = frame.data && typeof frame.data === "object" && !Array.isArray(frame.data) ? frame.data : {};
  if (send.attempt > MAX_MISMATCH_RETRIES) {
    const told = { missing: ids(data.missing), extra: ids(data.extra), stale: ids(data.stale) };
    const why = { envelope_id: ref, reason: "mismatched_devices", attempts: send.attempt };
    return [drop(state, ref), [new Notice(send.recipient, "send_refused", { ...why, ...told })]];
  }
  const retry = send.with({ attempt: send.attempt + 1, stale: new Set([...send.stale, ...ids(data.stale)]) });
  return gather(state, ref, retry, event.now, listWanted, true);
}

/**
 * After a list answer: a send waiting for no more lists is planned, or refused when a list it
 * needs could not be verified (the list's own notice says why).
 * @param {Result} result @returns {Result}
 */
export function listsSettled([state, effects]) {
  const sends = [...state.sends.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [envelopeId, send] of sends) {
    if (!send.waiting.length) continue;
    const waiting = send.waiting.filter((a) => fetching(state, a));
    if (waiting.length === send.waiting.length) continue;
    const failed = effects.filter(
      (e) => e instanceof Notice && send.waiting.includes(e.accountId) && LIST_REFUSALS.has(e.code),
    );
    if (failed.length) {
      const why = { envelope_id: envelopeId, reason: /** @type {Notice} */ (failed[0]).code };
      state = drop(state, envelopeId);
      effects = [...effects, new Notice(send.recipient, "send_refused", why)];
      continue;
    }
    state = put(state, envelopeId, send.with({ waiting }));
    if (!waiting.length) {
      let more;
      [state, more] = plan(state, envelopeId);
      effects = [...effects, ...more];
    }
  }
  return [state, effects];
}

/**
 * @param {DeviceState} state @param {string} envelopeId @param {PendingSend} send @param {number} now
 * @param {ListWanter} listWanted @param {boolean} refresh @returns {Result}
 */
function gather(state, envelopeId, send, now, listWanted, refresh) {
  /** @type {Effect[]} */
  const effects = [];
  const accounts = [...new Set([state.accountId, send.recipient])];
  for (const account of accounts) {
    let more;
    [state, more] = listWanted(state, new ListWanted(account, now, refresh));
    effects.push(...more);
  }
  const waiting = accounts.filter((a) => fetching(state, a));
  state = put(state, envelopeId, send.with({ waiting }));
  if (waiting.length) return [state, effects];
  let more;
  [state, more] = plan(state, envelopeId);
  return [state, [...effects, ...more]];
}

/**
 * Every active device of the recipient's list gets the content, every other active own device
 * a transcript; a device that left the own list sends nothing.
 * @param {DeviceState} state @param {string} envelopeId @returns {Result}
 */
function plan(state, envelopeId) {
  const send = /** @type {PendingSend} */ (state.sends.get(envelopeId));
  const own = state.lists.get(state.accountId);
  const theirs = state.lists.get(send.recipient);
  if (!own || own.deviceList.entry(state.deviceId) === null || !theirs) {
    const why = { envelope_id: envelopeId, reason: "device_removed" };
    return [drop(state, envelopeId), [new Notice(send.recipient, "send_refused", why)]];
  }
  const toSelf = send.recipient === state.accountId;
  const planned = new SendPlan(
    envelopeId,
    send.recipient,
    active(theirs, send.stale, state.deviceId),
    toSelf ? [] : active(own, send.stale, state.deviceId),
    send.attempt,
  );
  return [state, [planned]];
}

/** @param {ListRecord} record @param {Set<string>} stale @param {string} ownDevice */
function active(record, stale, ownDevice) {
  const out = new Set([...record.suspended, ...stale, ownDevice]);
  return record.deviceList.devices.map((d) => d.deviceId).filter((d) => !out.has(d));
}

/** @param {DeviceState} state @param {string} accountId */
function fetching(state, accountId) {
  return [...state.pending.values()].some((p) => p.accountId === accountId);
}

/** @param {unknown} value @returns {string[]} */
function ids(value) {
  return Array.isArray(value) ? value.filter((v) => typeof v === "string") : [];
}

/** @param {DeviceState} state @param {string} envelopeId @param {PendingSend} send */
function put(state, envelopeId, send) {
  const sends = new Map(state.sends);
  sends.set(envelopeId, send);
  return state.with({ sends });
}

/** @param {DeviceState} state @param {unknown} envelopeId */
function drop(state, envelopeId) {
  if (typeof envelopeId !== "string" || !state.sends.has(envelopeId)) return state;
  const sends = new Map(state.sends);
  sends.delete(envelopeId);
  return state.with({ sends });
}
