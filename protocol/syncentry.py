"""Account-state sync on the wire (docs/protocol.md section 23): the sync key and its
sub-keys, a mutation and its sealed record, and the patch or snapshot entry around them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from protocol import primitives
from protocol.encoding import (
    Reader,
    enc_str,
    is_uint,
    label,
    u8,
    u32,
    u64,
    utf8_encode,
)
from protocol.exceptions import DecryptionFailed, InvalidJson, MalformedMessage, SyncEntryForged
from protocol.rng import Rng
from protocol.strictjson import canonical_json, parse_json

SYNC_FORMAT = 1
ENTRY_KINDS = ("patch", "snapshot")  # u8 1 and 2 on the wire
MAX_PATCH_BYTES = 65536
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024
MAX_RECORD_BYTES = 16384
MAX_INDEX_PARTS = 8
MAX_INDEX_BYTES = 1024
MAX_DEVICE_ID_BYTES = 64
# The collections of this version; a decoder accepts any name of the same form, so a newer
# device's collection still counts in the state hash of an older one.
COLLECTIONS = (
    "archived",
    "blocked",
    "contacts",
    "conversations",
    "devices",
    "groups",
    "muted",
    "pinned",
    "profile",
    "settings",
)
ZERO_CHAIN = bytes(32)

KEY_LABELS = {
    "index": "Parley v1 sync index key",
    "value": "Parley v1 sync value key",
    "value_mac": "Parley v1 sync value mac key",
    "entry": "Parley v1 sync entry key",
}
INDEX_MAC_LABEL = "Parley v1 sync index"
VALUE_AD_LABEL = "Parley v1 sync value"
VALUE_MAC_LABEL = "Parley v1 sync value mac"
ENTRY_MAC_LABEL = "Parley v1 sync entry"

_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
# In canonical JSON a negative number follows one of these (or looks so inside a string).
_NEGATIVE = re.compile(rb"[:,\[]-")
_COLLECTION = re.compile(r"[a-z][a-z0-9_]{0,31}")
_MUTATION_KEYS = {"collection", "device", "index", "timestamp", "value"}
# KDF(key, label, data, 32) of section 1.1 with the label's encoding computed once.
_INDEX_MAC_PREFIX = label(INDEX_MAC_LABEL)
_VALUE_MAC_PREFIX = label(VALUE_MAC_LABEL)
_VALUE_AD_PREFIX = label(VALUE_AD_LABEL)
_MIN_RECORD_BYTES = 32 + 24 + 4 + primitives.AEAD_TAG_BYTES


@dataclass(frozen=True)
class SyncKey:
    """The account sync key: random, shared with own devices over pairwise sessions only;
    in force from `since_version` until the next key's."""

    key_id: bytes
    key: bytes
    since_version: int


def new_sync_key(rng: Rng, *, since_version: int) -> SyncKey:
    """Draws rng(16) for the key id, then rng(32) for the key."""
    if not is_uint(since_version) or since_version < 1:
        raise MalformedMessage(f"sync key: expected since_version >= 1, got {since_version!r}")
    key_id = rng(16)
    return SyncKey(key_id=key_id, key=rng(32), since_version=since_version)


@dataclass(frozen=True)
class SyncSubkeys:
    key_id: bytes
    index: bytes
    value: bytes
    value_mac: bytes
    entry: bytes


def sync_subkeys(key: SyncKey) -> SyncSubkeys:
    """sub-key = KDF(key, label, key_id, 32) for each label of KEY_LABELS (section 23.2)."""
    if not isinstance(key.key_id, bytes) or len(key.key_id) != 16:
        raise MalformedMessage("sync key: expected a 16-byte key id")
    derived = {
        name: primitives.kdf(key.key, text, key.key_id, 32) for name, text in KEY_LABELS.items()
    }
    return SyncSubkeys(key_id=key.key_id, **derived)


@dataclass(frozen=True)
class Mutation:
    """Set `value` (a JSON object) at (collection, index), or remove it (`value` None: a
    tombstone); `timestamp` (ms) and `device` decide conflicts (section 23.6)."""

    collection: str
    index: tuple[str, ...]
    value: dict[str, Any] | None
    timestamp: int
    device: str


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise MalformedMessage(message)


def _index_json(collection: Any, index: Any) -> bytes:
    _expect(
        isinstance(collection, str) and _COLLECTION.fullmatch(collection) is not None,
        f"mutation: expected a collection of 1 to 32 of a-z 0-9 _, got {collection!r:.40}",
    )
    _expect(
        isinstance(index, (tuple, list))
        and 1 <= len(index) <= MAX_INDEX_PARTS
        and all(isinstance(part, str) for part in index),
        f"mutation: expected an index of 1 to {MAX_INDEX_PARTS} strings",
    )
    try:  # canonical JSON of a list of strings, without canonical_json's walk (section 2.2)
        raw = _CANONICAL.encode(list(index)).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedMessage("mutation: expected an index without lone surrogates") from exc
    _expect(
        len(raw) <= MAX_INDEX_BYTES,
        f"mutation: expected an index of at most {MAX_INDEX_BYTES} bytes",
    )
    return raw


