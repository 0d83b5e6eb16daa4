"""Account state sync (docs/protocol.md section 23): every value of account_state.json
reproduced from its inputs, and the rules a device relies on when it applies the log."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from protocol import primitives
from protocol.accountstate import (
    AccountState,
    Checkpoint,
    apply_entry,
    build_patch,
    build_snapshot,
    supersedes,
)
from protocol.content import Content, decode_content, encode_content
from protocol.exceptions import (
    DecryptionFailed,
    MalformedMessage,
    ProtocolError,
    SyncEntryForged,
    SyncKeyUnknown,
    SyncRefused,
)
from protocol.rng import TestRng
from protocol.statehash import EMPTY_LTHASH, LTHASH_BYTES, lthash_update, state_hash
from protocol.syncentry import (
    Mutation,
    SealedRecord,
    SyncKey,
    decode_entry,
    decode_mutation,
    encode_mutation,
    index_mac,
    new_sync_key,
    open_record,
    seal_record,
    sync_subkeys,
)
from protocol.synclog import apply_entries, check_fetched, compare_checkpoint

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
V = json.loads((VECTORS / "account_state.json").read_text(encoding="utf-8"))
h = bytes.fromhex
T0 = 1_700_000_000_000


def key(name: str) -> SyncKey:
    k = V["keys"][name]
    return SyncKey(h(k["key_id"]), h(k["key"]), k["since_version"])


def mutation(data: dict[str, Any]) -> Mutation:
    return Mutation(
        data["collection"], tuple(data["index"]), data["value"], data["timestamp"], data["device"]
    )


def state(name: str) -> AccountState:
    return AccountState.from_dict(V["states"][name])


def error_of(fn: Any) -> tuple[str | None, str | None]:
    try:
        fn()
    except ProtocolError as exc:
        return type(exc).__name__, str(exc)
    return None, None


def test_regenerating_the_vectors_equals_the_committed_file():
    path = VECTORS / "generate_account_state.py"
    spec = importlib.util.spec_from_file_location("account_state_generator", path)
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render(generator.build()) == (VECTORS / "account_state.json").read_text(
        encoding="utf-8"
    )


def test_keys_and_subkeys():
    rng = TestRng(h(V["seeds"]["keys"]))
    for name, since in (("k1", 1), ("k2", 6)):
        k = new_sync_key(rng, since_version=since)
        assert k == key(name)
        sub = sync_subkeys(k)
        expected = V["keys"][name]["subkeys"]
        assert [sub.index, sub.value, sub.value_mac, sub.entry] == [
            h(expected[n]) for n in ("index", "value", "value_mac", "entry")
        ]


def test_index_macs():
    for case in V["index_macs"]:
        sub = sync_subkeys(key(case["key"]))
        assert index_mac(sub, case["collection"], case["index"]).hex() == case["index_mac"]


def test_sealed_records_and_value_macs():
    rng = TestRng(h(V["seeds"]["records"]))
    for case in V["records"]:
        sub = sync_subkeys(key(case["key"]))
        m = mutation(case["mutation"])
        assert encode_mutation(m).hex() == case["plaintext"]
        sealed, vm = seal_record(sub, m, rng)
        assert sealed.index_mac.hex() == case["index_mac"]
        assert sealed.nonce.hex() == case["nonce"]
        assert sealed.ciphertext.hex() == case["ciphertext"]
        assert sealed.encode().hex() == case["encoded"]
        assert vm.hex() == case["value_mac"]
        assert open_record(sub, sealed) == (m, vm)


def test_state_hash_adds_and_removes():
    v = V["state_hash"]
    macs = [h(x) for x in v["value_macs"]]
    assert state_hash(EMPTY_LTHASH).hex() == v["empty_state_hash"]
    assert primitives.keystream(macs[0], LTHASH_BYTES).hex() == v["element_0"]
    added = lthash_update(EMPTY_LTHASH, add=macs)
    assert added.hex() == v["lthash_add_all"]
    assert state_hash(added).hex() == v["state_hash_add_all"]
    removed = lthash_update(added, remove=[macs[1]])
    assert removed.hex() == v["lthash_remove_1"]
    assert state_hash(removed).hex() == v["state_hash_remove_1"]


def test_the_hash_is_order_independent_and_removal_undoes_insertion():
    macs = [bytes([i]) * 32 for i in range(6)]
    forward = lthash_update(EMPTY_LTHASH, add=macs)
    assert forward == lthash_update(EMPTY_LTHASH, add=macs[::-1])
    assert forward == lthash_update(lthash_update(EMPTY_LTHASH, add=macs[:3]), add=macs[3:])
    assert lthash_update(forward, remove=macs) == EMPTY_LTHASH
    # 0xffff lanes wrap: removing from the empty hash and adding back gives the empty hash.
    assert lthash_update(lthash_update(EMPTY_LTHASH, remove=macs), add=macs) == EMPTY_LTHASH


def replay_log() -> dict[str, Any]:
    """The log's calls, in the order of the description."""
    k1, k2 = key("k1"), key("k2")
    log = V["log"]

    def muts(name: str) -> list[Mutation]:
        return [mutation(x) for x in log[name]["mutations"]]

    rng = TestRng(h(V["seeds"]["log"]))
    out = {"e1": build_patch(AccountState(), muts("e1"), version=1, key=k1, rng=rng)}
    out["e2"] = build_patch(out["e1"].state, muts("e2"), version=2, key=k1, rng=rng)
    out["e3"] = build_patch(out["e2"].state, muts("e3"), version=3, key=k1, rng=rng)
    out["e4"] = build_snapshot(out["e3"].state, version=4, key=k1, rng=rng)
    out["e5"] = build_patch(out["e4"].state, muts("e5"), version=5, key=k1, rng=rng)
    rng = TestRng(h(V["seeds"]["rotation"]))
    out["e6"] = build_snapshot(out["e5"].state, version=6, key=k2, rng=rng)
    out["e7"] = build_patch(out["e6"].state, muts("e7"), version=7, key=k2, rng=rng)
    e5 = out["e5"].state
    removed = AccountState(6, out["e6"].blob[-32:], e5.lthash, e5.records)
    out["r7"] = build_patch(removed, muts("r7"), version=7, key=k1, rng=rng)
    rng = TestRng(h(V["seeds"]["fork"]))
    out["f3"] = build_patch(out["e2"].state, muts("f3"), version=3, key=k1, rng=rng)
    out["f4"] = build_patch(out["f3"].state, muts("f4"), version=4, key=k1, rng=rng)
    return out


