// Double Ratchet behaviour (docs/protocol.md section 6), mirroring tests/protocol/test_ratchet.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  accept,
  errorName,
  establishedPair,
  flip,
  makeDevice,
  p,
  startSession,
  text,
  utf8,
} from "./support.js";

const { MAX_SKIP, MAX_SKIPPED_TOTAL, Session } = p;
const state = (session) => JSON.stringify(session.toJSON());
const restore = (session) => Session.fromJSON(JSON.parse(JSON.stringify(session)));

test("conversation both ways after the prekey phase", () => {
  const { alice, a, bob, b } = establishedPair();
  for (let i = 0; i < 3; i++) {
    assert.equal(text(b.decrypt(a.encrypt(utf8(`a${i}`), alice.rng), bob.rng)), `a${i}`);
    assert.equal(text(a.decrypt(b.encrypt(utf8(`b${i}`), bob.rng), alice.rng)), `b${i}`);
  }
});

test("initiator sends prekey messages until it hears back", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const a = startSession(alice, bob);
  const first = a.encrypt(utf8("1"), alice.rng);
  const second = a.encrypt(utf8("2"), alice.rng);
  assert.equal(first[1], 1);
  assert.equal(second[1], 1);
  const [b, plaintext] = accept(bob, alice, second);
  assert.equal(text(plaintext), "2");
  assert.equal(text(b.decrypt(first, bob.rng)), "1");
  a.decrypt(b.encrypt(utf8("reply"), bob.rng), alice.rng);
  assert.equal(a.encrypt(utf8("3"), alice.rng)[1], 2);
});

test("responder cannot send before receiving", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const [b] = accept(bob, alice, startSession(alice, bob).encrypt(utf8("x"), alice.rng));
  const fresh = Session.fromJSON({ ...b.toJSON(), send_chain_key: null });
  assert.equal(
    errorName(() => fresh.encrypt(utf8("x"), bob.rng)),
    "UnknownSession",
  );
});

test("forward secrecy: a used message key is gone from later serialized state", () => {
  const { alice, a, bob, b } = establishedPair();
  const message = a.encrypt(utf8("secret"), alice.rng);
  const chainKeyBefore = b.recvChainKey;
  const [usedKey] = p.kdfCk(chainKeyBefore);
  assert.equal(text(b.decrypt(message, bob.rng)), "secret");
  const serialized = JSON.stringify(b);
  assert.ok(!serialized.includes(p.encoding.b64uEncode(usedKey)));
  assert.ok(!serialized.includes(p.encoding.b64uEncode(chainKeyBefore)));
  const restored = Session.fromJSON(JSON.parse(serialized));
  assert.equal(
    errorName(() => restored.decrypt(message, bob.rng)),
    "ReplayDetected",
  );
  assert.equal(
    errorName(() => b.decrypt(message, bob.rng)),
    "ReplayDetected",
  );
});

test("forward secrecy: a skipped key is deleted after use", () => {
  const { alice, a, bob, b } = establishedPair();
  const late = a.encrypt(utf8("late"), alice.rng);
  b.decrypt(a.encrypt(utf8("early"), alice.rng), bob.rng);
  assert.equal(b.skipped.size, 1);
  const skippedKey = b.skipped.toList()[0].key;
  assert.equal(text(b.decrypt(late, bob.rng)), "late");
  assert.equal(b.skipped.size, 0);
  assert.ok(!JSON.stringify(b).includes(skippedKey));
  assert.equal(
    errorName(() => restore(b).decrypt(late, bob.rng)),
    "ReplayDetected",
  );
});

test("post-compromise: a stolen state cannot decrypt after both sides ratchet", () => {
  const { alice, a, bob, b } = establishedPair();
  const stolen = restore(b);
  a.decrypt(b.encrypt(utf8("ping"), bob.rng), alice.rng);
  b.decrypt(a.encrypt(utf8("pong"), alice.rng), bob.rng);
  a.decrypt(b.encrypt(utf8("ping2"), bob.rng), alice.rng);
  const after = a.encrypt(utf8("after recovery"), alice.rng);
  assert.equal(text(b.decrypt(after, bob.rng)), "after recovery");
  assert.equal(
    errorName(() => stolen.decrypt(after, makeDevice("attacker").rng)),
    "DecryptionFailed",
  );
});

