// Retry requests and resends (docs/protocol.md section 24); mirror of protocol/engine/retry.py:
// what a device does with an envelope it could not decrypt, with the answers to its asks, and
// with another device's ask; registered in `handle` and, for the two contents, in receiving.

import { ContentType, decodeContent } from "../content.js";
import { b64uDecode } from "../encoding.js";
import { ProtocolError } from "../exceptions.js";
import {
  AcceptResend,
  ContentVerdict,
  ForgetRetry,
  Resend,
  SendRetryRequest,
  StoreResendCount,
  StoreRetry,
} from "./effects.js";
import { DecryptFailed, RetryAgain, RetryDue, RetryRequested } from "./events.js";
import { isBlocked, RetryRecord, retryKey } from "./state.js";

/** @typedef {import("./state.js").DeviceState} DeviceState */
/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {import("./events.js").ContentDecrypted} ContentDecrypted */
/** @typedef {[DeviceState, Effect[]]} Result */

export const MAX_RETRIES = 5; // asks per envelope, and resends of one envelope to one device
export const RETRY_AFTER_MS = 10000; // the wait after the first ask; it doubles after each
export const MAX_WAITING = 100; // waiting records per sender device; more fail at once, unasked
export const RESEND_CACHE_SIZE = 256; // envelopes a device keeps to send again (the newest)
export const RESEND_CACHE_MS = 24 * 60 * 60 * 1000; // and none older than this

export const RETRYING = Object.freeze([DecryptFailed, RetryDue, RetryAgain, RetryRequested]);

/**
 * How long after its `count`th ask an envelope is asked for again (or given up).
 * @param {number} count @returns {number}
 */
export function retryWait(count) {
  return RETRY_AFTER_MS * 2 ** Math.max(count - 1, 0);
}

/** @param {DeviceState} state @param {DecryptFailed | RetryDue | RetryAgain | RetryRequested} event @returns {Result} */
export function retry(state, event) {
  if (event instanceof DecryptFailed) return decryptFailed(state, event);
  if (event instanceof RetryDue) return retryDue(state, event);
  if (event instanceof RetryAgain) return retryAgain(state, event);
  return retryRequested(state, event);
}

/**
 * The first ask, unless the envelope is asked for already (a redelivery), its sender is
 * blocked, or that device has MAX_WAITING envelopes waiting (then: failed, unasked).
 * @param {DeviceState} state @param {DecryptFailed} event @returns {Result}
 */
export function decryptFailed(state, event) {
  const key = retryKey(event.senderDevice, event.envelopeId);
  if (isBlocked(state, event.sender) || state.retries.has(key)) return [state, []];
  let waiting = 0;
  for (const r of state.retries.values()) {
    if (r.senderDevice === event.senderDevice && r.state === "waiting") waiting += 1;
  }
  const record = new RetryRecord({
    sender: event.sender,
    senderDevice: event.senderDevice,
    envelopeId: event.envelopeId,
    sentAt: event.sentAt,
    count: waiting >= MAX_WAITING ? 0 : 1,
    askedAt: event.now,
    state: waiting >= MAX_WAITING ? "failed" : "waiting",
  });
  state = keep(state, record);
  if (record.state === "failed") return [state, [new StoreRetry(record)]];
  return [state, [new StoreRetry(record), ask(record)]];
}

/**
 * Each waiting envelope whose wait is over is asked for again, or, after the last ask's
 * wait, given up.
 * @param {DeviceState} state @param {RetryDue} event @returns {Result}
 */
export function retryDue(state, event) {
  /** @type {Effect[]} */
  const effects = [];
  for (const key of [...state.retries.keys()].sort(byCodePoint)) {
    let record = /** @type {RetryRecord} */ (state.retries.get(key));
    if (record.state !== "waiting" || event.now - record.askedAt < retryWait(record.count)) continue;
    if (record.count < MAX_RETRIES) {
      record = record.with({ count: record.count + 1, askedAt: event.now });
      state = keep(state, record);
      effects.push(new StoreRetry(record), ask(record));
    } else {
      record = record.with({ state: "failed" });
      state = keep(state, record);
      effects.push(new StoreRetry(record));
    }
  }
  return [state, effects];
}

