"""The sync machine's state (docs/protocol.md section 22.8): the account's sync keys, its
synced state, the person's changes not yet written, the request in flight and the last
refusal, as one value with a strict JSON form (the adapter stores it, scenario files spell
it out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.accountstate import AccountState, Checkpoint
from protocol.encoding import b64u_decode, b64u_encode
from protocol.exceptions import MalformedMessage
from protocol.syncentry import Mutation, SyncKey, encode_mutation


def by_since(keys: Iterable[SyncKey]) -> tuple[SyncKey, ...]:
    """A key ring in the order keys came into force."""
    return tuple(sorted(keys, key=lambda k: k.since_version))


def key_to_dict(key: SyncKey) -> dict[str, Any]:
    return {
        "key_id": b64u_encode(key.key_id),
        "key": b64u_encode(key.key),
        "since_version": key.since_version,
    }


def key_from_dict(data: Mapping[str, Any]) -> SyncKey:
    since = data.get("since_version")
    if not isinstance(since, int) or isinstance(since, bool) or since < 1:
        raise MalformedMessage("sync key: expected since_version >= 1")
    return SyncKey(
        key_id=b64u_decode(data["key_id"], length=16, what="sync key id"),
        key=b64u_decode(data["key"], length=32, what="sync key"),
        since_version=since,
    )


def mutation_to_dict(m: Mutation) -> dict[str, Any]:
    return {
        "collection": m.collection,
        "index": list(m.index),
        "value": m.value,
        "timestamp": m.timestamp,
        "device": m.device,
    }


def mutation_from_dict(data: Mapping[str, Any]) -> Mutation:
    index = data["index"]
    m = Mutation(
        data["collection"],
        tuple(index) if isinstance(index, list) else index,
        data["value"],
        data["timestamp"],
        data["device"],
    )
    encode_mutation(m)  # the same checks as every mutation on the wire
    return m


@dataclass(frozen=True)
class SyncRequest:
    """The one request in flight: a fetch (`version` = the `after` asked for) or a write of
    `entry` (patch | snapshot) at `version`, its `blob`, how many pending mutations it
    carries (`count`) and the new key it introduces (a first key or a rotation)."""

    request_id: str
    kind: str  # fetch | write
    version: int
    entry: str | None = None
    blob: bytes | None = None
    count: int = 0
    new_key: SyncKey | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "kind": self.kind,
            "version": self.version,
            "entry": self.entry,
            "blob": None if self.blob is None else b64u_encode(self.blob),
            "count": self.count,
            "new_key": None if self.new_key is None else key_to_dict(self.new_key),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncRequest:
        blob, new_key = data.get("blob"), data.get("new_key")
        return cls(
            request_id=data["request_id"],
            kind=data["kind"],
            version=int(data["version"]),
            entry=data.get("entry"),
            blob=None if blob is None else b64u_decode(blob, what="sync entry"),
            count=int(data.get("count") or 0),
            new_key=None if new_key is None else key_from_dict(new_key),
        )


@dataclass(frozen=True)
class SyncState:
    account_id: str
    device_id: str  # the `device` of every mutation this device writes
    keys: tuple[SyncKey, ...] = ()  # every sync key held, by since_version
    account: AccountState = AccountState()
    pending: tuple[Mutation, ...] = ()  # the person's changes, not yet stored by the server
    request: SyncRequest | None = None
    fetch: bool = False  # read the log before anything else (doorbell, key, conflict)
    rotate: bool = False  # write the state under a new key (a device left)
    # the log version this device had read when the rotation was asked for: a key in force
    # after it is another device's rotation, which makes this one needless
    rotate_after: int = 0
    share: bool = False  # send the newest key to the own devices
    compact: bool = False  # the server asked for a snapshot
    # the last write got no 201 and no conflict (no answer, a 5xx, a limit): the next write
    # waits for another event (a change, a doorbell, a reconnect, a minute of use)
    write_failed: bool = False
    announce: bool = False  # send this device's checkpoint to the own devices (23.8)
    refused: tuple[str, str] | None = None  # the last refusal: (error class, message)
    checkpoint: Checkpoint | None = None  # the newest an own device sent
    # a key this device created whose write got no 201 (a conflict, a lost answer): the
    # next fetch tells whether the server stored it (an entry under its key id)
    proposed: SyncKey | None = None
    next_request: int = 1
    # the own devices that may hold the sync key, as last listed (listed, not suspended)
    devices: tuple[str, ...] = ()

    @property
    def newest_key(self) -> SyncKey | None:
        return max(self.keys, key=lambda k: k.since_version, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "device_id": self.device_id,
            "keys": [key_to_dict(k) for k in self.keys],
            "account": self.account.to_dict(),
            "pending": [mutation_to_dict(m) for m in self.pending],
            "request": None if self.request is None else self.request.to_dict(),
            "fetch": self.fetch,
            "rotate": self.rotate,
            "rotate_after": self.rotate_after,
            "share": self.share,
            "compact": self.compact,
            "write_failed": self.write_failed,
            "announce": self.announce,
            "refused": None
            if self.refused is None
            else {"error": self.refused[0], "message": self.refused[1]},
            "checkpoint": None
            if self.checkpoint is None
            else {"version": self.checkpoint.version, "chain": b64u_encode(self.checkpoint.chain)},
            "proposed": None if self.proposed is None else key_to_dict(self.proposed),
            "next_request": self.next_request,
            "devices": list(self.devices),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncState:
        request, refused, checkpoint = (
            data.get("request"),
            data.get("refused"),
            data.get("checkpoint"),
        )
        account, proposed = data.get("account"), data.get("proposed")
        return cls(
            account_id=data["account_id"],
            device_id=data["device_id"],
            keys=tuple(key_from_dict(k) for k in data.get("keys") or ()),
            account=AccountState() if account is None else AccountState.from_dict(account),
            pending=tuple(mutation_from_dict(m) for m in data.get("pending") or ()),
            request=None if request is None else SyncRequest.from_dict(request),
            fetch=bool(data.get("fetch")),
            rotate=bool(data.get("rotate")),
            rotate_after=int(data.get("rotate_after") or 0),
            share=bool(data.get("share")),
            compact=bool(data.get("compact")),
            write_failed=bool(data.get("write_failed")),
            announce=bool(data.get("announce")),
            refused=None if refused is None else (refused["error"], refused["message"]),
            checkpoint=None
            if checkpoint is None
            else Checkpoint(
                int(checkpoint["version"]),
                b64u_decode(checkpoint["chain"], length=32, what="checkpoint chain"),
            ),
            proposed=None if proposed is None else key_from_dict(proposed),
            next_request=int(data.get("next_request") or 1),
            devices=tuple(str(d) for d in data.get("devices") or ()),
        )
