// Errors raised by the protocol; docs/protocol.md section 15 lists when each is raised.
// Messages say which check failed, what was expected and what came; never key material.

/** Base of every protocol error; `code` is stable and shared with the Python implementation. */
export class ProtocolError extends Error {
  static code = "protocol_error";

  /** @param {string} [message] */
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }

  /** @returns {string} */
  get code() {
    return /** @type {typeof ProtocolError} */ (this.constructor).code;
  }
}

export class MalformedMessage extends ProtocolError {
  static code = "malformed_message";
}

export class MalformedDeviceList extends ProtocolError {
  static code = "malformed_device_list";
}

export class InvalidKey extends ProtocolError {
  static code = "invalid_key";
}

export class InvalidSignature extends ProtocolError {
  static code = "invalid_signature";
}

export class AccountKeyChanged extends ProtocolError {
  static code = "account_key_changed";
}

export class MissingDeviceSignature extends ProtocolError {
  static code = "missing_device_signature";
}

export class StaleDeviceList extends ProtocolError {
  static code = "stale_device_list";
}

export class DeviceKeyChanged extends ProtocolError {
  static code = "device_key_changed";
}

export class UntrustedIdentity extends ProtocolError {
  static code = "untrusted_identity";
}

export class UnknownPrekey extends ProtocolError {
  static code = "unknown_prekey";
}

export class UnknownSession extends ProtocolError {
  static code = "unknown_session";
}

export class ReplayDetected extends ProtocolError {
  static code = "replay_detected";
}

export class TooManySkippedMessages extends ProtocolError {
  static code = "too_many_skipped_messages";
}

export class DecryptionFailed extends ProtocolError {
  static code = "decryption_failed";
}

/** A device whose signed entry lists version 2 offered version 1 (docs/protocol.md 27.5). */
export class DowngradeRefused extends ProtocolError {
  static code = "downgrade_refused";
}

export class HistoryBundleMismatch extends ProtocolError {
  static code = "history_bundle_mismatch";
}

/** A file's blob is not the one its message points at: cut short, too long, or with another
 * digest or plaintext (docs/protocol.md 26.3). */
export class AttachmentMismatch extends ProtocolError {
  static code = "attachment_mismatch";
}

/** JSON from the network refused by `parseJson`; `reason` names the rule (section 2.2). */
export class InvalidJson extends MalformedMessage {
  static code = "invalid_json";

  /** @param {string} reason @param {string} message */
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

/** An account-state entry refused (section 23.7); the device keeps its last good state. */
export class SyncRefused extends ProtocolError {
  static code = "sync_refused";
}

export class SyncKeyUnknown extends SyncRefused {
  static code = "sync_key_unknown";
}

export class SyncKeyRetired extends SyncRefused {
  static code = "sync_key_retired";
}

export class SyncEntryForged extends SyncRefused {
  static code = "sync_entry_forged";
}

export class SyncEntryMissing extends SyncRefused {
  static code = "sync_entry_missing";
}

export class SyncEntryReplayed extends SyncRefused {
  static code = "sync_entry_replayed";
}

export class SyncEntriesReordered extends SyncRefused {
  static code = "sync_entries_reordered";
}

export class SyncLogForked extends SyncRefused {
  static code = "sync_log_forked";
}

export class SyncStaleState extends SyncRefused {
  static code = "sync_stale_state";
}

export class SyncStateMismatch extends SyncRefused {
  static code = "sync_state_mismatch";
}

/** A group-log entry or head refused (section 25.2, 25.3); the device keeps its last good state. */
export class GroupRefused extends ProtocolError {
  static code = "group_refused";
}

export class GroupChainBroken extends GroupRefused {
  static code = "group_chain_broken";
}

export class GroupSignerUnlisted extends GroupRefused {
  static code = "group_signer_unlisted";
}

export class GroupEntryForged extends GroupRefused {
  static code = "group_entry_forged";
}

export class GroupNotAdmin extends GroupRefused {
  static code = "group_not_admin";
}

export class GroupRuleBroken extends GroupRefused {
  static code = "group_rule_broken";
}

export class GroupTooLarge extends GroupRefused {
  static code = "group_too_large";
}

export class GroupChainForked extends GroupRefused {
  static code = "group_chain_forked";
}

export class GroupEntryWithheld extends GroupRefused {
  static code = "group_entry_withheld";
}

export class SenderKeyUnknown extends ProtocolError {
  static code = "sender_key_unknown";
}
