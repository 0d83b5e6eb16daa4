// What happens to a device, as the engine's input (docs/protocol.md section 22.1); mirror of
// protocol/engine/events.py. Every event carries `now` (ms): the clock is an input.

import { b64uDecode, b64uEncode } from "../encoding.js";
import { MalformedMessage } from "../exceptions.js";

/** A frame the server sent on the device socket. */
export class FrameReceived {
  static kind = "frame_received";
  /** @param {Record<string, any>} frame @param {number} now */
  constructor(frame, now) {
    this.frame = frame;
    this.now = now;
  }
  toJSON() {
    return { type: FrameReceived.kind, frame: this.frame, now: this.now };
  }
}

/** The server's answer to an `HttpRequest` effect, by its request id. */
export class HttpAnswered {
  static kind = "http_answered";
  /** @param {string} requestId @param {number} status @param {any} body @param {number} now */
  constructor(requestId, status, body, now) {
    this.requestId = requestId;
    this.status = status;
    this.body = body;
    this.now = now;
  }
  toJSON() {
    return {
      type: HttpAnswered.kind,
      request_id: this.requestId,
      status: this.status,
      body: this.body,
      now: this.now,
    };
  }
}

/**
 * The app is about to use an account's list (a send, adding a contact); `refresh` asks for
 * the server's current list whatever the cache holds.
 */
export class ListWanted {
  static kind = "list_wanted";
  /** @param {string} accountId @param {number} now @param {boolean} [refresh] */
  constructor(accountId, now, refresh = false) {
    this.accountId = accountId;
    this.now = now;
    this.refresh = refresh;
  }
  toJSON() {
    return { type: ListWanted.kind, account_id: this.accountId, refresh: this.refresh, now: this.now };
  }
}

/** An envelope arrived from this account's device; its key must come from a signed list. */
export class SenderSeen {
  static kind = "sender_seen";
  /** @param {string} sender @param {string} senderDevice @param {number} now */
  constructor(sender, senderDevice, now) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.now = now;
  }
  toJSON() {
    return { type: SenderSeen.kind, sender: this.sender, sender_device: this.senderDevice, now: this.now };
  }
}

/**
 * A content decrypted from `senderDevice` (new, not a duplicate): its type and the sender's
 * list stamp (section 10.1).
 */
export class ContentReceived {
  static kind = "content_received";
  /**
   * @param {string} sender @param {string} senderDevice @param {number} contentType
   * @param {number} senderListVersion @param {Uint8Array} senderListHash @param {number} now
   */
  constructor(sender, senderDevice, contentType, senderListVersion, senderListHash, now) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.contentType = contentType;
    this.senderListVersion = senderListVersion;
    this.senderListHash = senderListHash;
    this.now = now;
  }
  toJSON() {
    return {
      type: ContentReceived.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      content_type: this.contentType,
      sender_list_version: this.senderListVersion,
      sender_list_hash: b64uEncode(this.senderListHash),
      now: this.now,
    };
  }
}

/**
 * The person sends a content to `recipient` (a contact, or the own account for a content to
 * own devices only); `envelopeId` names the send in every answer.
 */
export class SendWanted {
  static kind = "send_wanted";
  /** @param {string} envelopeId @param {string} recipient @param {number} now */
  constructor(envelopeId, recipient, now) {
    this.envelopeId = envelopeId;
    this.recipient = recipient;
    this.now = now;
  }
  toJSON() {
    return { type: SendWanted.kind, envelope_id: this.envelopeId, recipient: this.recipient, now: this.now };
  }
}

/**
 * A content decrypted from `senderDevice`, to apply (section 22.6): its type (perhaps one
 * this device does not know), the message id inside the ciphertext (b64u) and body.
 */
export class ContentDecrypted {
  static kind = "content_decrypted";
  /**
   * @param {string} sender @param {string} senderDevice @param {number} contentType
   * @param {string} messageId @param {number} timestamp @param {Record<string, any>} body
   * @param {number} now
   */
  constructor(sender, senderDevice, contentType, messageId, timestamp, body, now) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.contentType = contentType;
    this.messageId = messageId;
    this.timestamp = timestamp;
    this.body = body;
    this.now = now;
  }
  toJSON() {
    return {
      type: ContentDecrypted.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      content_type: this.contentType,
      message_id: this.messageId,
      timestamp: this.timestamp,
      body: this.body,
      now: this.now,
    };
  }
}

/** The person read these messages (b64u ids) of the conversation with `peer`. */
export class MessagesRead {
  static kind = "messages_read";
  /** @param {string} peer @param {string[]} messageIds @param {number} now */
  constructor(peer, messageIds, now) {
    this.peer = peer;
    this.messageIds = messageIds;
    this.now = now;
  }
  toJSON() {
    return { type: MessagesRead.kind, peer: this.peer, message_ids: this.messageIds, now: this.now };
  }
}

/** @typedef {FrameReceived | HttpAnswered | ListWanted | SenderSeen | ContentReceived | ContentDecrypted | MessagesRead | SendWanted} Event */

/**
 * The event a scenario file spells out (the JSON form of `toJSON`).
 * @param {any} data @returns {Event}
 */
export function eventFromJSON(data) {
  const { type: kind, now } = data;
  if (kind === FrameReceived.kind) return new FrameReceived(data.frame, now);
  if (kind === HttpAnswered.kind) return new HttpAnswered(data.request_id, data.status, data.body, now);
  if (kind === ListWanted.kind) return new ListWanted(data.account_id, now, Boolean(data.refresh));
  if (kind === SenderSeen.kind) return new SenderSeen(data.sender, data.sender_device, now);
  if (kind === ContentReceived.kind) {
    return new ContentReceived(
      data.sender,
      data.sender_device,
      data.content_type,
      data.sender_list_version,
      b64uDecode(data.sender_list_hash, { length: 32, what: "sender list hash" }),
      now,
    );
  }
  if (kind === SendWanted.kind) return new SendWanted(data.envelope_id, data.recipient, now);
  if (kind === ContentDecrypted.kind) {
    return new ContentDecrypted(
      data.sender,
      data.sender_device,
      data.content_type,
      data.message_id,
      data.timestamp,
      data.body,
      now,
    );
  }
  if (kind === MessagesRead.kind) return new MessagesRead(data.peer, [...data.message_ids], now);
  throw new MalformedMessage(`engine event: unknown type ${JSON.stringify(kind)}`);
}
