// What the engine asks its adapter to do (docs/protocol.md section 22.2); mirror of
// protocol/engine/effects.py. `toJSON` is the form scenario files compare; a `detail` (an
// error's text, for people) is language-specific and left out of it.

import { b64uEncode } from "../encoding.js";

/** @typedef {import("./state.js").ListRecord} ListRecord */
/** @typedef {import("./state.js").RetryRecord} RetryRecord */
/** @typedef {import("./syncstate.js").SyncState} SyncState */

/** A frame to send on the device socket. */
export class SendFrame {
  static kind = "send_frame";
  /** @param {Record<string, any>} frame */
  constructor(frame) {
    this.frame = frame;
  }
  toJSON() {
    return { type: SendFrame.kind, frame: this.frame };
  }
}

/** A request to make; its answer comes back as `HttpAnswered(requestId, ...)`. */
export class HttpRequest {
  static kind = "http_request";
  /** @param {string} requestId @param {string} method @param {string} path @param {any} [body] */
  constructor(requestId, method, path, body = null) {
    this.requestId = requestId;
    this.method = method;
    this.path = path;
    this.body = body;
  }
  toJSON() {
    return { type: HttpRequest.kind, request_id: this.requestId, method: this.method, path: this.path, body: this.body };
  }
}

/** A verified list to store for the account (replacing the record kept before). */
export class StoreList {
  static kind = "store_list";
  /** @param {string} accountId @param {ListRecord} record */
  constructor(accountId, record) {
    this.accountId = accountId;
    this.record = record;
  }
  toJSON() {
    return { type: StoreList.kind, account_id: this.accountId, record: this.record.toJSON() };
  }
}

/** Something to tell the person, about an account; `code` says what (section 22.3). */
export class Notice {
  static kind = "notice";
  /** @param {string} accountId @param {string} code @param {Record<string, any>} [data] @param {string} [detail] */
  constructor(accountId, code, data = {}, detail = "") {
    this.accountId = accountId;
    this.code = code;
    this.data = data;
    this.detail = detail;
  }
  toJSON() {
    return { type: Notice.kind, account_id: this.accountId, code: this.code, data: this.data };
  }
}

/**
 * What to do with one received content: `accept` (the adapter applies it) or `refuse` (it
 * is dropped, with a notice); `reason` says why it was refused.
 */
export class ContentVerdict {
  static kind = "content_verdict";
  /** @param {string} sender @param {string} senderDevice @param {string} verdict @param {string | null} [reason] */
  constructor(sender, senderDevice, verdict, reason = null) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.verdict = verdict;
    this.reason = reason;
  }
  toJSON() {
    return {
      type: ContentVerdict.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      verdict: this.verdict,
      reason: this.reason,
    };
  }
}

/**
 * Who gets a send (section 9): the content for each of `devices`, a sent transcript for each
 * of `transcripts` (the other own devices). The adapter encrypts for exactly these devices
 * and sends one `send` frame; `attempt` counts the plans of this send.
 */
export class SendPlan {
  static kind = "send_plan";
  /**
   * @param {string} envelopeId @param {string} recipient @param {string[]} devices
   * @param {string[]} transcripts @param {number} attempt
   */
  constructor(envelopeId, recipient, devices, transcripts, attempt) {
    this.envelopeId = envelopeId;
    this.recipient = recipient;
    this.devices = devices;
    this.transcripts = transcripts;
    this.attempt = attempt;
  }
  toJSON() {
    return {
      type: SendPlan.kind,
      envelope_id: this.envelopeId,
      recipient: this.recipient,
      devices: this.devices,
      transcripts: this.transcripts,
      attempt: this.attempt,
    };
  }
}

/** A message record to store and show (section 22.6): `kind` text or unsupported. */
export class StoreMessage {
  static kind = "store_message";
  /** @param {Record<string, any>} record */
  constructor(record) {
    this.record = record;
  }
  toJSON() {
    return { type: StoreMessage.kind, record: this.record };
  }
}

/** A receipt `peer` sent for messages the own account wrote to them. */
export class ApplyReceipt {
  static kind = "apply_receipt";
  /** @param {string} peer @param {string} receipt delivered | read @param {string[]} messageIds */
  constructor(peer, receipt, messageIds) {
    this.peer = peer;
    this.receipt = receipt;
    this.messageIds = messageIds;
  }
  toJSON() {
    return { type: ApplyReceipt.kind, peer: this.peer, receipt: this.receipt, message_ids: this.messageIds };
  }
}

/** Another own device read these messages of the conversation with `peer`. */
export class MarkRead {
  static kind = "mark_read";
  /** @param {string} peer @param {string[]} messageIds */
  constructor(peer, messageIds) {
    this.peer = peer;
    this.messageIds = messageIds;
  }
  toJSON() {
    return { type: MarkRead.kind, peer: this.peer, message_ids: this.messageIds };
  }
}

