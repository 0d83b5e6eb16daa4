"""Group membership as a log of entries signed by admin devices and chained by hash
(docs/protocol.md sections 25.1 to 25.3). Pure: the caller passes the verified device lists."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from protocol import primitives
from protocol.encoding import (
    Reader,
    b64u_decode,
    b64u_encode,
    enc_str,
    is_uint,
    label,
    u8,
    u16,
    u64,
    utf8_encode,
)
from protocol.exceptions import (
    GroupChainBroken,
    GroupChainForked,
    GroupEntryForged,
    GroupEntryWithheld,
    GroupNotAdmin,
    GroupRuleBroken,
    GroupSignerUnlisted,
    GroupTooLarge,
    InvalidSignature,
    MalformedMessage,
)
from protocol.keys import IdentityKeyPair
from protocol.rng import Rng

MAX_GROUP_MEMBERS = 256
MAX_GROUP_NAME_BYTES = 256
MAX_GROUP_ENTRY_BYTES = 65536
ZERO_HASH = bytes(32)
ENTRY_LABEL = "Parley v1 group entry"
ENTRY_HASH_LABEL = "Parley v1 group entry hash"
_ENTRY_PREFIX = label(ENTRY_LABEL)
_SIGNATURE_BYTES = 64


class EntryKind(IntEnum):
    CREATE = 1
    ADD = 2
    REMOVE = 3
    LEAVE = 4
    PROMOTE = 5
    DEMOTE = 6
    RENAME = 7


_NAMED = (EntryKind.CREATE, EntryKind.RENAME)
_WITHOUT_ACCOUNTS = (EntryKind.LEAVE, EntryKind.RENAME)


@dataclass(frozen=True)
class GroupEntry:
    """One decoded entry of a group's log (section 25.1)."""

    group_id: bytes
    seq: int
    previous: bytes
    kind: EntryKind
    actor: str
    actor_key: bytes
    timestamp: int
    accounts: tuple[str, ...]
    name: str
    signature: bytes


@dataclass(frozen=True)
class GroupState:
    """Membership after the entries up to `seq`; `head` is the hash of entry `seq` and
    `hashes` every entry's hash by seq (section 25.2)."""

    group_id: bytes
    seq: int
    head: bytes
    name: str
    members: frozenset[str]
    admins: frozenset[str]
    hashes: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": b64u_encode(self.group_id),
            "seq": self.seq,
            "head": b64u_encode(self.head),
            "name": self.name,
            "members": _sorted(self.members),
            "admins": _sorted(self.admins),
            "hashes": [b64u_encode(h) for h in self.hashes],
        }

    @classmethod
    def from_dict(cls, data: Any) -> GroupState:
        """Parse the JSON form; anything out of shape is MalformedMessage."""
        try:
            hashes = tuple(b64u_decode(h, length=32, what="group hash") for h in data["hashes"])
            state = cls(
                group_id=b64u_decode(data["group_id"], length=16, what="group id"),
                seq=data["seq"],
                head=b64u_decode(data["head"], length=32, what="group head"),
                name=data["name"],
                members=frozenset(data["members"]),
                admins=frozenset(data["admins"]),
                hashes=hashes,
            )
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"group state: expected the fields of 25.2 ({exc})") from exc
        _expect(
            is_uint(state.seq) and len(hashes) == state.seq + 1 and hashes[-1] == state.head,
            "group state: expected one hash per entry, the last one the head",
        )
        _expect(isinstance(state.name, str), "group state: expected a string name")
        names = [*state.members, *state.admins]
        _expect(all(isinstance(a, str) for a in names), "group state: expected account ids")
        _expect(state.admins <= state.members, "group state: expected admins among members")
        return state


def new_group_id(rng: Rng) -> bytes:
    return rng(16)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise MalformedMessage(message)


def _sorted(accounts: Collection[str]) -> list[str]:
    """Ascending by UTF-8 bytes, which for str is code point order."""
    return sorted(accounts)


