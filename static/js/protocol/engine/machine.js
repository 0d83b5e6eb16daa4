// The device engine: `handle(state, event) -> [state, effects]` (docs/protocol.md section 22);
// mirror of protocol/engine/machine.py. Pure: no sockets, HTTP, storage or clock. An adapter
// (static/js/app/) builds the state from its store, performs the effects and feeds every
// answer back as an event.

import { ContentType } from "../content.js";
import { b64uEncode, bytesEqual } from "../encoding.js";
import { AccountKeyChanged, ProtocolError } from "../exceptions.js";
import { ContentVerdict, HttpRequest, Notice, StoreList } from "./effects.js";
import { ContentReceived, FrameReceived, HttpAnswered, ListWanted, SenderSeen, SendWanted } from "./events.js";
import { receive, RECEIVING } from "./receiving.js";
import { retry, RETRYING } from "./retry.js";
import { acceptList, deviceListPath, listChanges, parseListing } from "./lists.js";
import { listsSettled, sendAnswered, sendWanted } from "./sending.js";
import { LIST_MAX_AGE_MS, PendingFetch } from "./state.js";

/** @typedef {import("./state.js").DeviceState} DeviceState */
/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {import("./events.js").Event} Event */
/** @typedef {[DeviceState, Effect[]]} Result */

/** Contents only this account's own devices may send (section 10). @type {ReadonlySet<number>} */
export const OWN_DEVICES_ONLY = Object.freeze(
  new Set([
    ContentType.SENT_TRANSCRIPT,
    ContentType.DEVICE_LIST_NOTICE,
    ContentType.HISTORY_BUNDLE_KEY,
    ContentType.ACCOUNT_SYNC_KEY,
    ContentType.ACCOUNT_SYNC_CHECKPOINT,
  ]),
);

/** @param {DeviceState} state @param {Event} event @returns {Result} */
export function handle(state, event) {
  if (RECEIVING.some((kind) => event instanceof kind)) return receive(state, /** @type {any} */ (event));
  if (RETRYING.some((kind) => event instanceof kind)) return retry(state, /** @type {any} */ (event));
  if (event instanceof ListWanted) return listWanted(state, event);
  if (event instanceof SenderSeen) {
    const record = state.lists.get(event.sender);
    if (record && record.deviceList.entry(event.senderDevice) !== null) return [state, []];
    return fetchList(state, event.sender, "unknown_device");
  }
  if (event instanceof ContentReceived) return contentReceived(state, event);
  if (event instanceof HttpAnswered) return listsSettled(httpAnswered(state, event));
  if (event instanceof SendWanted) return sendWanted(state, event, listWanted);
  if (event instanceof FrameReceived) {
    if (event.frame?.type === "devices_changed") return fetchList(state, state.accountId, "devices_changed");
    return sendAnswered(state, event, listWanted);
  }
  throw new TypeError(`not an engine event: ${event}`);
}

/**
 * A cached list is used as is for LIST_MAX_AGE_MS after the server last served it.
 * @param {DeviceState} state @param {ListWanted} event @returns {Result}
 */
function listWanted(state, event) {
  const record = state.lists.get(event.accountId);
  let reason;
  if (event.refresh) reason = "refresh";
  else if (!record) reason = "missing";
  else if (event.now - record.checkedAt > LIST_MAX_AGE_MS) reason = "stale";
  else return [state, []];
  return fetchList(state, event.accountId, reason);
}

/**
 * One request per account in flight: a second reason joins the first (the highest claimed
 * version is kept).
 * @param {DeviceState} state @param {string} accountId @param {string} reason
 * @param {number | null} [claimed] @returns {Result}
 */
function fetchList(state, accountId, reason, claimed = null) {
  for (const [requestId, pending] of state.pending) {
    if (pending.accountId === accountId) {
      if (claimed !== null && (pending.claimed ?? 0) < claimed) {
        const merged = new Map(state.pending);
        merged.set(requestId, new PendingFetch(pending.accountId, pending.reason, claimed));
        return [state.with({ pending: merged }), []];
      }
      return [state, []];
    }
  }
  const requestId = `r${state.nextRequest}`;
  const pending = new Map(state.pending);
  pending.set(requestId, new PendingFetch(accountId, reason, claimed));
  state = state.with({ pending, nextRequest: state.nextRequest + 1 });
  return [state, [new HttpRequest(requestId, "GET", deviceListPath(accountId))]];
}