/**
 * A content to encrypt and send to every device of `recipient` (and a transcript to the
 * own devices, as every send does).
 */
export class SendContent {
  static kind = "send_content";
  /** @param {string} recipient @param {number} contentType @param {Record<string, any>} body */
  constructor(recipient, contentType, body) {
    this.recipient = recipient;
    this.contentType = contentType;
    this.body = body;
  }
  toJSON() {
    return { type: SendContent.kind, recipient: this.recipient, content_type: this.contentType, body: this.body };
  }
}

/** The history bundle key from the approving device: fetch and open the bundle. */
export class AcceptHistoryKey {
  static kind = "accept_history_key";
  /** @param {string} senderDevice @param {Record<string, any>} body */
  constructor(senderDevice, body) {
    this.senderDevice = senderDevice;
    this.body = body;
  }
  toJSON() {
    return { type: AcceptHistoryKey.kind, sender_device: this.senderDevice, body: this.body };
  }
}

/** A content applied before (same sender device, same message id): ack and drop it. */
export class DropDuplicate {
  static kind = "drop_duplicate";
  /** @param {string} sender @param {string} senderDevice @param {string} messageId */
  constructor(sender, senderDevice, messageId) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.messageId = messageId;
  }
  toJSON() {
    return {
      type: DropDuplicate.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      message_id: this.messageId,
    };
  }
}

/** A content from an account the person blocked: ack and drop it (nothing stored, shown or answered). */
export class DropBlocked {
  static kind = "drop_blocked";
  /** @param {string} sender @param {string} senderDevice @param {string} messageId */
  constructor(sender, senderDevice, messageId) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.messageId = messageId;
  }
  toJSON() {
    return {
      type: DropBlocked.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      message_id: this.messageId,
    };
  }
}

/**
 * A sender-key distribution (content type 11): hand it to the machine of its group
 * (`GroupKeyReceived`, docs/protocol.md 25.8), which decides whether the sender counts.
 */
export class AcceptGroupKey {
  static kind = "accept_group_key";
  /** @param {string} sender @param {string} senderDevice @param {Record<string, any>} body */
  constructor(sender, senderDevice, body) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.body = body;
  }
  toJSON() {
    return { type: AcceptGroupKey.kind, sender: this.sender, sender_device: this.senderDevice, body: this.body };
  }
}

/**
 * A receipt for group messages (content type 2 with `group_id`): hand it to the machine of
 * its group (`GroupReceiptReceived`, docs/protocol.md 25.10), which checks the member.
 */
export class AcceptGroupReceipt {
  static kind = "accept_group_receipt";
  /** @param {string} sender @param {string} senderDevice @param {Record<string, any>} body */
  constructor(sender, senderDevice, body) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.body = body;
  }
  toJSON() {
    return { type: AcceptGroupReceipt.kind, sender: this.sender, sender_device: this.senderDevice, body: this.body };
  }
}

/**
 * An account sync key from an own listed device: hand it to the sync machine
 * (`SyncKeyReceived`).
 */
export class AcceptSyncKey {
  static kind = "accept_sync_key";
  /** @param {string} senderDevice @param {Record<string, any>} body */
  constructor(senderDevice, body) {
    this.senderDevice = senderDevice;
    this.body = body;
  }
  toJSON() {
    return { type: AcceptSyncKey.kind, sender_device: this.senderDevice, body: this.body };
  }
}

/**
 * An own listed device's position in the account's log (content type 8): hand it to the
 * sync machine (`SyncCheckpointReceived`).
 */
export class AcceptSyncCheckpoint {
  static kind = "accept_sync_checkpoint";
  /** @param {string} senderDevice @param {Record<string, any>} body */
  constructor(senderDevice, body) {
    this.senderDevice = senderDevice;
    this.body = body;
  }
  toJSON() {
    return { type: AcceptSyncCheckpoint.kind, sender_device: this.senderDevice, body: this.body };
  }
}

/**
 * The sync machine's state changed: store it (section 22.8). The compared form names the
 * position, the keys and what waits, not every record.
 */
export class StoreSync {
  static kind = "store_sync";
  /** @param {SyncState} state */
  constructor(state) {
    this.state = state;
  }
  toJSON() {
    const { account } = this.state;
    return {
      type: StoreSync.kind,
      version: account.version,
      chain: b64uEncode(account.chain),
      hash: b64uEncode(account.hash),
      key_ids: this.state.keys.map((k) => b64uEncode(k.keyId)),
      pending: this.state.pending.length,
      refused: this.state.refused === null ? null : this.state.refused[0],
    };
  }
}