def _check_structure(entry: GroupEntry) -> None:
    _expect(
        isinstance(entry.group_id, bytes) and len(entry.group_id) == 16,
        "group entry: expected a 16-byte group id",
    )
    _expect(
        isinstance(entry.previous, bytes) and len(entry.previous) == 32,
        "group entry: expected a 32-byte previous hash",
    )
    _expect(
        isinstance(entry.actor_key, bytes) and len(entry.actor_key) == 32,
        "group entry: expected a 32-byte actor key",
    )
    _expect(
        is_uint(entry.kind, 0xFF) and int(entry.kind) in {int(k) for k in EntryKind},
        f"group entry: expected a kind from 1 to 7, got {entry.kind!r}",
    )
    kind = EntryKind(entry.kind)
    _expect(
        len(utf8_encode(entry.name)) <= MAX_GROUP_NAME_BYTES,
        f"group entry: expected a name of at most {MAX_GROUP_NAME_BYTES} bytes",
    )
    _expect(kind in _NAMED or entry.name == "", f"group entry: expected no name on {kind.name}")
    count = len(entry.accounts)
    if kind in _WITHOUT_ACCOUNTS:
        _expect(count == 0, f"group entry: expected no accounts on {kind.name}, got {count}")
    else:
        _expect(
            1 <= count <= MAX_GROUP_MEMBERS,
            f"group entry: expected 1 to {MAX_GROUP_MEMBERS} accounts, got {count}",
        )
    raw = [utf8_encode(a) for a in entry.accounts]
    _expect(
        all(a < b for a, b in zip(raw, raw[1:], strict=False)),
        "group entry: expected accounts in strictly ascending order of their UTF-8 bytes",
    )


def entry_bytes(entry: GroupEntry) -> bytes:
    """The signed bytes of an entry: everything but its signature (section 25.1)."""
    _check_structure(entry)
    out = (
        _ENTRY_PREFIX
        + entry.group_id
        + u64(entry.seq)
        + entry.previous
        + u8(entry.kind)
        + enc_str(entry.actor)
        + entry.actor_key
        + u64(entry.timestamp)
        + u16(len(entry.accounts))
        + b"".join(enc_str(a) for a in entry.accounts)
        + enc_str(entry.name)
    )
    _expect(
        len(out) + _SIGNATURE_BYTES <= MAX_GROUP_ENTRY_BYTES,
        f"group entry: expected at most {MAX_GROUP_ENTRY_BYTES} bytes",
    )
    return out


def entry_hash(wire: bytes) -> bytes:
    """H("Parley v1 group entry hash", entry bytes ‖ signature): covers the signature too."""
    return primitives.hash32(ENTRY_HASH_LABEL, wire)


def sign_entry(
    *,
    group_id: bytes,
    seq: int,
    previous: bytes,
    kind: EntryKind,
    actor: str,
    identity: IdentityKeyPair,
    timestamp: int,
    accounts: Sequence[str] = (),
    name: str = "",
) -> bytes:
    """The wire form (entry bytes ‖ signature) of an entry signed by the acting device;
    `accounts` in any order (a repeated one is refused)."""
    entry = GroupEntry(
        group_id=group_id,
        seq=seq,
        previous=previous,
        kind=kind,
        actor=actor,
        actor_key=identity.public,
        timestamp=timestamp,
        accounts=tuple(sorted(accounts) if all(isinstance(a, str) for a in accounts) else accounts),
        name=name,
        signature=b"",
    )
    signed = entry_bytes(entry)
    return signed + primitives.ed25519_sign(identity.secret, signed)


