"""Property-based fuzzing of the account-state sync decoders (docs/protocol.md section 23), in
the style of test_fuzz.py: random bytes and random edits of valid entries, record plaintexts,
serialized states, content bodies and listings. Only ProtocolError subclasses may escape, and
no edit of a valid entry is ever applied."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from protocol.accountstate import AccountState, Checkpoint, apply_entry
from protocol.content import ContentType, decode_content, encode_content, validate_body
from protocol.strictjson import canonical_json
from protocol.syncentry import SyncKey, decode_entry, decode_mutation, encode_mutation
from protocol.synclog import apply_entries, check_fetched, compare_checkpoint
from tests.protocol.test_fuzz import (
    INTERESTING_INTS,
    byte_inputs,
    fuzz,
    json_values,
    mutated_json,
    refused_or_value,
)

V = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "account_state.json").read_text("utf-8")
)
KEYS = [
    SyncKey(bytes.fromhex(k["key_id"]), bytes.fromhex(k["key"]), k["since_version"])
    for k in V["keys"].values()
]
BLOBS = {name: bytes.fromhex(blob) for name, blob in V["blobs"].items()}
STATES = {name: AccountState.from_dict(data) for name, data in V["states"].items()}
PLAINTEXTS = [bytes.fromhex(r["plaintext"]) for r in V["records"]]
BODIES = {content["type"]: content["body"] for content in V["contents"]}
versions = st.one_of(st.integers(0, 12), st.sampled_from(INTERESTING_INTS))


@fuzz
@given(byte_inputs(list(BLOBS.values()), max_size=2000))
def test_decode_entry_refuses_only_with_protocol_errors(data):
    entry = refused_or_value(decode_entry, data)
    if entry is not None:
        assert entry.signed + entry.mac == data


@fuzz
@given(st.sampled_from(sorted(STATES)), byte_inputs(list(BLOBS.values()), max_size=2000), versions)
def test_apply_entry_applies_nothing_but_an_unchanged_valid_entry(start, data, version):
    before = STATES[start].to_dict()
    after = refused_or_value(apply_entry, STATES[start], data, version=version, keys=KEYS)
    assert STATES[start].to_dict() == before
    if after is not None:
        assert data in (BLOBS[n] for n in ("e1", "e2", "e3", "e4", "e5", "e6", "e7", "f3", "f4"))


@fuzz
@given(
    st.sampled_from(sorted(STATES)),
    st.lists(st.tuples(versions, st.sampled_from(sorted(BLOBS))), max_size=5),
    st.lists(st.sampled_from(KEYS), max_size=2),
)
def test_apply_entries_refuses_any_listing_only_with_protocol_errors(start, listing, keys):
    refused_or_value(
        apply_entries, STATES[start], [(v, BLOBS[name]) for v, name in listing], keys=keys
    )


@fuzz
@given(
    st.one_of(
        byte_inputs(PLAINTEXTS, max_size=400),
        st.builds(lambda v: json.dumps(v).encode(), json_values),
        st.builds(
            lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True).encode(
                "utf-8", "replace"
            ),
            st.sampled_from([json.loads(p) for p in PLAINTEXTS]).flatmap(mutated_json),
        ),
    )
)
def test_decode_mutation_refuses_only_with_protocol_errors(data):
    mutation = refused_or_value(decode_mutation, data)
    if mutation is not None:
        assert encode_mutation(mutation) == data


@fuzz
@given(st.sampled_from([s.to_dict() for s in STATES.values()]).flatmap(mutated_json))
def test_account_state_from_dict_refuses_only_with_protocol_errors(data):
    state = refused_or_value(AccountState.from_dict, data)
    if state is not None:
        canonical_json(state.to_dict())


@fuzz
@given(
    st.sampled_from(sorted(BODIES)).flatmap(
        lambda t: st.tuples(st.just(t), mutated_json(BODIES[t]))
    )
)
def test_sync_content_bodies_refuse_only_with_protocol_errors(case):
    content_type, body = case
    refused_or_value(validate_body, ContentType(content_type), body)


@fuzz
@given(byte_inputs([bytes.fromhex(c["encoded"]) for c in V["contents"]]))
def test_decode_content_of_the_sync_types_refuses_only_with_protocol_errors(data):
    content = refused_or_value(decode_content, data)
    if content is not None and isinstance(content.type, ContentType):
        assert encode_content(content) == data


@fuzz
@given(st.sampled_from(sorted(STATES)), versions, st.binary(min_size=32, max_size=32), versions)
def test_checkpoints_and_fetch_checks_refuse_only_with_sync_errors(start, version, chain, server):
    refused_or_value(compare_checkpoint, STATES[start], Checkpoint(version, chain))
    refused_or_value(
        check_fetched,
        STATES[start],
        server_version=server,
        keys=KEYS,
        checkpoint=Checkpoint(version, chain),
    )
