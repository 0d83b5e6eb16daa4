// What happens to a device, as the engine's input (docs/protocol.md section 22.1); mirror of
// protocol/engine/events.py. Every event carries `now` (ms): the clock is an input.

import { b64uDecode, b64uEncode } from "../encoding.js";
import { MalformedMessage } from "../exceptions.js";
import { listsFromJSON, listsToJSON } from "./groupstate.js";

/** @typedef {import("./groupstate.js").Lists} Lists */

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

/**
 * An envelope from a device of a verified list did not decrypt (docs/protocol.md 24.2):
 * `sentAt` the deliver entry's, `reason` the error's code (informational).
 */
export class DecryptFailed {
  static kind = "decrypt_failed";
  /**
   * @param {string} sender @param {string} senderDevice @param {string} envelopeId
   * @param {number} sentAt @param {string} reason @param {number} now
   */
  constructor(sender, senderDevice, envelopeId, sentAt, reason, now) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.envelopeId = envelopeId;
    this.sentAt = sentAt;
    this.reason = reason;
    this.now = now;
  }
  toJSON() {
    return {
      type: DecryptFailed.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      envelope_id: this.envelopeId,
      sent_at: this.sentAt,
      reason: this.reason,
      now: this.now,
    };
  }
}

/** A timer: the adapter fires it every few seconds while its socket is open (24.2). */
export class RetryDue {
  static kind = "retry_due";
  /** @param {number} now */
  constructor(now) {
    this.now = now;
  }
  toJSON() {
    return { type: RetryDue.kind, now: this.now };
  }
}

/** The person asked again for a message that could not be decrypted (24.2). */
export class RetryAgain {
  static kind = "retry_again";
  /** @param {string} senderDevice @param {string} envelopeId @param {number} now */
  constructor(senderDevice, envelopeId, now) {
    this.senderDevice = senderDevice;
    this.envelopeId = envelopeId;
    this.now = now;
  }
  toJSON() {
    return { type: RetryAgain.kind, sender_device: this.senderDevice, envelope_id: this.envelopeId, now: this.now };
  }
}

/**
 * A retry request (type 9's `body`) from `senderDevice`, with what the resend cache holds for
 * its envelope (`cached`: `{envelope_id, recipient, sent_at, targets, resends}`, or null; 24.3).
 */
export class RetryRequested {
  static kind = "retry_requested";
  /**
   * @param {string} sender @param {string} senderDevice @param {Record<string, any>} body
   * @param {Record<string, any> | null} cached @param {number} now
   */
  constructor(sender, senderDevice, body, cached, now) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.body = body;
    this.cached = cached;
    this.now = now;
  }
  toJSON() {
    return {
      type: RetryRequested.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      body: this.body,
      cached: this.cached,
      now: this.now,
    };
  }
}

/**
 * The person changed what follows the account (section 22.8): each mutation is
 * [collection, index, value | null], stamped with `now` and this device. `seed`: 32 fresh
 * random bytes from the adapter, the only randomness the sync machine uses (nonces, keys).
 */
export class SyncMutated {
  static kind = "sync_mutated";
  /** @param {[string, string[], Record<string, any> | null][]} mutations @param {number} now @param {Uint8Array} seed */
  constructor(mutations, now, seed) {
    this.mutations = mutations;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return {
      type: SyncMutated.kind,
      mutations: this.mutations.map(([collection, index, value]) => ({ collection, index, value })),
      now: this.now,
      seed: b64uEncode(this.seed),
    };
  }
}

/**
 * Read the account's log: the `state_changed` frame (its `version`), the socket
 * (re)connected or the page loaded (`version` null).
 */
export class SyncFetchWanted {
  static kind = "sync_fetch_wanted";
  /** @param {number | null} version @param {number} now @param {Uint8Array} seed */
  constructor(version, now, seed) {
    this.version = version;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return { type: SyncFetchWanted.kind, version: this.version, now: this.now, seed: b64uEncode(this.seed) };
  }
}