def test_the_log_is_rebuilt_byte_for_byte():
    for name, written in replay_log().items():
        expected = V["log"][name]
        assert written.kind == expected["kind"] and written.version == expected["version"], name
        assert written.blob.hex() == expected["blob"], name
        assert written.blob[-32:].hex() == expected["mac"], name
        assert written.state.hash.hex() == expected["state_hash"], name
        assert written.state.to_dict() == expected["state"], name
        assert V["blobs"][name] == expected["blob"]


@pytest.mark.parametrize("case", V["apply"], ids=lambda c: c["name"])
def test_applying_listings(case):
    keys = [key(k) for k in case["keys"]]
    start = state(case["state"])
    entries = [(version, h(V["blobs"][name])) for version, name in case["entries"]]
    if case["error"] is None:
        after = apply_entries(start, entries, keys=keys)
        assert after.to_dict() == case["state_after"]
    else:
        assert error_of(lambda: apply_entries(start, entries, keys=keys)) == (
            case["error"],
            case["message"],
        )
        assert start.to_dict() == V["states"][case["state"]]  # the last good state is intact


@pytest.mark.parametrize("case", V["check_fetched"], ids=lambda c: c["name"])
def test_checks_after_a_fetch(case):
    point = case["checkpoint"]
    checkpoint = None if point is None else Checkpoint(point["version"], h(point["chain"]))
    got = error_of(
        lambda: check_fetched(
            state(case["state"]),
            server_version=case["server_version"],
            keys=[key(k) for k in case["keys"]],
            checkpoint=checkpoint,
        )
    )
    assert got == (case["error"], case.get("message"))


