"""The group machine's record (docs/protocol.md section 25.8): all a device keeps of one group,
as one value with a strict JSON form (the adapter stores it, scenario files spell it out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from protocol.encoding import b64u_decode, b64u_encode, is_uint
from protocol.exceptions import MalformedMessage
from protocol.groups import GroupState
from protocol.senderkeys import ReceivingKey, SenderKey

MAX_WRITE_ATTEMPTS = 3  # signings of one change: the first, and two after the head moved
RECEIVING_CHAINS = 2  # per sending device: its current key and the one before it
MAX_HELD = 100  # messages and distributions waiting; as many sends waiting for lists

# account id -> {device id -> identity key}: the active devices of verified lists (25.8)
Lists = Mapping[str, Mapping[str, bytes]]


@dataclass(frozen=True)
class Held:
    """A group message (`kind` "message") or a distribution ("key") that waits."""

    kind: str
    data: bytes = b""  # the message
    sender: str = ""  # a distribution's sender, device and body
    sender_device: str = ""
    body: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "message":
            return {"kind": "message", "message": b64u_encode(self.data)}
        return {
            "kind": "key",
            "sender": self.sender,
            "sender_device": self.sender_device,
            "body": dict(self.body),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Held:
        if data.get("kind") == "message":
            return cls("message", b64u_decode(data["message"], what="held message"))
        _expect(data.get("kind") == "key", "group record: expected a held message or key")
        return cls("key", b"", data["sender"], data["sender_device"], dict(data["body"]))


@dataclass(frozen=True)
class WaitingSend:
    """A send that waits for the members' lists."""

    send_id: str
    plaintext: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"send_id": self.send_id, "plaintext": b64u_encode(self.plaintext)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WaitingSend:
        return cls(data["send_id"], b64u_decode(data["plaintext"], what="waiting send"))


@dataclass(frozen=True)
class Outgoing:
    """A group send out to the server: what to plan again after `mismatched_devices`, and
    the devices (identity keys) it was the first to give the key (taken back then)."""

    send_id: str
    plaintext: bytes
    distributed: frozenset[bytes]
    attempt: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "send_id": self.send_id,
            "plaintext": b64u_encode(self.plaintext),
            "distributed": [b64u_encode(k) for k in sorted(self.distributed)],
            "attempt": self.attempt,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outgoing:
        return cls(
            data["send_id"],
            b64u_decode(data["plaintext"], what="outgoing send"),
            frozenset(b64u_decode(k, length=32, what="identity key") for k in data["distributed"]),
            int(data["attempt"]),
        )


@dataclass(frozen=True)
class Writing:
    """A change this device writes to the log: `stage` signing (the adapter signs `data`),
    posting (`entry` is out as `request`) or waiting (the head moved: signed again on the
    head the next fetch ends at)."""

    change_id: str
    kind: str  # create | add | remove | leave | promote | demote | rename
    accounts: tuple[str, ...]
    name: str
    actor_key: bytes
    timestamp: int
    stage: str
    seq: int
    data: bytes = b""  # the entry bytes to sign
    entry: bytes = b""  # the wire entry
    request: str | None = None
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "kind": self.kind,
            "accounts": list(self.accounts),
            "name": self.name,
            "actor_key": b64u_encode(self.actor_key),
            "timestamp": self.timestamp,
            "stage": self.stage,
            "seq": self.seq,
            "data": b64u_encode(self.data),
            "entry": b64u_encode(self.entry),
            "request": self.request,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Writing:
        _expect(data["stage"] in ("signing", "posting", "waiting"), "group record: bad stage")
        return cls(
            data["change_id"],
            data["kind"],
            tuple(data["accounts"]),
            data["name"],
            b64u_decode(data["actor_key"], length=32, what="actor key"),
            data["timestamp"],
            data["stage"],
            data["seq"],
            b64u_decode(data["data"], what="entry bytes"),
            b64u_decode(data["entry"], what="group entry"),
            data.get("request"),
            int(data["attempts"]),
        )


