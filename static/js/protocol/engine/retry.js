// Retry requests and the resend cache (docs/protocol.md section 24); mirror of
// protocol/engine/retry.py. The requester asks the sending device again for an envelope that
// did not decrypt, with a backoff, until the content comes or the asks run out; the sender
// answers each request from what it cached when it sent. Registered in `handle` for
// `DecryptFailed`, `RetryDue`, `RetryAgain` and `RetryRequested`, and in receiving for the
// contents of types 9 and 10.

import { ContentType, decodeContent } from "../content.js";
import { b64uDecode } from "../encoding.js";
import { ProtocolError } from "../exceptions.js";
import {
  AcceptResend,
  AcceptRetryRequest,
  ContentVerdict,
  ForgetRetry,
  Resend,
  SendRetryRequest,
  StoreResendCount,
  StoreRetry,
} from "./effects.js";
import { DecryptFailed, RetryAgain, RetryDue, RetryRequested } from "./events.js";
import { RetryRecord } from "./state.js";

/** @typedef {import("./state.js").DeviceState} DeviceState */
/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {import("./events.js").ContentDecrypted} ContentDecrypted */
/** @typedef {[DeviceState, Effect[]]} Result */

/** Asks per envelope, and resends per content and device. */
export const MAX_RETRIES = 5;
/** The wait after the first ask (ms); it doubles after each ask. */
export const RETRY_AFTER_MS = 10000;
/** Waiting records per sender device; beyond it an envelope fails at once. */
export const MAX_WAITING = 100;
/** Entries the sender's resend cache keeps (the adapter's rule). */
export const RESEND_CACHE_SIZE = 256;
/** How long the sender's resend cache keeps an entry (ms). */
export const RESEND_CACHE_MS = 86400000;

export const RETRYING = Object.freeze([DecryptFailed, RetryDue, RetryAgain, RetryRequested]);

/** The key of a retry record. @param {string} senderDevice @param {string} envelopeId */
export function retryKey(senderDevice, envelopeId) {
  return `${senderDevice}/${envelopeId}`;
}

/** @param {DeviceState} state @param {DecryptFailed | RetryDue | RetryAgain | RetryRequested} event @returns {Result} */
export function retry(state, event) {
  if (event instanceof DecryptFailed) return decryptFailed(state, event);
  if (event instanceof RetryDue) return retryDue(state, event);
  if (event instanceof RetryAgain) return retryAgain(state, event);
  return [state, retryRequested(event)];
}

/**
 * Ask the sending device once per envelope; a redelivery asks nothing, and a sender device
 * with MAX_WAITING asks outstanding gets a failed line at once (a flood asks nothing).
 * @param {DeviceState} state @param {DecryptFailed} event @returns {Result}
 */
export function decryptFailed(state, event) {
  // the own account is never treated as blocked (as receiving's isBlocked)
  if (event.sender !== state.accountId && state.blocked.has(event.sender)) return [state, []];
  const key = retryKey(event.senderDevice, event.envelopeId);
  if (state.retries.has(key)) return [state, []];
  let waiting = 0;
  for (const record of state.retries.values()) {
    if (record.senderDevice === event.senderDevice && record.state === "waiting") waiting += 1;
  }
  const full = waiting >= MAX_WAITING;
  const record = new RetryRecord({
    sender: event.sender,
    senderDevice: event.senderDevice,
    envelopeId: event.envelopeId,
    sentAt: event.sentAt,
    count: full ? 0 : 1,
    askedAt: event.now,
    state: full ? "failed" : "waiting",
  });
  state = stored(state, record);
  if (full) return [state, [new StoreRetry(record)]];
  return [state, [new StoreRetry(record), ask(record)]];
}

/**
 * Each waiting record whose wait is over (RETRY_AFTER_MS, doubling after each ask) is asked
 * again, in key order, until MAX_RETRIES asks; after the last ask's wait it fails.
 * @param {DeviceState} state @param {RetryDue} event @returns {Result}
 */
