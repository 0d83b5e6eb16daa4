// What the engine asks its adapter to do (docs/protocol.md section 22.2); mirror of
// protocol/engine/effects.py. `toJSON` is the form scenario files compare; a `detail` (an
// error's text, for people) is language-specific and left out of it.

/** @typedef {import("./state.js").ListRecord} ListRecord */

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

/** @typedef {SendFrame | HttpRequest | StoreList | Notice | ContentVerdict | SendPlan} Effect */