/**
 * What changed in the synced state, for the adapter's own stores and views: each
 * `{collection, index, value}` (value null: removed), in canonical (collection, index) order.
 */
export class SyncChanged {
  static kind = "sync_changed";
  /** @param {{collection: string, index: string[], value: Record<string, any> | null}[]} changes */
  constructor(changes) {
    this.changes = changes;
  }
  toJSON() {
    return { type: SyncChanged.kind, changes: this.changes };
  }
}

/** Send the account sync key (content type 7, `body`) to every other own device. */
export class ShareSyncKey {
  static kind = "share_sync_key";
  /** @param {Record<string, any>} body */
  constructor(body) {
    this.body = body;
  }
  toJSON() {
    return { type: ShareSyncKey.kind, body: this.body };
  }
}

/**
 * Send this device's position (content type 8, `body` `{version, chain}`) to every other own
 * device, as a key is sent.
 */
export class ShareSyncCheckpoint {
  static kind = "share_sync_checkpoint";
  /** @param {Record<string, any>} body */
  constructor(body) {
    this.body = body;
  }
  toJSON() {
    return { type: ShareSyncCheckpoint.kind, body: this.body };
  }
}

/** A retry record to store, and its line to show (waiting or failed; 24.2). */
export class StoreRetry {
  static kind = "store_retry";
  /** @param {RetryRecord} record */
  constructor(record) {
    this.record = record;
  }
  toJSON() {
    return { type: StoreRetry.kind, record: this.record.toJSON() };
  }
}

/** A retry record to delete with its line: the content came, or was a duplicate (24.2). */
export class ForgetRetry {
  static kind = "forget_retry";
  /** @param {string} senderDevice @param {string} envelopeId */
  constructor(senderDevice, envelopeId) {
    this.senderDevice = senderDevice;
    this.envelopeId = envelopeId;
  }
  toJSON() {
    return { type: ForgetRetry.kind, sender_device: this.senderDevice, envelope_id: this.envelopeId };
  }
}

/**
 * Ask `device` of `recipient` to send the envelope again: a type-9 content with the current
 * signed prekey, sent to that one device (24.1, 24.4); `count` says which ask this is.
 */
export class SendRetryRequest {
  static kind = "send_retry_request";
  /** @param {string} recipient @param {string} device @param {string} envelopeId @param {number} count */
  constructor(recipient, device, envelopeId, count) {
    this.recipient = recipient;
    this.device = device;
    this.envelopeId = envelopeId;
    this.count = count;
  }
  toJSON() {
    return {
      type: SendRetryRequest.kind,
      recipient: this.recipient,
      device: this.device,
      envelope_id: this.envelopeId,
      count: this.count,
    };
  }
}

/** A retry request came: look its envelope up in the resend cache and feed `RetryRequested` (24.3). */
export class AcceptRetryRequest {
  static kind = "accept_retry_request";
  /** @param {string} sender @param {string} senderDevice @param {Record<string, any>} body */
  constructor(sender, senderDevice, body) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.body = body;
  }
  toJSON() {
    return { type: AcceptRetryRequest.kind, sender: this.sender, sender_device: this.senderDevice, body: this.body };
  }
}

/**
 * Answer a retry request: `{envelopeId, content}` as a type-10 content to that one device,
 * first starting a session from `signedPrekey` when `newSession`; cached as an alias (24.3).
 */
export class Resend {
  static kind = "resend";
  /**
   * @param {string} recipient @param {string} device @param {string} envelopeId
   * @param {string | null} content @param {boolean} newSession
   * @param {Record<string, any> | null} signedPrekey
   * @param {Record<string, any> | null} [kemPrekey] version 2 (27.5)
   */
  constructor(recipient, device, envelopeId, content, newSession, signedPrekey, kemPrekey = null) {
    this.recipient = recipient;
    this.device = device;
    this.envelopeId = envelopeId;
    this.content = content;
    this.newSession = newSession;
    this.signedPrekey = signedPrekey;
    this.kemPrekey = kemPrekey;
  }
  toJSON() {
    return {
      type: Resend.kind,
      recipient: this.recipient,
      device: this.device,
      envelope_id: this.envelopeId,
      content: this.content,
      new_session: this.newSession,
      signed_prekey: this.signedPrekey,
      kem_prekey: this.kemPrekey,
    };
  }
}

/** Raise the resend cache entry's count for that device (24.3). */
export class StoreResendCount {
  static kind = "store_resend_count";
  /** @param {string} envelopeId @param {string} device @param {number} count */
  constructor(envelopeId, device, count) {
    this.envelopeId = envelopeId;
    this.device = device;
    this.count = count;
  }
  toJSON() {
    return { type: StoreResendCount.kind, envelope_id: this.envelopeId, device: this.device, count: this.count };
  }
}