@dataclass(frozen=True)
class GroupRecord:
    account_id: str
    device_id: str
    group_id: bytes
    chain: GroupState | None = None
    wanted: int = -1  # the highest head seq seen in a signed message or a distribution
    conflict: tuple[int, bytes] | None = None  # a head that forked from the chain
    withheld: bool = False
    request: str | None = None  # the fetch in flight
    next_request: int = 1
    fetch_again: bool = False
    page: tuple[bytes, ...] = ()  # fetched entries waiting for lists
    page_more: bool = False
    sending: SenderKey | None = None
    # device id -> its sender's receiving chains, newest first
    receiving: Mapping[str, tuple[ReceivingKey, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    held: tuple[Held, ...] = ()
    sends: tuple[WaitingSend, ...] = ()
    writing: Writing | None = None
    outgoing: tuple[Outgoing, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "device_id": self.device_id,
            "group_id": b64u_encode(self.group_id),
            "chain": None if self.chain is None else self.chain.to_dict(),
            "wanted": self.wanted,
            "conflict": None
            if self.conflict is None
            else {"seq": self.conflict[0], "hash": b64u_encode(self.conflict[1])},
            "withheld": self.withheld,
            "request": self.request,
            "next_request": self.next_request,
            "fetch_again": self.fetch_again,
            "page": [b64u_encode(e) for e in self.page],
            "page_more": self.page_more,
            "sending": None if self.sending is None else self.sending.to_dict(),
            "receiving": {
                d: [k.to_dict() for k in keys] for d, keys in sorted(self.receiving.items())
            },
            "held": [h.to_dict() for h in self.held],
            "sends": [s.to_dict() for s in self.sends],
            "writing": None if self.writing is None else self.writing.to_dict(),
            "outgoing": [o.to_dict() for o in self.outgoing],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupRecord:
        try:
            conflict = data.get("conflict")
            wanted = data.get("wanted", -1)
            _expect(wanted == -1 or is_uint(wanted), "group record: expected a wanted seq")
            return cls(
                account_id=data["account_id"],
                device_id=data["device_id"],
                group_id=b64u_decode(data["group_id"], length=16, what="group id"),
                chain=None if data.get("chain") is None else GroupState.from_dict(data["chain"]),
                wanted=wanted,
                conflict=None
                if conflict is None
                else (conflict["seq"], b64u_decode(conflict["hash"], length=32, what="head")),
                withheld=bool(data.get("withheld")),
                request=data.get("request"),
                next_request=int(data.get("next_request") or 1),
                fetch_again=bool(data.get("fetch_again")),
                page=tuple(b64u_decode(e, what="group entry") for e in data.get("page") or ()),
                page_more=bool(data.get("page_more")),
                sending=None
                if data.get("sending") is None
                else SenderKey.from_dict(data["sending"]),
                receiving={
                    d: tuple(ReceivingKey.from_dict(k) for k in keys)
                    for d, keys in (data.get("receiving") or {}).items()
                },
                held=tuple(Held.from_dict(h) for h in data.get("held") or ()),
                sends=tuple(WaitingSend.from_dict(s) for s in data.get("sends") or ()),
                writing=None if data.get("writing") is None else Writing.from_dict(data["writing"]),
                outgoing=tuple(Outgoing.from_dict(o) for o in data.get("outgoing") or ()),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedMessage(f"group record: expected the fields of 25.8 ({exc})") from exc


def lists_to_dict(lists: Lists) -> dict[str, dict[str, str]]:
    return {
        a: {d: b64u_encode(k) for d, k in sorted(ds.items())} for a, ds in sorted(lists.items())
    }


def lists_from_dict(data: Any) -> Lists:
    _expect(isinstance(data, dict), "group lists: expected an object")
    _expect(all(isinstance(ds, dict) for ds in data.values()), "group lists: expected objects")
    return {
        a: {d: b64u_decode(k, length=32, what="identity key") for d, k in ds.items()}
        for a, ds in data.items()
    }


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise MalformedMessage(message)