def encode_mutation(mutation: Mutation) -> bytes:
    """The record plaintext: canonical JSON {collection, device, index, timestamp, value}."""
    _index_json(mutation.collection, mutation.index)
    _expect(
        mutation.value is None or isinstance(mutation.value, dict),
        "mutation: expected a JSON object or null (a removal) as value",
    )
    _expect(is_uint(mutation.timestamp), "mutation: expected a timestamp in 0..2^53-1")
    device = utf8_encode(mutation.device)
    _expect(
        1 <= len(device) <= MAX_DEVICE_ID_BYTES,
        f"mutation: expected a device id of 1 to {MAX_DEVICE_ID_BYTES} bytes",
    )
    raw = canonical_json(
        {
            "collection": mutation.collection,
            "device": mutation.device,
            "index": list(mutation.index),
            "timestamp": mutation.timestamp,
            "value": mutation.value,
        }
    )
    _expect(len(raw) <= MAX_RECORD_BYTES, f"mutation: expected at most {MAX_RECORD_BYTES} bytes")
    return raw


def decode_mutation(data: bytes) -> Mutation:
    """Parse a record plaintext; refuses anything encode_mutation would not write."""
    return _decode_mutation(data)[0]


def _decode_mutation(data: bytes) -> tuple[Mutation, bytes]:
    """The mutation and its canonical index JSON."""
    try:
        body = parse_json(data, max_bytes=MAX_RECORD_BYTES)
    except InvalidJson as exc:
        raise MalformedMessage(f"mutation: {exc}") from exc
    _expect(
        isinstance(body, dict) and body.keys() == _MUTATION_KEYS,
        f"mutation: expected keys {sorted(_MUTATION_KEYS)}",
    )
    collection, index, value, device = (
        body["collection"],
        body["index"],
        body["value"],
        body["device"],
    )
    index_json = _index_json(collection, index)
    _expect(value is None or isinstance(value, dict), "mutation: expected an object or null")
    _expect(is_uint(body["timestamp"]), "mutation: expected a timestamp in 0..2^53-1")
    _expect(
        isinstance(device, str) and 1 <= len(device.encode()) <= MAX_DEVICE_ID_BYTES,
        f"mutation: expected a device id of 1 to {MAX_DEVICE_ID_BYTES} bytes",
    )
    # parse_json already refused floats, big integers, lone surrogates and deep nesting, so
    # re-encoding is canonical_json's output unless a negative integer hides in the text.
    canonical = _CANONICAL.encode(body).encode("utf-8") == data
    _expect(
        canonical and (_NEGATIVE.search(data) is None or canonical_json(body) == data),
        "mutation: expected canonical JSON",
    )
    return Mutation(collection, tuple(index), value, body["timestamp"], device), index_json


def index_mac(subkeys: SyncSubkeys, collection: str, index: tuple[str, ...] | list[str]) -> bytes:
    """KDF(index key, "Parley v1 sync index", enc_str(collection) ‖ canonical index, 32)."""
    return _index_mac(subkeys, collection, _index_json(collection, index))


def _index_mac(subkeys: SyncSubkeys, collection: str, index_json: bytes) -> bytes:
    data = _INDEX_MAC_PREFIX + enc_str(collection) + index_json
    return primitives.blake2b(data, size=32, key=subkeys.index)


def value_mac(subkeys: SyncSubkeys, record_index_mac: bytes, plaintext: bytes) -> bytes:
    """KDF(value MAC key, "Parley v1 sync value mac", index_mac ‖ plaintext, 32)."""
    data = _VALUE_MAC_PREFIX + record_index_mac + plaintext
    return primitives.blake2b(data, size=32, key=subkeys.value_mac)


def _value_ad(subkeys: SyncSubkeys, record_index_mac: bytes) -> bytes:
    return _VALUE_AD_PREFIX + subkeys.key_id + record_index_mac


@dataclass(frozen=True)
class SealedRecord:
    index_mac: bytes
    nonce: bytes
    ciphertext: bytes

    def encode(self) -> bytes:
        return self.index_mac + self.nonce + u32(len(self.ciphertext)) + self.ciphertext


def seal_record(subkeys: SyncSubkeys, mutation: Mutation, rng: Rng) -> tuple[SealedRecord, bytes]:
    """Encrypt one mutation (draws rng(24) for the nonce); returns it with its value MAC."""
    plaintext = encode_mutation(mutation)
    mac = index_mac(subkeys, mutation.collection, mutation.index)
    nonce = rng(primitives.AEAD_NONCE_BYTES)
    ciphertext = primitives.aead_encrypt(subkeys.value, nonce, plaintext, _value_ad(subkeys, mac))
    return SealedRecord(mac, nonce, ciphertext), value_mac(subkeys, mac, plaintext)