/**
 * The content asked for came again (b64u): decode it and apply it as a content from that
 * device (`ContentReceived`, `ContentDecrypted`; 24.2).
 */
export class AcceptResend {
  static kind = "accept_resend";
  /** @param {string} sender @param {string} senderDevice @param {string} envelopeId @param {string} content */
  constructor(sender, senderDevice, envelopeId, content) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.envelopeId = envelopeId;
    this.content = content;
  }
  toJSON() {
    return {
      type: AcceptResend.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      envelope_id: this.envelopeId,
      content: this.content,
    };
  }
}

// ---------------------------------------------------------------- the group machine (25.8)

/** Something to tell the person about the group; `code` says what (section 25.8). */
export class GroupNotice {
  static kind = "group_notice";
  /** @param {string} code @param {Record<string, any>} [data] @param {string} [detail] */
  constructor(code, data = {}, detail = "") {
    this.code = code;
    this.data = data;
    this.detail = detail;
  }
  toJSON() {
    return { type: GroupNotice.kind, code: this.code, data: this.data };
  }
}

/** Fetch and verify these accounts' lists, then feed `group_lists_known`. */
export class GroupListsWanted {
  static kind = "group_lists_wanted";
  /** @param {string[]} accounts */
  constructor(accounts) {
    this.accounts = accounts;
  }
  toJSON() {
    return { type: GroupListsWanted.kind, accounts: this.accounts };
  }
}

/**
 * Sign these entry bytes (section 25.1) with the device's identity key and feed
 * `group_signed`; the adapter signs nothing that does not start with the entry label.
 */
export class GroupSign {
  static kind = "group_sign";
  /** @param {string} changeId @param {Uint8Array} data */
  constructor(changeId, data) {
    this.changeId = changeId;
    this.data = data;
  }
  toJSON() {
    return { type: GroupSign.kind, change_id: this.changeId, data: b64uEncode(this.data) };
  }
}

/** A member's receipt for group messages the own account wrote (25.10). */
export class GroupReceipt {
  static kind = "group_receipt";
  /** @param {string} sender @param {string} receipt delivered | read @param {string[]} messageIds */
  constructor(sender, receipt, messageIds) {
    this.sender = sender;
    this.receipt = receipt;
    this.messageIds = messageIds;
  }
  toJSON() {
    return { type: GroupReceipt.kind, sender: this.sender, receipt: this.receipt, message_ids: this.messageIds };
  }
}

/** A group message decrypted: an encoded content (section 10) to apply. */
export class GroupContent {
  static kind = "group_content";
  /** @param {string} sender @param {string} senderDevice @param {Uint8Array} plaintext @param {number} headSeq */
  constructor(sender, senderDevice, plaintext, headSeq) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.plaintext = plaintext;
    this.headSeq = headSeq;
  }
  toJSON() {
    return {
      type: GroupContent.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      plaintext: b64uEncode(this.plaintext),
      head_seq: this.headSeq,
    };
  }
}

/**
 * A group message to send to `targets` ([account, device id] pairs), after each distribution
 * ([account, device id, type-11 body]) went over its pairwise session.
 */
export class GroupSend {
  static kind = "group_send";
  /**
   * @param {string} sendId @param {Uint8Array} message @param {[string, string][]} targets
   * @param {[string, string, Record<string, any>][]} distributions @param {boolean} rotated
   */
  constructor(sendId, message, targets, distributions, rotated) {
    this.sendId = sendId;
    this.message = message;
    this.targets = targets;
    this.distributions = distributions;
    this.rotated = rotated;
  }
  toJSON() {
    return {
      type: GroupSend.kind,
      send_id: this.sendId,
      message: b64uEncode(this.message),
      targets: this.targets.map(([account, deviceId]) => ({ account, device_id: deviceId })),
      distributions: this.distributions.map(([account, deviceId, body]) => ({ account, device_id: deviceId, body })),
      rotated: this.rotated,
    };
  }
}

/** @typedef {SendFrame | HttpRequest | StoreList | Notice | ContentVerdict | SendPlan | StoreMessage | ApplyReceipt | MarkRead | SendContent | AcceptHistoryKey | DropDuplicate | DropBlocked | AcceptSyncKey | AcceptSyncCheckpoint | AcceptGroupKey | AcceptGroupReceipt | StoreSync | SyncChanged | ShareSyncKey | ShareSyncCheckpoint | StoreRetry | ForgetRetry | SendRetryRequest | AcceptRetryRequest | Resend | StoreResendCount | AcceptResend | GroupNotice | GroupListsWanted | GroupSign | GroupContent | GroupSend | GroupReceipt} Effect */