/** An account sync key (content type 7) the device engine accepted from an own device. */
export class SyncKeyReceived {
  static kind = "sync_key_received";
  /** @param {string} senderDevice @param {Record<string, any>} body @param {number} now @param {Uint8Array} seed */
  constructor(senderDevice, body, now, seed) {
    this.senderDevice = senderDevice;
    this.body = body;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return {
      type: SyncKeyReceived.kind,
      sender_device: this.senderDevice,
      body: this.body,
      now: this.now,
      seed: b64uEncode(this.seed),
    };
  }
}

/**
 * An own device's position in the log (content type 8, `{version, chain}`), accepted by the
 * device engine from an own listed device (section 23.8).
 */
export class SyncCheckpointReceived {
  static kind = "sync_checkpoint_received";
  /** @param {string} senderDevice @param {Record<string, any>} body @param {number} now @param {Uint8Array} seed */
  constructor(senderDevice, body, now, seed) {
    this.senderDevice = senderDevice;
    this.body = body;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return {
      type: SyncCheckpointReceived.kind,
      sender_device: this.senderDevice,
      body: this.body,
      now: this.now,
      seed: b64uEncode(this.seed),
    };
  }
}

/**
 * A device was just linked (the approving device): send it the account's sync key, creating
 * the first one when the account has none.
 */
export class SyncKeyShareWanted {
  static kind = "sync_key_share_wanted";
  /** @param {number} now @param {Uint8Array} seed */
  constructor(now, seed) {
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return { type: SyncKeyShareWanted.kind, now: this.now, seed: b64uEncode(this.seed) };
  }
}

/**
 * Re-key the state now (an own device left), unless another device's rotation is in the log
 * already (section 22.8).
 */
export class SyncRotateWanted {
  static kind = "sync_rotate_wanted";
  /** @param {number} now @param {Uint8Array} seed */
  constructor(now, seed) {
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return { type: SyncRotateWanted.kind, now: this.now, seed: b64uEncode(this.seed) };
  }
}

/**
 * The own account's list as this device just verified it (section 4.3), with the devices the
 * server reports logged out (`suspended`): an own device that left holds the sync key, so the
 * state is re-keyed (section 22.8).
 */
export class SyncDevicesListed {
  static kind = "sync_devices_listed";
  /** @param {string[]} listed @param {string[]} suspended @param {number} now @param {Uint8Array} seed */
  constructor(listed, suspended, now, seed) {
    this.listed = listed;
    this.suspended = suspended;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return {
      type: SyncDevicesListed.kind,
      listed: this.listed,
      suspended: this.suspended,
      now: this.now,
      seed: b64uEncode(this.seed),
    };
  }
}

/**
 * The person uses this device (a page loaded, a minute passed in use): its last use goes into
 * the synced state, at most once per LAST_USE_EVERY_MS (section 22.8).
 */
export class SyncDeviceUsed {
  static kind = "sync_device_used";
  /** @param {number} now @param {Uint8Array} seed */
  constructor(now, seed) {
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return { type: SyncDeviceUsed.kind, now: this.now, seed: b64uEncode(this.seed) };
  }
}

/** The server's answer to the sync machine's request (status 0: no answer). */
export class SyncAnswered {
  static kind = "sync_answered";
  /** @param {string} requestId @param {number} status @param {any} body @param {number} now @param {Uint8Array} seed */
  constructor(requestId, status, body, now, seed) {
    this.requestId = requestId;
    this.status = status;
    this.body = body;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return {
      type: SyncAnswered.kind,
      request_id: this.requestId,
      status: this.status,
      body: this.body,
      now: this.now,
      seed: b64uEncode(this.seed),
    };
  }
}

/** @typedef {SyncMutated | SyncFetchWanted | SyncKeyReceived | SyncCheckpointReceived | SyncKeyShareWanted | SyncRotateWanted | SyncDevicesListed | SyncDeviceUsed | SyncAnswered} SyncEvent */

