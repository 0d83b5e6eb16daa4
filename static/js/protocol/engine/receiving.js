// What a device does with each content it decrypted (docs/protocol.md section 22.6); mirror
// of protocol/engine/receiving.py: store it, answer it with a receipt, refuse it, or drop it
// as a duplicate; registered in `handle` for `ContentDecrypted` and `MessagesRead`.

import { ContentType, decodeContent, KNOWN_TYPES, MAX_RECEIPT_IDS } from "../content.js";
import { b64uDecode, b64uEncode } from "../encoding.js";
import { ProtocolError } from "../exceptions.js";
import {
  AcceptGroupKey,
  AcceptGroupReceipt,
  AcceptHistoryKey,
  AcceptRetryRequest,
  AcceptSyncCheckpoint,
  AcceptSyncKey,
  ApplyReceipt,
  ContentVerdict,
  DropBlocked,
  DropDuplicate,
  MarkRead,
  SendContent,
  StoreMessage,
} from "./effects.js";
import { ContentDecrypted, MessagesRead } from "./events.js";
import { resendReceived } from "./retry.js";
import { isBlocked } from "./state.js";

/** @typedef {import("./state.js").DeviceState} DeviceState */
/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {[DeviceState, Effect[]]} Result */

export const RECEIVING = Object.freeze([ContentDecrypted, MessagesRead]);

/** The de-duplication key of a content (section 10.1). @param {string} senderDevice @param {string} messageId */
export function seenKey(senderDevice, messageId) {
  return `${senderDevice}/${messageId}`;
}

/** @param {DeviceState} state @param {ContentDecrypted | MessagesRead} event @returns {Result} */
export function receive(state, event) {
  if (event instanceof MessagesRead) return messagesRead(state, event);
  return contentDecrypted(state, event);
}

/**
 * A content applied once per (sender device, message id); a content type this device does
 * not know is kept as an unsupported message, never dropped (DESIGN section 8).
 * @param {DeviceState} state @param {ContentDecrypted} event @returns {Result}
 */
export function contentDecrypted(state, event) {
  const key = seenKey(event.senderDevice, event.messageId);
  if (state.seen.has(key)) return [state, [new DropDuplicate(event.sender, event.senderDevice, event.messageId)]];
  state = state.with({ seen: new Set([...state.seen, key]) });
  if (isBlocked(state, event.sender)) return [state, [new DropBlocked(event.sender, event.senderDevice, event.messageId)]];
  const kind = event.contentType;
  if (kind === ContentType.TEXT || kind === ContentType.ATTACHMENT) return [state, text(state, event)];
  if (kind === ContentType.RECEIPT) {
    if (event.sender === state.accountId) return [state, []]; // an own device's receipt reaches the contact, not us
    if ("group_id" in event.body) {
      return [state, [new AcceptGroupReceipt(event.sender, event.senderDevice, event.body)]]; // to its group's machine, which checks the member (25.10)
    }
    return [state, [new ApplyReceipt(event.sender, event.body.kind, [...event.body.message_ids])]];
  }
  if (kind === ContentType.TYPING) return [state, []];
  if (kind === ContentType.RETRY_REQUEST) {
    return [state, [new AcceptRetryRequest(event.sender, event.senderDevice, event.body)]]; // from any device (section 24.2)
  }
  if (kind === ContentType.RESEND) return resendReceived(state, event);
  if (kind === ContentType.GROUP_SENDER_KEY) {
    return [state, [new AcceptGroupKey(event.sender, event.senderDevice, event.body)]]; // from any device: to its group's machine (25.8)
  }
  if (!KNOWN_TYPES.has(kind)) {
    return [state, [new StoreMessage(record(event, "unsupported", { content_type: kind }))]];
  }
  if (!fromOwnDevice(state, event)) return [state, [refuse(event, "own_devices_only")]];
  if (kind === ContentType.SENT_TRANSCRIPT) return [state, transcript(state, event)];
  if (kind === ContentType.HISTORY_BUNDLE_KEY) {
    if (state.historyFrom === null) return [state, [refuse(event, "no_history_expected")]];
    if (state.historyFrom !== event.senderDevice) return [state, [refuse(event, "not_approver")]];
    state = state.with({ historyFrom: null }); // once
    return [state, [new AcceptHistoryKey(event.senderDevice, event.body)]];
  }
  if (kind === ContentType.ACCOUNT_SYNC_KEY) return [state, [new AcceptSyncKey(event.senderDevice, event.body)]]; // to the sync machine
  if (kind === ContentType.ACCOUNT_SYNC_CHECKPOINT) return [state, [new AcceptSyncCheckpoint(event.senderDevice, event.body)]];
  return [state, []]; // a device-list notice: the stamp's fetch is ContentReceived's
}