def open_record(subkeys: SyncSubkeys, record: SealedRecord) -> tuple[Mutation, bytes]:
    """Decrypt and check that the mutation inside belongs at the record's index MAC."""
    ad = _value_ad(subkeys, record.index_mac)
    try:
        plaintext = primitives.aead_decrypt(subkeys.value, record.nonce, record.ciphertext, ad)
    except DecryptionFailed as exc:
        raise SyncEntryForged(
            "a value does not decrypt under its index and sync key (moved or altered)"
        ) from exc
    mutation, index_json = _decode_mutation(plaintext)
    if not primitives.mac_equal(
        _index_mac(subkeys, mutation.collection, index_json), record.index_mac
    ):
        raise SyncEntryForged("a value was moved to another index")
    return mutation, value_mac(subkeys, record.index_mac, plaintext)


@dataclass(frozen=True)
class SyncEntry:
    """A decoded patch or snapshot; `signed` is every byte before `mac`."""

    kind: str
    key_id: bytes
    version: int
    previous: bytes
    state_hash: bytes
    records: tuple[SealedRecord, ...]
    mac: bytes
    signed: bytes


def entry_mac(subkeys: SyncSubkeys, signed: bytes) -> bytes:
    """KDF(entry key, "Parley v1 sync entry", signed, 32)."""
    return primitives.kdf(subkeys.entry, ENTRY_MAC_LABEL, signed, 32)


def encode_entry(
    *,
    kind: str,
    key: SyncKey,
    version: int,
    previous: bytes,
    state_hash: bytes,
    records: list[SealedRecord] | tuple[SealedRecord, ...],
) -> bytes:
    """Section 23.5 layout with its MAC; refuses what decode_entry refuses (MalformedMessage)."""
    _expect(kind in ENTRY_KINDS, f"entry: expected kind patch or snapshot, got {kind!r}")
    _expect(is_uint(version) and version >= 1, f"entry: expected version >= 1, got {version!r}")
    _expect(len(previous) == 32 and len(state_hash) == 32, "entry: expected 32-byte hashes")
    subkeys = sync_subkeys(key)
    signed = b"".join(
        [
            u8(SYNC_FORMAT),
            u8(ENTRY_KINDS.index(kind) + 1),
            subkeys.key_id,
            u64(version),
            previous,
            state_hash,
            u32(len(records)),
            *(record.encode() for record in records),
        ]
    )
    blob = signed + entry_mac(subkeys, signed)
    decode_entry(blob)  # the same limits for writer and reader
    return blob


def decode_entry(blob: bytes) -> SyncEntry:
    """Parse the structure (no key needed); MalformedMessage for anything outside 23.5."""
    _expect(isinstance(blob, bytes), "entry: expected bytes")
    _expect(
        len(blob) <= MAX_SNAPSHOT_BYTES,
        f"entry: expected at most {MAX_SNAPSHOT_BYTES} bytes, got {len(blob)}",
    )
    reader = Reader(blob, what="sync entry")
    fmt = reader.uint(1)
    _expect(fmt == SYNC_FORMAT, f"entry: expected format {SYNC_FORMAT}, got {fmt}")
    kind_code = reader.uint(1)
    _expect(kind_code in (1, 2), f"entry: expected kind 1 or 2, got {kind_code}")
    kind = ENTRY_KINDS[kind_code - 1]
    _expect(
        kind == "snapshot" or len(blob) <= MAX_PATCH_BYTES,
        f"patch: expected at most {MAX_PATCH_BYTES} bytes, got {len(blob)}",
    )
    key_id = reader.take(16)
    version = reader.uint(8)
    _expect(version >= 1, "entry: expected version >= 1, got 0")
    previous = reader.take(32)
    hash_after = reader.take(32)
    count = reader.uint(4)
    _expect(kind == "snapshot" or count >= 1, "patch: expected at least one record")
    _expect(
        count * _MIN_RECORD_BYTES <= reader.remaining() - 32,
        f"entry: {count} records cannot fit in {len(blob)} bytes",
    )
    records = []
    for _ in range(count):
        mac = reader.take(32)
        nonce = reader.take(primitives.AEAD_NONCE_BYTES)
        length = reader.uint(4)
        _expect(
            primitives.AEAD_TAG_BYTES <= length <= MAX_RECORD_BYTES + primitives.AEAD_TAG_BYTES,
            f"entry: expected a record ciphertext of 16 to {MAX_RECORD_BYTES + 16} bytes",
        )
        records.append(SealedRecord(mac, nonce, reader.take(length)))
    signed_length = len(blob) - reader.remaining()
    mac = reader.take(32)
    reader.end()
    if kind == "snapshot":
        macs = [r.index_mac for r in records]
        _expect(
            all(a < b for a, b in zip(macs, macs[1:], strict=False)),
            "snapshot: expected records in strictly ascending index MAC order",
        )
    return SyncEntry(
        kind=kind,
        key_id=key_id,
        version=version,
        previous=previous,
        state_hash=hash_after,
        records=tuple(records),
        mac=mac,
        signed=blob[:signed_length],
    )