/** @typedef {FrameReceived | HttpAnswered | ListWanted | SenderSeen | ContentReceived | ContentDecrypted | MessagesRead | SendWanted | DecryptFailed | RetryDue | RetryAgain | RetryRequested} Event */

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
  if (kind === DecryptFailed.kind) {
    return new DecryptFailed(data.sender, data.sender_device, data.envelope_id, data.sent_at, data.reason, now);
  }
  if (kind === RetryDue.kind) return new RetryDue(now);
  if (kind === RetryAgain.kind) return new RetryAgain(data.sender_device, data.envelope_id, now);
  if (kind === RetryRequested.kind) {
    return new RetryRequested(data.sender, data.sender_device, data.body, data.cached ?? null, now);
  }
  throw new MalformedMessage(`engine event: unknown type ${JSON.stringify(kind)}`);
}

/**
 * The sync machine's event a scenario file spells out (the JSON form of `toJSON`).
 * @param {any} data @returns {SyncEvent}
 */
export function syncEventFromJSON(data) {
  const { type: kind, now } = data;
  const seed = b64uDecode(data.seed, { length: 32, what: "sync seed" });
  if (kind === SyncMutated.kind) {
    return new SyncMutated(
      data.mutations.map((/** @type {any} */ m) => [m.collection, [...m.index], m.value]),
      now,
      seed,
    );
  }
  if (kind === SyncFetchWanted.kind) return new SyncFetchWanted(data.version ?? null, now, seed);
  if (kind === SyncKeyReceived.kind) return new SyncKeyReceived(data.sender_device, data.body, now, seed);
  if (kind === SyncCheckpointReceived.kind) return new SyncCheckpointReceived(data.sender_device, data.body, now, seed);
  if (kind === SyncKeyShareWanted.kind) return new SyncKeyShareWanted(now, seed);
  if (kind === SyncRotateWanted.kind) return new SyncRotateWanted(now, seed);
  if (kind === SyncDevicesListed.kind) return new SyncDevicesListed([...data.listed], [...data.suspended], now, seed);
  if (kind === SyncDeviceUsed.kind) return new SyncDeviceUsed(now, seed);
  if (kind === SyncAnswered.kind) return new SyncAnswered(data.request_id, data.status, data.body, now, seed);
  throw new MalformedMessage(`engine event: unknown type ${JSON.stringify(kind)}`);
}

// ---------------------------------------------------------------- the group machine (25.8)

/** A doorbell, a (re)connect or a head ahead: read the log after the chain's head. */
export class GroupFetchWanted {
  static kind = "group_fetch_wanted";
  /** @param {number} now */
  constructor(now) {
    this.now = now;
  }
  toJSON() {
    return { type: GroupFetchWanted.kind, now: this.now };
  }
}

/** The server's answer to the group machine's fetch (status 0: no answer). */
export class GroupAnswered {
  static kind = "group_answered";
  /** @param {string} requestId @param {number} status @param {any} body @param {Lists} lists @param {number} now */
  constructor(requestId, status, body, lists, now) {
    this.requestId = requestId;
    this.status = status;
    this.body = body;
    this.lists = lists;
    this.now = now;
  }
  toJSON() {
    return {
      type: GroupAnswered.kind,
      request_id: this.requestId,
      status: this.status,
      body: this.body,
      lists: listsToJSON(this.lists),
      now: this.now,
    };
  }
}

/** The lists the machine asked for are verified: what waits for them resumes. */
export class GroupListsKnown {
  static kind = "group_lists_known";
  /** @param {Lists} lists @param {number} now @param {Uint8Array} seed */
  constructor(lists, now, seed) {
    this.lists = lists;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return { type: GroupListsKnown.kind, lists: listsToJSON(this.lists), now: this.now, seed: b64uEncode(this.seed) };
  }
}

