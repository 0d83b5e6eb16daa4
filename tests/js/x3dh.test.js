// X3DH and prekey messages (docs/protocol.md sections 5 and 7), mirroring test_x3dh.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { accept, errorName, makeDevice, p, startSession, text, utf8 } from "./support.js";

for (const useOneTimePrekey of [true, false]) {
  test(`both sides derive the same secret and AD (one-time prekey: ${useOneTimePrekey})`, () => {
    const alice = makeDevice("alice");
    const bob = makeDevice("bob");
    const opk = useOneTimePrekey ? bob.keys.oneTimePrekeys[0] : null;
    const ours = p.x3dh.initiate({
      identity: alice.keys.identity,
      bundle: p.makePrekeyBundle("b", bob.keys, opk),
      rng: alice.rng,
    });
    const theirs = p.x3dh.respond({
      identity: bob.keys.identity,
      signedPrekey: bob.keys.signedPrekey.key,
      oneTimePrekey: opk === null ? null : opk.key,
      initiatorIdentityKey: alice.keys.identity.public,
      baseKey: ours.baseKey.public,
    });
    assert.deepEqual(ours.sharedSecret, theirs.sharedSecret);
    assert.deepEqual(ours.associatedData, theirs.associatedData);
    assert.deepEqual(
      ours.associatedData,
      p.encoding.concatBytes(alice.keys.identity.public, bob.keys.identity.public),
    );
    assert.equal(ours.dhOutputs.length, useOneTimePrekey ? 4 : 3);
  });
}

test("a replayed prekey message with a used base key is refused", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const message = startSession(alice, bob).encrypt(utf8("once"), alice.rng);
  accept(bob, alice, message);
  assert.equal(
    errorName(() => accept(bob, alice, message)),
    "ReplayDetected",
  );
});

test("a replay with the top bit of the base key flipped is refused", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const message = startSession(alice, bob).encrypt(utf8("once"), alice.rng);
  accept(bob, alice, message);
  const twisted = message.slice();
  twisted[2 + 32 + 31] ^= 0x80;
  assert.equal(
    errorName(() => accept(bob, alice, twisted)),
    "MalformedMessage",
  );
});

test("non-canonical X25519 encodings are recognised", () => {
  const key = new Uint8Array(32);
  key[31] = 0x7f;
  assert.equal(p.primitives.isCanonicalX25519(key), true);
  assert.equal(p.primitives.isCanonicalX25519(new Uint8Array(32).fill(0xff).fill(0x7f, 31)), false);
  const p25519 = new Uint8Array(32).fill(0xff);
  p25519[0] = 0xed;
  p25519[31] = 0x7f;
  assert.equal(p.primitives.isCanonicalX25519(p25519), false);
  p25519[0] = 0xec;
  assert.equal(p.primitives.isCanonicalX25519(p25519), true);
  key[31] = 0x80;
  assert.equal(p.primitives.isCanonicalX25519(key), false);
});

test("a prekey message from a key not in the signed list is refused", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const mallory = makeDevice("mallory");
  const message = startSession(mallory, bob).encrypt(utf8("I am alice"), mallory.rng);
  assert.equal(
    errorName(() => accept(bob, alice, message)),
    "UntrustedIdentity",
  );
});

test("a substituted bundle identity is refused", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const mallory = makeDevice("mallory");
  const bundle = p.makePrekeyBundle("bob", mallory.keys);
  assert.equal(
    errorName(() =>
      p.Session.initiate({
        identity: alice.keys.identity,
        bundle,
        listedIdentityKey: bob.keys.identity.public,
        rng: alice.rng,
      }),
    ),
    "UntrustedIdentity",
  );
});

test("a substituted signed prekey is refused", () => {
  const bob = makeDevice("bob");
  const mallory = makeDevice("mallory");
  const bundle = p.makePrekeyBundle("bob", bob.keys);
  bundle.signedPrekey = mallory.keys.signedPrekey.key.public;
  assert.equal(
    errorName(() => p.verifyPrekeyBundle(bundle, { listedIdentityKey: bob.keys.identity.public })),
    "InvalidSignature",
  );
});

test("an unknown one-time prekey is refused", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const message = startSession(alice, bob).encrypt(utf8("x"), alice.rng);
  const error = errorName(() =>
    p.acceptPrekeyMessage(message, {
      identity: bob.keys.identity,
      signedPrekeys: { 1: bob.keys.signedPrekey.key },
      oneTimePrekeys: {},
      senderIdentityKey: alice.keys.identity.public,
      usedBaseKeys: new Set(),
      rng: bob.rng,
    }),
  );
  assert.equal(error, "UnknownPrekey");
});

test("an unknown signed prekey is refused", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const message = startSession(alice, bob).encrypt(utf8("x"), alice.rng);
  const error = errorName(() =>
    p.acceptPrekeyMessage(message, {
      identity: bob.keys.identity,
      signedPrekeys: new Map(),
      oneTimePrekeys: new Map(),
      senderIdentityKey: alice.keys.identity.public,
      usedBaseKeys: [],
      rng: bob.rng,
    }),
  );
  assert.equal(error, "UnknownPrekey");
});

test("used base keys may be given as base64url strings", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const message = startSession(alice, bob).encrypt(utf8("once"), alice.rng);
  accept(bob, alice, message);
  bob.usedBaseKeys = new Set(bob.usedBaseKeys.map((k) => p.encoding.b64uEncode(k)));
  assert.equal(
    errorName(() => accept(bob, alice, message)),
    "ReplayDetected",
  );
});