export function retryDue(state, event) {
  /** @type {Effect[]} */
  const effects = [];
  for (const key of [...state.retries.keys()].sort()) {
    const record = /** @type {RetryRecord} */ (state.retries.get(key));
    if (record.state !== "waiting") continue;
    if (event.now - record.askedAt < RETRY_AFTER_MS * 2 ** (record.count - 1)) continue;
    if (record.count < MAX_RETRIES) {
      const again = record.with({ count: record.count + 1, askedAt: event.now });
      state = stored(state, again);
      effects.push(new StoreRetry(again), ask(again));
    } else {
      const failed = record.with({ state: "failed" });
      state = stored(state, failed);
      effects.push(new StoreRetry(failed));
    }
  }
  return [state, effects];
}

/**
 * The person asks again for a failed line: it starts over from the first ask.
 * @param {DeviceState} state @param {RetryAgain} event @returns {Result}
 */
export function retryAgain(state, event) {
  const record = state.retries.get(retryKey(event.senderDevice, event.envelopeId));
  if (!record || record.state !== "failed") return [state, []];
  const again = record.with({ count: 1, askedAt: event.now, state: "waiting" });
  return [stored(state, again), [new StoreRetry(again), ask(again)]];
}

/**
 * A retry request, with the resend cache's entry for it: the content that very device was
 * sent, at most MAX_RETRIES times, from the second ask on in a new session; else null.
 * @param {RetryRequested} event @returns {Effect[]}
 */
export function retryRequested(event) {
  const { body, cached } = event;
  const envelopeId = body.envelope_id;
  const device = event.senderDevice;
  const nothing = [new Resend(event.sender, device, envelopeId, null, false, null)];
  if (cached === null) return nothing;
  if (event.now - cached.sent_at > RESEND_CACHE_MS) return nothing;
  if (!Object.hasOwn(cached.targets, device)) return nothing;
  const count = Object.hasOwn(cached.resends, device) ? cached.resends[device] : 0;
  if (count >= MAX_RETRIES) return nothing;
  const newSession = body.count >= 2;
  return [
    new StoreResendCount(envelopeId, device, count + 1),
    new Resend(event.sender, device, envelopeId, cached.targets[device], newSession, newSession ? body.signed_prekey : null),
  ];
}

/**
 * A retry request (type 9) from any device: the adapter looks its envelope up.
 * @param {ContentDecrypted} event @returns {Effect[]}
 */
export function retryRequestReceived(event) {
  return [new AcceptRetryRequest(event.sender, event.senderDevice, event.body)];
}

/**
 * A resend (type 10) answers an ask of this device, or is refused: its content is applied
 * (the record forgotten), or null turns the line failed now.
 * @param {DeviceState} state @param {ContentDecrypted} event @returns {Result}
 */
export function resendReceived(state, event) {
  const envelopeId = event.body.envelope_id;
  const key = retryKey(event.senderDevice, envelopeId);
  const record = state.retries.get(key);
  if (!record) return [state, [refuse(event, "not_asked")]]; // a resend only answers
  const { content } = event.body;
  if (content === null) {
    const failed = record.with({ state: "failed" });
    return [stored(state, failed), [new StoreRetry(failed)]];
  }
  let inner;
  try {
    inner = decodeContent(b64uDecode(content, { what: "resend content" }));
  } catch (error) {
    if (error instanceof ProtocolError) return [state, [refuse(event, "malformed_resend")]];
    throw error;
  }
  if (inner.type === ContentType.RETRY_REQUEST || inner.type === ContentType.RESEND) {
    return [state, [refuse(event, "malformed_resend")]];
  }
  const retries = new Map(state.retries);
  retries.delete(key);
  return [
    state.with({ retries }),
    [new ForgetRetry(event.senderDevice, envelopeId), new AcceptResend(event.sender, event.senderDevice, envelopeId, content)],
  ];
}

/** @param {RetryRecord} record */
function ask(record) {
  return new SendRetryRequest(record.sender, record.senderDevice, record.envelopeId, record.count);
}

/** @param {DeviceState} state @param {RetryRecord} record */
function stored(state, record) {
  const retries = new Map(state.retries);
  retries.set(retryKey(record.senderDevice, record.envelopeId), record);
  return state.with({ retries });
}

/** @param {ContentDecrypted} event @param {string} reason */
function refuse(event, reason) {
  return new ContentVerdict(event.sender, event.senderDevice, "refuse", reason);
}