/** A sender-key distribution (content type 11) the device engine accepted over the pairwise session with `senderDevice`. */
export class GroupKeyReceived {
  static kind = "group_key_received";
  /** @param {string} sender @param {string} senderDevice @param {Record<string, any>} body @param {Lists} lists @param {number} now */
  constructor(sender, senderDevice, body, lists, now) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.body = body;
    this.lists = lists;
    this.now = now;
  }
  toJSON() {
    return {
      type: GroupKeyReceived.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      body: this.body,
      lists: listsToJSON(this.lists),
      now: this.now,
    };
  }
}

/** A receipt for group messages (25.10) the device engine accepted over the pairwise session with `senderDevice`. */
export class GroupReceiptReceived {
  static kind = "group_receipt_received";
  /** @param {string} sender @param {string} senderDevice @param {Record<string, any>} body @param {Lists} lists @param {number} now */
  constructor(sender, senderDevice, body, lists, now) {
    this.sender = sender;
    this.senderDevice = senderDevice;
    this.body = body;
    this.lists = lists;
    this.now = now;
  }
  toJSON() {
    return {
      type: GroupReceiptReceived.kind,
      sender: this.sender,
      sender_device: this.senderDevice,
      body: this.body,
      lists: listsToJSON(this.lists),
      now: this.now,
    };
  }
}

/** The person saw these messages of `sender`'s in the group (25.10). */
export class GroupMessagesRead {
  static kind = "group_messages_read";
  /** @param {string} sender @param {string[]} messageIds @param {boolean} readReceipts @param {number} now */
  constructor(sender, messageIds, readReceipts, now) {
    this.sender = sender;
    this.messageIds = messageIds;
    this.readReceipts = readReceipts;
    this.now = now;
  }
  toJSON() {
    return {
      type: GroupMessagesRead.kind,
      sender: this.sender,
      message_ids: this.messageIds,
      read_receipts: this.readReceipts,
      now: this.now,
    };
  }
}

/** A group message (section 25.5) delivered for this group. */
export class GroupMessageReceived {
  static kind = "group_message_received";
  /** @param {Uint8Array} message @param {Lists} lists @param {number} now */
  constructor(message, lists, now) {
    this.message = message;
    this.lists = lists;
    this.now = now;
  }
  toJSON() {
    return { type: GroupMessageReceived.kind, message: b64uEncode(this.message), lists: listsToJSON(this.lists), now: this.now };
  }
}

/** The person sends an encoded content (section 10) to the group. */
export class GroupSendWanted {
  static kind = "group_send_wanted";
  /** @param {string} sendId @param {Uint8Array} plaintext @param {Lists} lists @param {number} now @param {Uint8Array} seed */
  constructor(sendId, plaintext, lists, now, seed) {
    this.sendId = sendId;
    this.plaintext = plaintext;
    this.lists = lists;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return {
      type: GroupSendWanted.kind,
      send_id: this.sendId,
      plaintext: b64uEncode(this.plaintext),
      lists: listsToJSON(this.lists),
      now: this.now,
      seed: b64uEncode(this.seed),
    };
  }
}

/**
 * The person changes the group (section 25.1's kinds: create, add, remove, leave, promote,
 * demote, rename), as this device, whose identity public key is `identityKey`.
 */
export class GroupChangeWanted {
  static kind = "group_change_wanted";
  /**
   * @param {string} changeId @param {string} change @param {string[]} accounts @param {string} name
   * @param {Uint8Array} identityKey @param {Lists} lists @param {number} now
   */
  constructor(changeId, change, accounts, name, identityKey, lists, now) {
    this.changeId = changeId;
    this.change = change;
    this.accounts = accounts;
    this.name = name;
    this.identityKey = identityKey;
    this.lists = lists;
    this.now = now;
  }
  toJSON() {
    return {
      type: GroupChangeWanted.kind,
      change_id: this.changeId,
      change: this.change,
      accounts: this.accounts,
      name: this.name,
      identity_key: b64uEncode(this.identityKey),
      lists: listsToJSON(this.lists),
      now: this.now,
    };
  }
}

