"""ML-KEM-768 (docs/protocol.md section 1), the primitive of post-quantum sessions (issue
#17): every value of mlkem.json reproduced from its inputs, the same in the JS mirror
(tests/js/mlkem.test.js)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from protocol import primitives
from protocol.exceptions import InvalidKey
from tests.vectors.generate import error_name

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
V = json.loads((VECTORS / "mlkem.json").read_text("utf-8"))
ALICE = bytes.fromhex(V["keys"][0]["seed"])


def test_regenerating_the_vectors_equals_the_committed_file():
    spec = importlib.util.spec_from_file_location("mlkem_generator", VECTORS / "generate_mlkem.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render(generator.build()) == (VECTORS / "mlkem.json").read_text("utf-8")


@pytest.mark.parametrize("key", V["keys"], ids=lambda k: k["name"])
def test_a_seed_gives_its_public_key(key):
    assert primitives.mlkem768_public(bytes.fromhex(key["seed"])).hex() == key["public_key"]


def test_the_ciphertext_opens_to_the_shared_secret_and_an_altered_one_to_another():
    ciphertext = bytes.fromhex(V["ciphertext"])
    assert primitives.mlkem768_decapsulate(ALICE, ciphertext).hex() == V["shared"]
    flipped = bytearray(ciphertext)
    flipped[V["flipped_byte"]] ^= 1
    assert primitives.mlkem768_decapsulate(ALICE, bytes(flipped)).hex() == V["rejected"]
    bob = bytes.fromhex(V["keys"][1]["seed"])
    assert primitives.mlkem768_decapsulate(bob, ciphertext).hex() == V["other_key_rejected"]
    assert len({V["shared"], V["rejected"], V["other_key_rejected"]}) == 3


def test_an_encapsulation_opens_to_its_secret_and_two_are_not_the_same():
    public = bytes.fromhex(V["keys"][0]["public_key"])
    first, second = primitives.mlkem768_encapsulate(public), primitives.mlkem768_encapsulate(public)
    for ciphertext, shared in (first, second):
        assert primitives.mlkem768_decapsulate(ALICE, ciphertext) == shared
    assert first != second


@pytest.mark.parametrize("case", V["refusals"], ids=lambda c: c["name"])
def test_refusals(case):
    calls = {
        "decapsulate": lambda: primitives.mlkem768_decapsulate(
            ALICE, bytes.fromhex(case["ciphertext"])
        ),
        "encapsulate": lambda: primitives.mlkem768_encapsulate(bytes.fromhex(case["public_key"])),
        "public": lambda: primitives.mlkem768_public(bytes.fromhex(case["seed"])),
    }
    assert error_name(calls[case["call"]]) == case["expected_error"]


def test_a_public_key_of_another_length_is_refused():
    with pytest.raises(InvalidKey):
        primitives.mlkem768_encapsulate(bytes(1183))


def test_a_public_key_is_checked_without_encapsulating_to_it():
    for key in V["keys"]:
        primitives.mlkem768_check_public(bytes.fromhex(key["public_key"]))
    out_of_range = next(c for c in V["refusals"] if c["call"] == "encapsulate")
    for bad in (bytes.fromhex(out_of_range["public_key"]), bytes(1183), bytes(1185)):
        with pytest.raises(InvalidKey):
            primitives.mlkem768_check_public(bad)