test("bundle JSON round trip", () => {
  const bob = makeDevice("bob");
  const bundle = p.makePrekeyBundle("bob", bob.keys, bob.keys.oneTimePrekeys[1]);
  assert.deepEqual(p.PrekeyBundle.fromJSON(bundle.toJSON()), bundle);
  const noOpk = p.makePrekeyBundle("bob", bob.keys);
  assert.deepEqual(p.PrekeyBundle.fromJSON(noOpk.toJSON()), noOpk);
  for (const broken of [
    { ...bundle.toJSON(), device_id: 5 },
    { ...bundle.toJSON(), signed_prekey: { ...bundle.toJSON().signed_prekey, id: -1 } },
    { ...bundle.toJSON(), identity_key: "AAAA" },
    null,
  ]) {
    assert.equal(
      errorName(() => p.PrekeyBundle.fromJSON(broken)),
      "MalformedMessage",
    );
  }
});

test("a prekey message for another base key is not for this session", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const [session] = accept(bob, alice, startSession(alice, bob).encrypt(utf8("first"), alice.rng));
  const restart = startSession(alice, bob, { useOneTimePrekey: false }).encrypt(
    utf8("restart"),
    alice.rng,
  );
  assert.equal(
    errorName(() => session.decrypt(restart, bob.rng)),
    "UnknownSession",
  );
  assert.equal(text(accept(bob, alice, restart)[1]), "restart");
});

test("a ratchet message cannot start a session", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const a = startSession(alice, bob);
  const [b] = accept(bob, alice, a.encrypt(utf8("1"), alice.rng));
  a.decrypt(b.encrypt(utf8("2"), bob.rng), alice.rng);
  const third = a.encrypt(utf8("3"), alice.rng);
  assert.equal(
    errorName(() => accept(makeDevice("carol"), alice, third)),
    "UnknownSession",
  );
});

test("a low-order point as base key is refused with InvalidKey", () => {
  const alice = makeDevice("alice");
  const bob = makeDevice("bob");
  const message = startSession(alice, bob).encrypt(utf8("x"), alice.rng);
  const zeroed = message.slice();
  zeroed.fill(0, 2 + 32, 2 + 64);
  assert.equal(
    errorName(() => accept(bob, alice, zeroed)),
    "InvalidKey",
  );
});

test("device keys JSON round trip", () => {
  const bob = makeDevice("bob");
  assert.deepEqual(p.DeviceKeys.fromJSON(bob.keys.toJSON()).toJSON(), bob.keys.toJSON());
  assert.equal(
    errorName(() => p.DeviceKeys.fromJSON({ version: 2 })),
    "MalformedMessage",
  );
});

/** @param {any} data @param {object} changes */
const spkChanged = (data, changes) => ({
  ...data,
  signed_prekey: { ...data.signed_prekey, ...changes },
});

/** @param {any} data @param {object} changes */
function otkChanged(data, changes) {
  const keys = data.one_time_prekeys.map((k) => ({ ...k }));
  Object.assign(keys[0], changes);
  return { ...data, one_time_prekeys: keys };
}

for (const [name, change] of [
  ["version true", (d) => ({ ...d, version: true })],
  ['version "1"', (d) => ({ ...d, version: "1" })],
  ['signed prekey id "1"', (d) => spkChanged(d, { id: "1" })],
  ["signed prekey id -1", (d) => spkChanged(d, { id: -1 })],
  ["signed prekey id 2^32", (d) => spkChanged(d, { id: 2 ** 32 })],
  ["signed prekey id 1.5", (d) => spkChanged(d, { id: 1.5 })],
  ["one-time prekey id true", (d) => otkChanged(d, { id: true })],
  ["one-time prekey id null", (d) => otkChanged(d, { id: null })],
  ['one_time_prekeys "abc"', (d) => ({ ...d, one_time_prekeys: "abc" })],
  ["signed_prekey null", (d) => ({ ...d, signed_prekey: null })],
  ["a list", (d) => [d]],
  ["null", () => null],
]) {
  test(`device keys JSON needs exact integers: ${name}`, () => {
    const keys = makeDevice("keys json").keys;
    assert.equal(
      errorName(() => p.DeviceKeys.fromJSON(change(keys.toJSON()))),
      "MalformedMessage",
    );
  });
}

for (const prekeyId of [-1, 2 ** 32, true, "7"]) {
  test(`signed prekey ids outside u32 are malformed: ${JSON.stringify(prekeyId)}`, () => {
    const bob = makeDevice("bob");
    assert.equal(
      errorName(() => p.signedPrekeyBytes(prekeyId, bob.keys.signedPrekey.key.public)),
      "MalformedMessage",
    );
    const bundle = p.makePrekeyBundle("bob", bob.keys);
    bundle.signedPrekeyId = prekeyId;
    assert.equal(
      errorName(() =>
        p.verifyPrekeyBundle(bundle, { listedIdentityKey: bob.keys.identity.public }),
      ),
      "MalformedMessage",
    );
  });
}

for (const [name, change] of [
  ["signed prekey id true", (d) => ({ ...d, signed_prekey: { ...d.signed_prekey, id: true } })],
  [
    "one-time prekey id 2^32",
    (d) => ({ ...d, one_time_prekey: { ...d.one_time_prekey, id: 2 ** 32 } }),
  ],
  ["device id null", (d) => ({ ...d, device_id: null })],
  ['one_time_prekey "none"', (d) => ({ ...d, one_time_prekey: "none" })],
  ["a string", () => "bundle"],
]) {
  test(`bundle JSON with a bad field is malformed: ${name}`, () => {
    const bob = makeDevice("bob");
    const data = p.makePrekeyBundle("bob", bob.keys, bob.keys.oneTimePrekeys[0]).toJSON();
    assert.equal(
      errorName(() => p.PrekeyBundle.fromJSON(change(data))),
      "MalformedMessage",
    );
  });
}
