// ML-KEM-768 (section 1), mirroring tests/protocol/test_mlkem.py: the same public keys from
// the same seeds, the Python-made ciphertext opened to the same secrets, the same refusals,
// and libsodium's deterministic encapsulation reproduced from a TestRng.
import assert from "node:assert/strict";
import { test } from "node:test";

import { errorName, hex, p, seed, unhex, vector } from "./support.js";

const V = vector("mlkem.json");
const { primitives } = p;
const ALICE = unhex(V.keys[0].seed);

test("a seed gives its public key", () => {
  for (const key of V.keys) assert.equal(hex(primitives.mlkem768Public(unhex(key.seed))), key.public_key);
});

test("the Python-made ciphertext opens to the shared secret, an altered one to another", () => {
  const ciphertext = unhex(V.ciphertext);
  assert.equal(hex(primitives.mlkem768Decapsulate(ALICE, ciphertext)), V.shared);
  const flipped = ciphertext.slice();
  flipped[V.flipped_byte] ^= 1;
  assert.equal(hex(primitives.mlkem768Decapsulate(ALICE, flipped)), V.rejected);
  assert.equal(hex(primitives.mlkem768Decapsulate(unhex(V.keys[1].seed), ciphertext)), V.other_key_rejected);
});

test("an encapsulation from a TestRng is reproduced and opens to its secret", () => {
  const publicKey = unhex(V.keys[0].public_key);
  const [ciphertext, shared] = primitives.mlkem768Encapsulate(publicKey, p.TestRng(seed("mlkem encapsulation")));
  const [again] = primitives.mlkem768Encapsulate(publicKey, p.TestRng(seed("mlkem encapsulation")));
  assert.equal(hex(again), hex(ciphertext));
  assert.equal(hex(primitives.mlkem768Decapsulate(ALICE, ciphertext)), hex(shared));
});

test("refusals", () => {
  for (const c of V.refusals) {
    const call = {
      decapsulate: () => primitives.mlkem768Decapsulate(ALICE, unhex(c.ciphertext)),
      encapsulate: () => primitives.mlkem768Encapsulate(unhex(c.public_key), p.systemRng),
      public: () => primitives.mlkem768Public(unhex(c.seed)),
    }[/** @type {"decapsulate" | "encapsulate" | "public"} */ (c.call)];
    assert.equal(errorName(call), c.expected_error, c.name);
  }
});

test("a public key is checked without encapsulating to it", () => {
  for (const key of V.keys) primitives.mlkem768CheckPublic(unhex(key.public_key));
  const outOfRange = V.refusals.find((/** @type {any} */ c) => c.call === "encapsulate");
  assert.equal(errorName(() => primitives.mlkem768CheckPublic(unhex(outOfRange.public_key))), "InvalidKey");
  assert.equal(errorName(() => primitives.mlkem768CheckPublic(new Uint8Array(1183))), "InvalidKey");
});