/**
 * A read receipt only when the setting is on, and only to a contact not blocked (the own
 * devices learn it by transcript).
 * @param {DeviceState} state @param {MessagesRead} event @returns {Result}
 */
export function messagesRead(state, event) {
  if (!state.readReceipts || !event.messageIds.length || !state.contacts.has(event.peer)) return [state, []];
  if (isBlocked(state, event.peer)) return [state, []];
  const ids = [...event.messageIds];
  /** @type {Effect[]} */
  const effects = [];
  for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) {
    effects.push(
      new SendContent(event.peer, ContentType.RECEIPT, { kind: "read", message_ids: ids.slice(i, i + MAX_RECEIPT_IDS) }),
    );
  }
  return [state, effects];
}

/**
 * What a message record keeps of a text or a file (its pointer, section 26.2).
 * @param {number} contentType @param {Record<string, any>} body
 */
function shown(contentType, body) {
  return contentType === ContentType.ATTACHMENT ? { kind: "attachment", attachment: body } : { kind: "text", text: body.text };
}

/**
 * A text or a file from another account: kept, and answered with a delivery receipt.
 * @param {DeviceState} state @param {ContentDecrypted} event @returns {Effect[]}
 */
function text(state, event) {
  if (event.sender === state.accountId) return []; // own texts and files arrive as sent transcripts
  const { kind, ...fields } = shown(event.contentType, event.body);
  /** @type {Effect[]} */
  const effects = [new StoreMessage(record(event, kind, { ...fields, status: "received" }))];
  if (state.contacts.has(event.sender)) {
    // receipts only to contacts (DESIGN section 7)
    effects.push(new SendContent(event.sender, ContentType.RECEIPT, { kind: "delivered", message_ids: [event.messageId] }));
  }
  return effects;
}

/**
 * Another own device's send: its text or file as an own outgoing message, its read receipt
 * as the conversation read there.
 * @param {DeviceState} state @param {ContentDecrypted} event @returns {Effect[]}
 */
function transcript(state, event) {
  const peer = event.body.recipient;
  let inner;
  try {
    inner = decodeContent(b64uDecode(event.body.content, { what: "sent transcript" }));
  } catch (error) {
    if (error instanceof ProtocolError) return [refuse(event, "malformed_transcript")];
    throw error;
  }
  if (inner.type === ContentType.TEXT || inner.type === ContentType.ATTACHMENT) {
    return [
      new StoreMessage({
        author: state.accountId,
        author_device: event.senderDevice,
        conversation: peer,
        id: b64uEncode(inner.messageId),
        outgoing: true,
        status: "sent",
        timestamp: inner.timestamp,
        ...shown(inner.type, inner.body),
      }),
    ];
  }
  if (inner.type === ContentType.RECEIPT && "group_id" in inner.body) return []; // what an own device read in a group is not told to the others (yet)
  if (inner.type === ContentType.RECEIPT && inner.body.kind === "read") {
    return [new MarkRead(peer, [...inner.body.message_ids])];
  }
  return [];
}

/** @param {ContentDecrypted} event @param {string} kind @param {Record<string, any>} more */
function record(event, kind, more) {
  return {
    kind,
    author: event.sender,
    author_device: event.senderDevice,
    conversation: event.sender,
    id: event.messageId,
    outgoing: false,
    timestamp: event.timestamp,
    ...more,
  };
}

/** @param {DeviceState} state @param {ContentDecrypted} event */
function fromOwnDevice(state, event) {
  const own = state.lists.get(state.accountId);
  return event.sender === state.accountId && own !== undefined && own.deviceList.entry(event.senderDevice) !== null;
}

/** @param {ContentDecrypted} event @param {string} reason */
function refuse(event, reason) {
  return new ContentVerdict(event.sender, event.senderDevice, "refuse", reason);
}