test("out of order within one chain and across ratchet steps", () => {
  const { alice, a, bob, b } = establishedPair();
  const x = [0, 1, 2, 3, 4].map((i) => a.encrypt(utf8(`x${i}`), alice.rng));
  b.decrypt(x[4], bob.rng);
  a.decrypt(b.encrypt(utf8("turn"), bob.rng), alice.rng);
  const y = [0, 1, 2].map((i) => a.encrypt(utf8(`y${i}`), alice.rng));
  const order = [
    ["y", 2],
    ["x", 1],
    ["y", 0],
    ["x", 3],
    ["x", 0],
    ["y", 1],
    ["x", 2],
  ];
  for (const [chain, i] of order) {
    const message = (chain === "x" ? x : y)[i];
    assert.equal(text(b.decrypt(message, bob.rng)), `${chain}${i}`);
  }
  assert.equal(b.skipped.size, 0);
});

test("skipping exactly MAX_SKIP messages is accepted", () => {
  const { alice, a, bob, b } = establishedPair();
  for (let i = 0; i < MAX_SKIP; i++) a.encrypt(utf8("lost"), alice.rng);
  assert.equal(text(b.decrypt(a.encrypt(utf8("arrives"), alice.rng), bob.rng)), "arrives");
  assert.equal(b.skipped.size, MAX_SKIP);
});

test("a message beyond the skip bound is refused and the state is unchanged", () => {
  const { alice, a, bob, b } = establishedPair();
  for (let i = 0; i < MAX_SKIP + 1; i++) a.encrypt(utf8("lost"), alice.rng);
  const before = state(b);
  assert.equal(
    errorName(() => b.decrypt(a.encrypt(utf8("too far"), alice.rng), bob.rng)),
    "TooManySkippedMessages",
  );
  assert.equal(state(b), before);
});

test("the skip bound applies to the previous chain length too", () => {
  const { alice, a, bob, b } = establishedPair();
  for (let i = 0; i < MAX_SKIP + 1; i++) a.encrypt(utf8("lost"), alice.rng);
  a.decrypt(b.encrypt(utf8("turn"), bob.rng), alice.rng);
  assert.equal(
    errorName(() => b.decrypt(a.encrypt(utf8("new chain"), alice.rng), bob.rng)),
    "TooManySkippedMessages",
  );
});

test("stored skipped keys are capped, the oldest dropped", () => {
  const { alice, a, bob, b } = establishedPair();
  let oldest = null;
  for (let step = 0; step < 3; step++) {
    const batch = Array.from({ length: MAX_SKIP }, () => a.encrypt(utf8("m"), alice.rng));
    oldest ??= batch[0];
    b.decrypt(a.encrypt(utf8("last"), alice.rng), bob.rng);
    a.decrypt(b.encrypt(utf8(`turn ${step}`), bob.rng), alice.rng);
  }
  assert.equal(b.skipped.size, MAX_SKIPPED_TOTAL);
  assert.equal(
    errorName(() => b.decrypt(oldest, bob.rng)),
    "ReplayDetected",
  );
});

test("a replayed ratchet message is refused", () => {
  const { alice, a, bob, b } = establishedPair();
  const message = a.encrypt(utf8("once"), alice.rng);
  assert.equal(text(b.decrypt(message, bob.rng)), "once");
  assert.equal(
    errorName(() => b.decrypt(message, bob.rng)),
    "ReplayDetected",
  );
});

test("a replay from an earlier chain is refused", () => {
  const { alice, a, bob, b } = establishedPair();
  const old = a.encrypt(utf8("old chain"), alice.rng);
  b.decrypt(old, bob.rng);
  a.decrypt(b.encrypt(utf8("turn"), bob.rng), alice.rng);
  b.decrypt(a.encrypt(utf8("new chain"), alice.rng), bob.rng);
  assert.equal(
    errorName(() => b.decrypt(old, bob.rng)),
    "ReplayDetected",
  );
});

test("every flipped bit of a ratchet message is refused without state change", () => {
  const { alice, a, bob, b } = establishedPair();
  const message = a.encrypt(utf8("short"), alice.rng);
  const before = state(b);
  for (let bit = 0; bit < message.length * 8; bit++) {
    assert.notEqual(
      errorName(() => b.decrypt(flip(message, bit), bob.rng)),
      null,
      `bit ${bit}`,
    );
    assert.equal(state(b), before, `state changed after flipping bit ${bit}`);
  }
  assert.equal(text(b.decrypt(message, bob.rng)), "short");
});