@pytest.mark.parametrize("case", V["compare_checkpoint"], ids=lambda c: c["name"])
def test_comparing_checkpoints(case):
    point = Checkpoint(case["checkpoint"]["version"], h(case["checkpoint"]["chain"]))
    if case["error"]:
        got = error_of(lambda: compare_checkpoint(state(case["state"]), point))
        assert got == (case["error"], case["message"])
    else:
        assert compare_checkpoint(state(case["state"]), point) == case["verdict"]


@pytest.mark.parametrize("case", V["malformed_entries"], ids=lambda c: c["name"])
def test_malformed_entries_are_refused(case):
    assert error_of(lambda: decode_entry(h(case["blob"])))[0] == case["error"]
    assert (
        error_of(lambda: apply_entry(state("v2"), h(case["blob"]), version=3, keys=[key("k1")]))[0]
        == case["error"]
    )


@pytest.mark.parametrize("case", V["malformed_mutations"], ids=lambda c: c["name"])
def test_malformed_mutations_are_refused(case):
    assert error_of(lambda: decode_mutation(h(case["plaintext"])))[0] == case["error"]


def test_sync_key_and_checkpoint_contents():
    for case in V["contents"]:
        content = Content(
            case["type"],
            h(case["message_id"]),
            case["timestamp"],
            case["sender_list_version"],
            h(case["sender_list_hash"]),
            case["body"],
        )
        assert encode_content(content).hex() == case["encoded"]
        assert decode_content(h(case["encoded"])).body == case["body"]


# ---------------------------------------------------------------------- rules


def m(index: str, value: Any, at: int, device: str = "dev-a") -> Mutation:
    return Mutation("contacts", ("contact", index), value, T0 + at, device)


K1 = SyncKey(bytes(range(16)), bytes(range(32)), 1)


def written(state: AccountState, *mutations: Mutation, key: SyncKey = K1) -> AccountState:
    rng = TestRng(bytes(32))
    entry = build_patch(state, list(mutations), version=state.version + 1, key=key, rng=rng)
    applied = apply_entry(state, entry.blob, version=entry.version, keys=[key])
    assert applied == entry.state  # the writer and a reader agree
    return applied


def test_last_writer_wins_by_timestamp_then_device_id_and_a_late_older_write_loses():
    s = written(AccountState(), m("bob", {"n": "first"}, 100, "dev-b"))
    s = written(s, m("bob", {"n": "older"}, 50, "dev-z"))
    assert s.get("contacts", ["contact", "bob"]) == {"n": "first"}
    s = written(s, m("bob", {"n": "same ms, lower id"}, 100, "dev-a"))
    assert s.get("contacts", ["contact", "bob"]) == {"n": "first"}
    s = written(s, m("bob", {"n": "same ms, higher id"}, 100, "dev-c"))
    assert s.get("contacts", ["contact", "bob"]) == {"n": "same ms, higher id"}
    s = written(s, m("bob", {"n": "same ms and id: later in the log"}, 100, "dev-c"))
    assert s.get("contacts", ["contact", "bob"]) == {"n": "same ms and id: later in the log"}


def test_device_ids_compare_as_utf8_bytes_not_utf16_units():
    # In UTF-16, U+FF5E sorts above the surrogates of U+1F600; in UTF-8 it sorts below.
    old = Mutation("contacts", ("contact", "x"), {}, T0, "\U0001f600")
    newer = Mutation("contacts", ("contact", "x"), {}, T0, "\uff5e")
    record = written(AccountState(), old).records[("contacts", ("contact", "x"))]
    assert supersedes(newer, record) is False


def test_a_removal_is_a_tombstone_that_an_older_add_cannot_undo():
    s = written(AccountState(), m("carol", {"n": "Carol"}, 100))
    s = written(s, m("carol", None, 200))
    assert s.get("contacts", ["contact", "carol"]) is None
    assert s.collection("contacts") == {}
    s = written(s, m("carol", {"n": "stale add"}, 150))
    assert s.get("contacts", ["contact", "carol"]) is None
    s = written(s, m("carol", {"n": "re-added"}, 300))
    assert s.collection("contacts") == {("contact", "carol"): {"n": "re-added"}}