/**
 * Which contents only own devices may send, and the freeze check of section 10.1.
 *
 * A device-list notice from a contact is refused like any own-devices content and makes no
 * fetch: only its signed stamp is checked, as every content's is (section 22.4).
 * @param {DeviceState} state @param {ContentReceived} event @returns {Result}
 */
function contentReceived(state, event) {
  /** @type {Effect[]} */
  const effects = [];
  const own = state.lists.get(state.accountId);
  const fromOwnDevice =
    event.sender === state.accountId && own !== undefined && own.deviceList.entry(event.senderDevice) !== null;
  const refuse = OWN_DEVICES_ONLY.has(event.contentType) && !fromOwnDevice;
  effects.push(
    new ContentVerdict(
      event.sender,
      event.senderDevice,
      refuse ? "refuse" : "accept",
      refuse ? "own_devices_only" : null,
    ),
  );
  const record = state.lists.get(event.sender);
  const claimed = event.senderListVersion;
  if (record && claimed === record.version) {
    if (!bytesEqual(event.senderListHash, record.hash)) {
      effects.push(new Notice(event.sender, "list_forked", { version: claimed }));
    }
  } else if (record && claimed > record.version) {
    let more;
    [state, more] = fetchList(state, event.sender, "freeze", claimed);
    effects.push(...more);
  }
  if (event.contentType === ContentType.DEVICE_LIST_NOTICE && !refuse) {
    let more;
    [state, more] = fetchList(state, state.accountId, "notice");
    effects.push(...more);
  }
  return [state, effects];
}

/** @param {DeviceState} state @param {HttpAnswered} event @returns {Result} */
function httpAnswered(state, event) {
  const pending = state.pending.get(event.requestId);
  if (!pending) return [state, []]; // an answer to nothing this engine asked: ignored
  const rest = new Map(state.pending);
  rest.delete(event.requestId);
  state = state.with({ pending: rest });
  const { accountId } = pending;
  const why = { reason: pending.reason };
  if (event.status !== 200) {
    const error = event.body && typeof event.body === "object" ? event.body.error : null;
    const code = error && typeof error === "object" ? error.code : null;
    const data = { ...why, status: event.status, code: code || `http_${event.status}` };
    return [state, [new Notice(accountId, "list_unavailable", data)]];
  }
  const record = state.lists.get(accountId) ?? null;
  const own = accountId === state.accountId;
  let deviceList;
  let accepted;
  try {
    let suspended;
    [deviceList, suspended] = parseListing(accountId, event.body);
    accepted = acceptList(record, deviceList, {
      expectedAccountKey: expectedKey(state, accountId, record),
      suspended,
      now: event.now,
    });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    if (error instanceof AccountKeyChanged && !own && deviceList) {
      const served = { ...why, account_key: b64uEncode(deviceList.accountKey) };
      return [state, [new Notice(accountId, "security_code_changed", served, error.message)]];
    }
    return [state, [refused(accountId, why, error)]];
  }
  const lists = new Map(state.lists);
  lists.set(accountId, accepted);
  state = state.with({ lists });
  /** @type {Effect[]} */
  const effects = [new StoreList(accountId, accepted)];
  if (record && !bytesEqual(record.hash, accepted.hash)) {
    effects.push(new Notice(accountId, "devices_changed", { ...why, ...listChanges(record.deviceList, deviceList) }));
  }
  if (pending.claimed !== null && accepted.version < pending.claimed) {
    effects.push(new Notice(accountId, "list_withheld", { ...why, claimed: pending.claimed, served: accepted.version }));
  }
  return [state, effects];
}

/**
 * The own account key; for a contact's first list, the key its contact record holds (another
 * own device verified it); after that, the key pinned in the record.
 * @param {DeviceState} state @param {string} accountId @param {import("./state.js").ListRecord | null} record
 * @returns {Uint8Array | null}
 */
function expectedKey(state, accountId, record) {
  if (accountId === state.accountId) return state.accountKey;
  return record === null ? (state.contactKeys.get(accountId) ?? null) : null;
}

/** @param {string} accountId @param {Record<string, any>} why @param {ProtocolError} error */
function refused(accountId, why, error) {
  return new Notice(accountId, "list_refused", { ...why, error: error.name }, error.message);
}