test("every flipped bit of a prekey message is refused and nothing is consumed", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const message = startSession(alice, bob).encrypt(utf8("first"), alice.rng);
  for (let bit = 0; bit < message.length * 8; bit++) {
    assert.notEqual(
      errorName(() => accept(bob, alice, flip(message, bit))),
      null,
      `bit ${bit}`,
    );
  }
  assert.deepEqual(bob.usedBaseKeys, []);
  assert.equal(text(accept(bob, alice, message)[1]), "first");
});

test("truncations and extensions are refused", () => {
  const { alice, a, bob, b } = establishedPair("truncations");
  const message = a.encrypt(utf8("payload"), alice.rng);
  for (let cut = 0; cut < message.length; cut++) {
    assert.notEqual(
      errorName(() => b.decrypt(message.subarray(0, cut), bob.rng)),
      null,
    );
  }
  for (const extra of [[0], [1, 2, 3], new Array(8).fill(0xff)]) {
    const longer = p.encoding.concatBytes(message, Uint8Array.from(extra));
    assert.notEqual(
      errorName(() => b.decrypt(longer, bob.rng)),
      null,
    );
  }
});

test("an unknown version is malformed", () => {
  const { alice, a, bob, b } = establishedPair();
  const message = a.encrypt(utf8("x"), alice.rng);
  message[0] = 2;
  assert.equal(
    errorName(() => b.decrypt(message, bob.rng)),
    "MalformedMessage",
  );
});

test("a session restored from JSON continues both ways", () => {
  const { alice, a, bob, b } = establishedPair();
  const pending = a.encrypt(utf8("in flight"), alice.rng);
  const skippedSource = a.encrypt(utf8("skipped"), alice.rng);
  b.decrypt(a.encrypt(utf8("ahead"), alice.rng), bob.rng);
  const a2 = restore(a);
  const b2 = restore(b);
  assert.deepEqual(a2.toJSON(), a.toJSON());
  assert.deepEqual(b2.toJSON(), b.toJSON());
  assert.equal(text(b2.decrypt(skippedSource, bob.rng)), "skipped");
  assert.equal(text(b2.decrypt(pending, bob.rng)), "in flight");
  assert.equal(
    text(a2.decrypt(b2.encrypt(utf8("from restored bob"), bob.rng), alice.rng)),
    "from restored bob",
  );
  assert.equal(
    text(b2.decrypt(a2.encrypt(utf8("from restored alice"), alice.rng), bob.rng)),
    "from restored alice",
  );
});

test("a session serializes to plain JSON-compatible values only", () => {
  const { a } = establishedPair();
  const data = a.toJSON();
  assert.deepEqual(JSON.parse(JSON.stringify(data)), data);
  assert.deepEqual(structuredClone(data), data);
});

for (const change of [
  { version: 2 },
  { role: "observer" },
  { root_key: "short" },
  { dh_self_public: p.encoding.b64uEncode(new Uint8Array(32)) },
  { send_n: -1 },
  { skipped: "none" },
]) {
  test(`a corrupt serialized session is refused: ${JSON.stringify(change)}`, () => {
    const { a } = establishedPair();
    assert.equal(
      errorName(() => Session.fromJSON({ ...a.toJSON(), ...change })),
      "MalformedMessage",
    );
  });
}

/** @param {any} data @param {object} changes */
function withSkipped(data, changes) {
  return { ...data, skipped: [{ dh: data.dh_self_public, n: 0, key: data.root_key, ...changes }] };
}

/** @param {any} data @param {object} changes */
function withPending(data, changes) {
  const pending = { ephemeral_key: data.base_key, signed_prekey_id: 1, one_time_prekey_id: null };
  return { ...data, pending_prekey: { ...pending, ...changes } };
}

