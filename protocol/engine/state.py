"""The device engine's state (docs/protocol.md section 22): what a device knows, as values.

The state is rebuilt by an adapter from its store before an event and changed only by
`engine.handle`; every field has a JSON form, so scenario files can spell a state out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from protocol.devicelist import DeviceList
from protocol.encoding import b64u_decode, b64u_encode
from protocol.exceptions import MalformedMessage

LIST_MAX_AGE_MS = 5 * 60 * 1000  # a cached list older than this is refetched before use


@dataclass(frozen=True)
class ListRecord:
    """The newest list this device accepted for an account, and what it must remember of
    every list accepted before: each device id's key, and the pinned account key."""

    device_list: DeviceList
    account_key: bytes  # pinned: the own key, or the contact's key at first use
    known_devices: Mapping[str, bytes]  # every device id ever accepted -> identity key
    suspended: frozenset[str] = frozenset()  # listed, but logged out until re-signed
    checked_at: int = 0  # when the server last served this list (ms)

    @property
    def version(self) -> int:
        return self.device_list.version

    @property
    def hash(self) -> bytes:
        return self.device_list.hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_list": self.device_list.to_dict(),
            "account_key": b64u_encode(self.account_key),
            "known_devices": {d: b64u_encode(k) for d, k in sorted(self.known_devices.items())},
            "suspended": sorted(self.suspended),
            "checked_at": self.checked_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListRecord:
        return cls(
            device_list=DeviceList.from_dict(data["device_list"]),
            account_key=b64u_decode(data["account_key"], length=32, what="account key"),
            known_devices={
                d: b64u_decode(k, length=32, what="known device key")
                for d, k in _object(data["known_devices"]).items()
            },
            suspended=frozenset(data.get("suspended") or ()),
            checked_at=int(data.get("checked_at") or 0),
        )


@dataclass(frozen=True)
class PendingFetch:
    """A device-list request the engine issued and has no answer for yet."""

    account_id: str
    reason: str  # missing | stale | refresh | unknown_device | freeze | notice | devices_changed
    claimed: int | None = None  # freeze: the version the sender's device signed with

    def to_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "reason": self.reason, "claimed": self.claimed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingFetch:
        return cls(data["account_id"], data["reason"], data.get("claimed"))


@dataclass(frozen=True)
class PendingSend:
    """A send the engine plans (section 22.4): its recipient, how many plans it has had, the
    accounts whose lists it waits for, and the devices the server called stale."""

    recipient: str
    attempt: int = 1
    waiting: tuple[str, ...] = ()
    stale: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient,
            "attempt": self.attempt,
            "waiting": list(self.waiting),
            "stale": sorted(self.stale),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingSend:
        return cls(
            data["recipient"],
            int(data.get("attempt") or 1),
            tuple(data.get("waiting") or ()),
            frozenset(data.get("stale") or ()),
        )


@dataclass(frozen=True)
class RetryRecord:
    """An envelope this device could not decrypt, and its asks to the sending device
    (docs/protocol.md section 24.2)."""

    sender: str
    sender_device: str
    envelope_id: str
    sent_at: int  # the deliver entry's (ms): where the line stands in the conversation
    count: int  # asks made
    asked_at: int  # when the last ask went (ms)
    state: str = "waiting"  # waiting | failed

    @property
    def key(self) -> str:
        return retry_key(self.sender_device, self.envelope_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "sender_device": self.sender_device,
            "envelope_id": self.envelope_id,
            "sent_at": self.sent_at,
            "count": self.count,
            "asked_at": self.asked_at,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetryRecord:
        return cls(
            data["sender"],
            data["sender_device"],
            data["envelope_id"],
            int(data["sent_at"]),
            int(data["count"]),
            int(data["asked_at"]),
            data.get("state") or "waiting",
        )


def retry_key(sender_device: str, envelope_id: str) -> str:
    """The key of a retry record: one per envelope of one sending device."""
    return f"{sender_device}/{envelope_id}"


@dataclass(frozen=True)
class DeviceState:
    account_id: str
    device_id: str
    account_key: bytes  # the own account key (the primary's identity key)
    lists: Mapping[str, ListRecord] = field(default_factory=lambda: MappingProxyType({}))
    pending: Mapping[str, PendingFetch] = field(default_factory=lambda: MappingProxyType({}))
    next_request: int = 1
    sends: Mapping[str, PendingSend] = field(default_factory=lambda: MappingProxyType({}))
    # what receiving decides with (section 22.6)
    # accounts accepted as contacts with a confirmed security code (receipts go only there)
    contacts: frozenset[str] = frozenset()
    # each contact's account key as the account's contact record holds it (verified by the
    # own device that added it): the first list fetched of a contact must be signed by it
    contact_keys: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    read_receipts: bool = False  # the person's setting
    seen: frozenset[str] = frozenset()  # "<sender device>/<message id>" already applied
    history_from: str | None = None  # the approving device, until its history key came
    blocked: frozenset[str] = frozenset()  # accounts the person blocked (synced, 22.8)
    # envelopes this device could not decrypt, by retry_key (section 24.2)
    retries: Mapping[str, RetryRecord] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "device_id": self.device_id,
            "account_key": b64u_encode(self.account_key),
            "lists": {a: r.to_dict() for a, r in sorted(self.lists.items())},
            "pending": {i: p.to_dict() for i, p in sorted(self.pending.items())},
            "next_request": self.next_request,
            "sends": {e: s.to_dict() for e, s in sorted(self.sends.items())},
            "contacts": sorted(self.contacts),
            "contact_keys": {a: b64u_encode(k) for a, k in sorted(self.contact_keys.items())},
            "read_receipts": self.read_receipts,
            "seen": sorted(self.seen),
            "history_from": self.history_from,
            "blocked": sorted(self.blocked),
            "retries": {k: r.to_dict() for k, r in sorted(self.retries.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceState:
        return cls(
            account_id=data["account_id"],
            device_id=data["device_id"],
            account_key=b64u_decode(data["account_key"], length=32, what="account key"),
            lists={a: ListRecord.from_dict(r) for a, r in _object(data.get("lists")).items()},
            pending={i: PendingFetch.from_dict(p) for i, p in _object(data.get("pending")).items()},
            next_request=int(data.get("next_request") or 1),
            sends={e: PendingSend.from_dict(s) for e, s in _object(data.get("sends")).items()},
            contacts=frozenset(data.get("contacts") or ()),
            contact_keys={
                a: b64u_decode(k, length=32, what="contact account key")
                for a, k in _object(data.get("contact_keys")).items()
            },
            read_receipts=bool(data.get("read_receipts")),
            seen=frozenset(data.get("seen") or ()),
            history_from=data.get("history_from"),
            blocked=frozenset(data.get("blocked") or ()),
            retries={k: RetryRecord.from_dict(r) for k, r in _object(data.get("retries")).items()},
        )


def is_blocked(state: DeviceState, account_id: str) -> bool:
    """Whether the person blocked this account (the own account never is)."""
    return account_id != state.account_id and account_id in state.blocked


def _object(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedMessage("engine state: expected an object")
    return value