/** The adapter signed the entry bytes of `group_sign` with the device's identity key. */
export class GroupSigned {
  static kind = "group_signed";
  /** @param {string} changeId @param {Uint8Array} signature @param {Lists} lists @param {number} now */
  constructor(changeId, signature, lists, now) {
    this.changeId = changeId;
    this.signature = signature;
    this.lists = lists;
    this.now = now;
  }
  toJSON() {
    return {
      type: GroupSigned.kind,
      change_id: this.changeId,
      signature: b64uEncode(this.signature),
      lists: listsToJSON(this.lists),
      now: this.now,
    };
  }
}

/**
 * The server's answer to a `group_send`: `accepted {id}` or `error` with `ref`; after
 * `mismatched_devices` the adapter passes the members' lists fetched and verified again.
 */
export class GroupSendAnswered {
  static kind = "group_send_answered";
  /** @param {Record<string, any>} frame @param {Lists} lists @param {number} now @param {Uint8Array} seed */
  constructor(frame, lists, now, seed) {
    this.frame = frame;
    this.lists = lists;
    this.now = now;
    this.seed = seed;
  }
  toJSON() {
    return {
      type: GroupSendAnswered.kind,
      frame: this.frame,
      lists: listsToJSON(this.lists),
      now: this.now,
      seed: b64uEncode(this.seed),
    };
  }
}

/** @typedef {GroupFetchWanted | GroupAnswered | GroupListsKnown | GroupKeyReceived | GroupMessageReceived | GroupSendWanted | GroupChangeWanted | GroupSigned | GroupSendAnswered | GroupReceiptReceived | GroupMessagesRead} GroupEvent */

/**
 * The group machine's event a scenario file spells out (the JSON form of `toJSON`).
 * @param {any} data @returns {GroupEvent}
 */
export function groupEventFromJSON(data) {
  const { type: kind, now } = data;
  if (kind === GroupFetchWanted.kind) return new GroupFetchWanted(now);
  if (kind === GroupMessagesRead.kind) return new GroupMessagesRead(data.sender, [...data.message_ids], data.read_receipts, now);
  const lists = listsFromJSON(data.lists);
  if (kind === GroupAnswered.kind) return new GroupAnswered(data.request_id, data.status, data.body, lists, now);
  if (kind === GroupKeyReceived.kind) return new GroupKeyReceived(data.sender, data.sender_device, data.body, lists, now);
  if (kind === GroupReceiptReceived.kind) return new GroupReceiptReceived(data.sender, data.sender_device, data.body, lists, now);
  if (kind === GroupMessageReceived.kind) {
    return new GroupMessageReceived(b64uDecode(data.message, { what: "group message" }), lists, now);
  }
  if (kind === GroupChangeWanted.kind) {
    const identityKey = b64uDecode(data.identity_key, { length: 32, what: "identity key" });
    return new GroupChangeWanted(data.change_id, data.change, [...data.accounts], data.name, identityKey, lists, now);
  }
  if (kind === GroupSigned.kind) {
    const signature = b64uDecode(data.signature, { length: 64, what: "entry signature" });
    return new GroupSigned(data.change_id, signature, lists, now);
  }
  const seed = b64uDecode(data.seed, { length: 32, what: "group seed" });
  if (kind === GroupListsKnown.kind) return new GroupListsKnown(lists, now, seed);
  if (kind === GroupSendAnswered.kind) return new GroupSendAnswered(data.frame, lists, now, seed);
  if (kind === GroupSendWanted.kind) {
    return new GroupSendWanted(data.send_id, b64uDecode(data.plaintext, { what: "group plaintext" }), lists, now, seed);
  }
  throw new MalformedMessage(`engine event: unknown type ${JSON.stringify(kind)}`);
}