for (const [name, change] of [
  ['send_n "3"', (d) => ({ ...d, send_n: "3" })],
  ["recv_n true", (d) => ({ ...d, recv_n: true })],
  ["prev_n 3.7", (d) => ({ ...d, prev_n: 3.7 })],
  ["send_n -1", (d) => ({ ...d, send_n: -1 })],
  ["send_n 2^53", (d) => ({ ...d, send_n: 2 ** 53 })],
  ["recv_n null", (d) => ({ ...d, recv_n: null })],
  ["version true", (d) => ({ ...d, version: true })],
  ['skipped ""', (d) => ({ ...d, skipped: "" })],
  ["skipped {}", (d) => ({ ...d, skipped: {} })],
  ['previous_dh_remote ""', (d) => ({ ...d, previous_dh_remote: "" })],
  ['skipped n "0"', (d) => withSkipped(d, { n: "0" })],
  ["skipped n false", (d) => withSkipped(d, { n: false })],
  ["skipped n -1", (d) => withSkipped(d, { n: -1 })],
  ['signed_prekey_id "1"', (d) => withPending(d, { signed_prekey_id: "1" })],
  ["signed_prekey_id 2^32", (d) => withPending(d, { signed_prekey_id: 2 ** 32 })],
  ["one_time_prekey_id 1.5", (d) => withPending(d, { one_time_prekey_id: 1.5 })],
  ["one_time_prekey_id true", (d) => withPending(d, { one_time_prekey_id: true })],
  ['pending_prekey "none"', (d) => ({ ...d, pending_prekey: "none" })],
  ["pending_prekey []", (d) => ({ ...d, pending_prekey: [] })],
  ["a receiving chain without dh_remote", (d) => ({ ...d, dh_remote: null })],
  ["a list", (d) => [d]],
  ["null", () => null],
]) {
  test(`a serialized session needs exact JSON integers: ${name}`, () => {
    const { a } = establishedPair();
    assert.equal(
      errorName(() => Session.fromJSON(change(a.toJSON()))),
      "MalformedMessage",
    );
  });
}

test("a serialized session with valid edge integers and a pending prekey round-trips", () => {
  const { a } = establishedPair();
  const data = withPending(withSkipped(a.toJSON(), { n: 2 ** 53 - 1 }), {
    one_time_prekey_id: 2 ** 32 - 1,
  });
  assert.deepEqual(Session.fromJSON(data).toJSON(), data);
});

for (const field of ["send_n", "prev_n"]) {
  test(`${field} beyond u32 refuses to encrypt and leaves the session unchanged`, () => {
    const { alice, a } = establishedPair();
    const session = Session.fromJSON({ ...a.toJSON(), [field]: 2 ** 32 });
    const before = state(session);
    assert.equal(
      errorName(() => session.encrypt(utf8("x"), alice.rng)),
      "MalformedMessage",
    );
    assert.equal(state(session), before);
  });
}

// A ratchet message to Alice before any reply, claiming Bob's signed prekey as its ratchet
// key: everything in it is public (keys from the bundle, identity keys).
for (const [n, pn, key] of [
  [0, 0, null],
  [3, 0, null],
  [0, 7, null],
  [0, 0, new Uint8Array(32)],
  [2, 1, new Uint8Array(32).fill(0xff)],
]) {
  test(`a message on the initiator's unused chain is refused, not forged: n=${n} pn=${pn}`, () => {
    const alice = makeDevice("forge alice");
    const bob = makeDevice("forge bob");
    const session = startSession(alice, bob);
    const header = new p.Header({ dh: bob.keys.signedPrekey.key.public, pn, n });
    // The key an unkeyed chain would give: anyone can compute it.
    const messageKey =
      key ??
      p.primitives.blake2b(
        p.encoding.concatBytes(p.encoding.encStr("Parley v1 chain"), Uint8Array.of(1)),
        { size: 32 },
      );
    const ad = p.encoding.concatBytes(
      alice.keys.identity.public,
      bob.keys.identity.public,
      header.encode(),
    );
    const nonce = new Uint8Array(24);
    const ciphertext = p.primitives.aeadEncrypt(messageKey, nonce, utf8("forged by mallory"), ad);
    const message = new p.RatchetMessage({ header, nonce, ciphertext }).encode();
    const before = state(session);
    assert.equal(
      errorName(() => session.decrypt(message, alice.rng)),
      "DecryptionFailed",
    );
    assert.equal(state(session), before);
    assert.notEqual(session.pendingPrekey, null);
  });
}
