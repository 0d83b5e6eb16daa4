"""Errors raised by the protocol; docs/protocol.md section 15 lists when each is raised.

Messages say which check failed, what was expected and what came; never key material.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every protocol error; `code` is stable and shared with the JS mirror."""

    code = "protocol_error"


class MalformedMessage(ProtocolError):
    code = "malformed_message"


class MalformedDeviceList(ProtocolError):
    code = "malformed_device_list"


class InvalidKey(ProtocolError):
    code = "invalid_key"


class InvalidSignature(ProtocolError):
    code = "invalid_signature"


class AccountKeyChanged(ProtocolError):
    code = "account_key_changed"


class MissingDeviceSignature(ProtocolError):
    code = "missing_device_signature"


class StaleDeviceList(ProtocolError):
    code = "stale_device_list"


class DeviceKeyChanged(ProtocolError):
    code = "device_key_changed"


class UntrustedIdentity(ProtocolError):
    code = "untrusted_identity"


class UnknownPrekey(ProtocolError):
    code = "unknown_prekey"


class UnknownSession(ProtocolError):
    code = "unknown_session"


class ReplayDetected(ProtocolError):
    code = "replay_detected"


class TooManySkippedMessages(ProtocolError):
    code = "too_many_skipped_messages"


class DecryptionFailed(ProtocolError):
    code = "decryption_failed"


class DowngradeRefused(ProtocolError):
    code = "downgrade_refused"


class HistoryBundleMismatch(ProtocolError):
    code = "history_bundle_mismatch"


class AttachmentMismatch(ProtocolError):
    """A file's blob is not the one its message points at: cut short, too long, or with
    another digest or plaintext (docs/protocol.md 26.3)."""

    code = "attachment_mismatch"


class InvalidJson(MalformedMessage):
    """JSON from the network refused by `parse_json`; `reason` names the rule (section 2.2)."""

    code = "invalid_json"

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class SyncRefused(ProtocolError):
    """An account-state entry refused (section 23.7); the device keeps its last good state."""

    code = "sync_refused"


class SyncKeyUnknown(SyncRefused):
    code = "sync_key_unknown"


class SyncKeyRetired(SyncRefused):
    code = "sync_key_retired"


class SyncEntryForged(SyncRefused):
    code = "sync_entry_forged"


class SyncEntryMissing(SyncRefused):
    code = "sync_entry_missing"


class SyncEntryReplayed(SyncRefused):
    code = "sync_entry_replayed"


class SyncEntriesReordered(SyncRefused):
    code = "sync_entries_reordered"


class SyncLogForked(SyncRefused):
    code = "sync_log_forked"


class SyncStaleState(SyncRefused):
    code = "sync_stale_state"


class SyncStateMismatch(SyncRefused):
    code = "sync_state_mismatch"


class GroupRefused(ProtocolError):
    """A group-log entry or head refused (section 25.2, 25.3); the device keeps its last good state."""

    code = "group_refused"


class GroupChainBroken(GroupRefused):
    code = "group_chain_broken"


class GroupSignerUnlisted(GroupRefused):
    code = "group_signer_unlisted"


class GroupEntryForged(GroupRefused):
    code = "group_entry_forged"


class GroupNotAdmin(GroupRefused):
    code = "group_not_admin"


class GroupRuleBroken(GroupRefused):
    code = "group_rule_broken"


class GroupTooLarge(GroupRefused):
    code = "group_too_large"


class GroupChainForked(GroupRefused):
    code = "group_chain_forked"


class GroupEntryWithheld(GroupRefused):
    code = "group_entry_withheld"


class SenderKeyUnknown(ProtocolError):
    code = "sender_key_unknown"