def test_a_snapshot_states_the_same_state_as_the_patches_before_it():
    s = written(AccountState(), m("bob", {"n": 1}, 1), m("carol", {"n": 2}, 2))
    s = written(s, m("carol", None, 3), m("dave", {"n": 4}, 4))
    snapshot = build_snapshot(s, version=s.version + 1, key=K1, rng=TestRng(bytes(32)))
    fresh = apply_entry(AccountState(), snapshot.blob, version=snapshot.version, keys=[K1])
    assert fresh.records == s.records and fresh.hash == s.hash
    assert fresh.records == snapshot.state.records


def test_the_removed_device_cannot_read_anything_written_after_the_rotation():
    """A captured copy of the log plus the old key: every entry from the rotation on is
    refused, and no record of it opens under the old key's sub-keys."""
    k1, k2 = key("k1"), key("k2")
    old = sync_subkeys(k1)
    for name in ("e6", "e7"):
        blob = h(V["blobs"][name])
        entry = decode_entry(blob)
        assert entry.key_id == k2.key_id
        for record in entry.records:
            with pytest.raises(SyncEntryForged):
                open_record(old, record)
            with pytest.raises(DecryptionFailed):
                primitives.aead_decrypt(old.value, record.nonce, record.ciphertext, b"")
        with pytest.raises(SyncKeyUnknown):
            apply_entry(state("v5"), blob, version=entry.version, keys=[k1])
    # Nor can it link the new index MACs to the indexes it knew.
    known = {index_mac(old, r.collection, r.index) for r in state("v5").records.values()}
    assert known.isdisjoint(r.index_mac for r in decode_entry(h(V["blobs"]["e6"])).records)


def test_every_change_to_a_valid_entry_is_refused():
    """No byte of an entry can be changed without a refusal (the MAC covers all of it)."""
    blob = h(V["blobs"]["e3"])
    start = state("v2")
    for position in range(len(blob)):
        tampered = blob[:position] + bytes([blob[position] ^ 0x40]) + blob[position + 1 :]
        with pytest.raises((SyncRefused, MalformedMessage)):
            apply_entry(start, tampered, version=3, keys=[key("k1")])


def test_a_writer_refuses_to_write_at_a_version_other_than_the_next():
    with pytest.raises(MalformedMessage):
        build_patch(AccountState(), [m("bob", {}, 1)], version=2, key=K1, rng=TestRng(bytes(32)))
    late = SyncKey(K1.key_id, K1.key, since_version=5)
    with pytest.raises(MalformedMessage):
        build_patch(AccountState(), [m("bob", {}, 1)], version=1, key=late, rng=TestRng(bytes(32)))


def test_a_patch_too_large_for_the_server_is_refused_by_the_writer():
    big = [m(f"u{i}", {"note": "x" * 1000}, i) for i in range(70)]
    with pytest.raises(MalformedMessage):
        build_patch(AccountState(), big, version=1, key=K1, rng=TestRng(bytes(32)))


def test_the_state_round_trips_through_json_and_refuses_bad_json():
    s = state("v5")
    assert AccountState.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    bad = s.to_dict()
    bad["records"][0]["value_mac"] = "AAAA"
    with pytest.raises(MalformedMessage):
        AccountState.from_dict(bad)
    with pytest.raises(MalformedMessage):
        AccountState.from_dict({**s.to_dict(), "extra": 1})


def test_sealed_record_layout():
    sub = sync_subkeys(K1)
    sealed, _ = seal_record(sub, m("bob", {}, 1), TestRng(bytes(32)))
    encoded = sealed.encode()
    assert encoded[:32] == sealed.index_mac and encoded[32:56] == sealed.nonce
    assert int.from_bytes(encoded[56:60], "big") == len(sealed.ciphertext)
    assert SealedRecord(sealed.index_mac, sealed.nonce, encoded[60:]) == sealed