/**
 * The person asks again for an envelope given up: the asks start over.
 * @param {DeviceState} state @param {RetryAgain} event @returns {Result}
 */
export function retryAgain(state, event) {
  let record = state.retries.get(retryKey(event.senderDevice, event.envelopeId));
  if (record === undefined || record.state !== "failed") return [state, []];
  record = record.with({ count: 1, askedAt: event.now, state: "waiting" });
  return [keep(state, record), [new StoreRetry(record), ask(record)]];
}

/**
 * Another device's ask, with what the resend cache holds for it: the content that device was
 * sent, at most MAX_RETRIES times, from the second ask on in a new session; otherwise a resend
 * saying the message is no longer held.
 * @param {DeviceState} state @param {RetryRequested} event @returns {Result}
 */
export function retryRequested(state, event) {
  const { body, cached, senderDevice: device } = event;
  const envelopeId = body.envelope_id;
  /** @type {Record<string, number>} */
  const resends = cached !== null ? cached.resends : {};
  const sent = Object.hasOwn(resends, device) ? resends[device] : 0;
  const newSession = body.count >= 2; // the session may be what broke: even a null needs one
  const prekey = newSession ? body.signed_prekey : null;
  const kem = newSession && Object.hasOwn(body, "kem_prekey") ? body.kem_prekey : null;
  if (
    cached === null ||
    event.now - cached.sent_at > RESEND_CACHE_MS ||
    !Object.hasOwn(cached.targets, device) ||
    sent >= MAX_RETRIES
  ) {
    return [state, [new Resend(event.sender, device, envelopeId, null, newSession, prekey, kem)]];
  }
  return [
    state,
    [
      new StoreResendCount(envelopeId, device, sent + 1),
      new Resend(
        event.sender,
        device,
        envelopeId,
        cached.targets[device],
        newSession,
        prekey,
        kem,
      ),
    ],
  ];
}

/**
 * A resend (content type 10) answers an ask of this device, or is refused: its inner content
 * to apply, or the sender's word that it holds the message no more.
 * @param {DeviceState} state @param {ContentDecrypted} event @returns {Result}
 */
export function resendReceived(state, event) {
  const envelopeId = event.body.envelope_id;
  const key = retryKey(event.senderDevice, envelopeId);
  let record = state.retries.get(key);
  if (record === undefined) return [state, [refuse(event, "not_asked")]];
  const { content } = event.body;
  if (content === null) {
    if (record.state === "failed") return [state, []];
    record = record.with({ state: "failed" });
    return [keep(state, record), [new StoreRetry(record)]];
  }
  let inner;
  try {
    inner = decodeContent(b64uDecode(content, { what: "resend content" }));
  } catch (error) {
    if (error instanceof ProtocolError) return [state, [refuse(event, "malformed_resend")]];
    throw error;
  }
  // a resend inside a resend is refused; an ask inside one is that device's lost ask, asked for
  if (inner.type === ContentType.RESEND) return [state, [refuse(event, "malformed_resend")]];
  const retries = new Map(state.retries);
  retries.delete(key);
  state = state.with({ retries });
  return [
    state,
    [new ForgetRetry(event.senderDevice, envelopeId), new AcceptResend(event.sender, event.senderDevice, envelopeId, content)],
  ];
}

/** @param {RetryRecord} record */
function ask(record) {
  return new SendRetryRequest(record.sender, record.senderDevice, record.envelopeId, record.count);
}

/** @param {DeviceState} state @param {RetryRecord} record */
function keep(state, record) {
  return state.with({ retries: new Map([...state.retries, [record.key, record]]) });
}

/** @param {ContentDecrypted} event @param {string} reason */
function refuse(event, reason) {
  return new ContentVerdict(event.sender, event.senderDevice, "refuse", reason);
}

/** Python's sorted() order for str keys: by code point, not by UTF-16 unit. @param {string} a @param {string} b */
function byCodePoint(a, b) {
  const x = [...a].map((c) => /** @type {number} */ (c.codePointAt(0)));
  const y = [...b].map((c) => /** @type {number} */ (c.codePointAt(0)));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}