def decode_entry(wire: bytes) -> GroupEntry:
    """Parse the wire form; anything outside section 25.1 is MalformedMessage."""
    _expect(
        isinstance(wire, bytes) and len(wire) <= MAX_GROUP_ENTRY_BYTES,
        f"group entry: expected at most {MAX_GROUP_ENTRY_BYTES} bytes",
    )
    reader = Reader(wire, what="group entry")
    _expect(reader.take(len(_ENTRY_PREFIX)) == _ENTRY_PREFIX, "group entry: expected its label")
    group_id = reader.take(16)
    seq = reader.uint(8)
    previous = reader.take(32)
    kind = reader.uint(1)
    _expect(kind in {int(k) for k in EntryKind}, f"group entry: expected a kind 1 to 7, got {kind}")
    actor = reader.string()
    actor_key = reader.take(32)
    timestamp = reader.uint(8)
    count = reader.uint(2)
    _expect(count <= MAX_GROUP_MEMBERS, f"group entry: expected at most 256 accounts, got {count}")
    accounts = tuple(reader.string() for _ in range(count))
    name = reader.string()
    signature = reader.take(_SIGNATURE_BYTES)
    reader.end()
    entry = GroupEntry(
        group_id=group_id,
        seq=seq,
        previous=previous,
        kind=EntryKind(kind),
        actor=actor,
        actor_key=actor_key,
        timestamp=timestamp,
        accounts=accounts,
        name=name,
        signature=signature,
    )
    _check_structure(entry)
    return entry


def apply_entry(
    state: GroupState | None,
    wire: bytes,
    *,
    device_lists: Mapping[str, Collection[bytes]],
    vouched: bool = False,
) -> GroupState:
    """The state after one more entry, checked in the order of section 25.2; `state` is
    None before the create entry. `device_lists`: account id → the identity keys of its
    verified device list. `vouched`: a later entry of the chain, by a listed device, names
    this one (through the hashes), so its signer need not be listed any more (25.2)."""
    entry = decode_entry(wire)
    kind = entry.kind
    if state is None:
        if kind is not EntryKind.CREATE or entry.seq != 0 or entry.previous != ZERO_HASH:
            raise GroupChainBroken("group chain: expected a create entry at seq 0 first")
    else:
        if entry.group_id != state.group_id:
            raise GroupChainBroken("group chain: expected an entry of this group")
        if kind is EntryKind.CREATE or entry.seq != state.seq + 1:
            raise GroupChainBroken(
                f"group chain: expected an entry at seq {state.seq + 1}, got {kind.name.lower()} "
                f"at {entry.seq}"
            )
        if entry.previous != state.head:
            raise GroupChainBroken(f"group chain: entry {entry.seq} names another previous hash")
    if not vouched and not _listed(entry, device_lists):
        raise GroupSignerUnlisted(
            f"group entry {entry.seq}: signing key is not in {entry.actor!r}'s verified device list"
        )
    try:
        primitives.ed25519_verify(
            entry.actor_key, wire[:-_SIGNATURE_BYTES], entry.signature, what="group entry"
        )
    except InvalidSignature as exc:
        raise GroupEntryForged(f"group entry {entry.seq}: signature does not verify") from exc
    members, admins, name = _apply_rules(state, entry)
    wire_hash = entry_hash(wire)
    return GroupState(
        group_id=entry.group_id,
        seq=entry.seq,
        head=wire_hash,
        name=name,
        members=members,
        admins=admins,
        hashes=(state.hashes if state else ()) + (wire_hash,),
    )


def _listed(entry: GroupEntry, device_lists: Mapping[str, Collection[bytes]]) -> bool:
    return entry.actor_key in set(device_lists.get(entry.actor, ()))


def _signer_listed(wire: bytes, device_lists: Mapping[str, Collection[bytes]]) -> bool:
    """Whether the entry's signer is listed; a malformed entry is not (applying it, in
    order, says what is wrong)."""
    try:
        return _listed(decode_entry(wire), device_lists)
    except MalformedMessage:
        return False


def _apply_rules(
    state: GroupState | None, entry: GroupEntry
) -> tuple[frozenset[str], frozenset[str], str]:
    members = state.members if state else frozenset()
    admins = state.admins if state else frozenset()
    name = state.name if state else ""
    accounts = frozenset(entry.accounts)
    actor, kind, what = entry.actor, entry.kind, f"group entry {entry.seq}"
    if kind is EntryKind.LEAVE:
        if actor not in members:
            raise GroupNotAdmin(f"{what}: leave by {actor!r}, who is not a member")
    elif kind is not EntryKind.CREATE and actor not in admins:
        raise GroupNotAdmin(f"{what}: {kind.name.lower()} by {actor!r}, who is not an admin")
    if kind is EntryKind.CREATE:
        _rule(actor in accounts, f"{what}: expected the creator among the members")
        members, admins, name = accounts, frozenset({actor}), entry.name
    elif kind is EntryKind.ADD:
        _rule(not accounts & members, f"{what}: expected to add only non-members")
        members = members | accounts
    elif kind is EntryKind.REMOVE:
        _rule(accounts <= members, f"{what}: expected to remove only members")
        _rule(actor not in accounts, f"{what}: expected a leave, not a removal of the actor")
        members, admins = members - accounts, admins - accounts
    elif kind is EntryKind.LEAVE:
        members, admins = members - {actor}, admins - {actor}
    elif kind is EntryKind.PROMOTE:
        _rule(accounts <= members, f"{what}: expected to promote only members")
        _rule(not accounts & admins, f"{what}: expected to promote only non-admins")
        admins = admins | accounts
    elif kind is EntryKind.DEMOTE:
        _rule(accounts <= admins, f"{what}: expected to demote only admins")
        admins = admins - accounts
    else:
        name = entry.name
    _rule(not members or bool(admins), f"{what}: expected an admin to remain among the members")
    if len(members) > MAX_GROUP_MEMBERS:
        raise GroupTooLarge(
            f"{what}: expected at most {MAX_GROUP_MEMBERS} members, got {len(members)}"
        )
    return members, admins, name


def _rule(condition: bool, message: str) -> None:
    if not condition:
        raise GroupRuleBroken(message)


def verify_chain(
    entries: Sequence[bytes],
    *,
    device_lists: Mapping[str, Collection[bytes]],
    state: GroupState | None = None,
) -> GroupState:
    """The state of a whole chain from its create entry, or of `state` extended by the
    entries after it; the first bad entry decides. An entry before the last one signed by a
    listed device is vouched for by it (25.2)."""
    if not entries and state is None:
        raise GroupChainBroken("group chain: expected at least the create entry")
    last_listed = max(
        (i for i, w in enumerate(entries) if _signer_listed(w, device_lists)), default=-1
    )
    for i, wire in enumerate(entries):
        state = apply_entry(state, wire, device_lists=device_lists, vouched=i < last_listed)
    assert state is not None
    return state


def compare_head(state: GroupState, head_seq: int, head_hash: bytes) -> str:
    """ "same", "behind" (the sender's head is an older entry of this chain) or "ahead" (the
    device must fetch); a known seq with another hash is GroupChainForked (section 25.3)."""
    if not is_uint(head_seq) or not isinstance(head_hash, bytes) or len(head_hash) != 32:
        raise MalformedMessage("group head: expected a seq and a 32-byte hash")
    if head_seq > state.seq:
        return "ahead"
    if state.hashes[head_seq] != head_hash:
        raise GroupChainForked(f"group chain: another entry at seq {head_seq} than this device's")
    return "same" if head_seq == state.seq else "behind"


def check_fetched(state: GroupState, wanted_seq: int) -> None:
    """After a fetch: a chain still ending below a head a signed message carried means the
    server withholds an entry (section 25.3)."""
    if state.seq < wanted_seq:
        raise GroupEntryWithheld(
            f"group chain: a message named seq {wanted_seq}, the server's chain ends at {state.seq}"
        )
