// Version-2 sessions (docs/protocol.md section 27), mirroring tests/protocol/test_pq.py: every
// value of pq.json reproduced from its seeds alone. libsodium encapsulates deterministically,
// so here the encapsulation table is checked row by row instead of being replayed.
import assert from "node:assert/strict";
import { test } from "node:test";

import { errorName, hex, p, seed, text, unhex, vector } from "./support.js";

const V = vector("pq.json");
const { primitives } = p;
const BOB = p.DeviceKeys.fromJSON(V.bob_device_keys);
const LAST_RESORT = /** @type {import("../../static/js/protocol/keys.js").KemPrekey} */ (
  BOB.lastResortKemPrekey
);
const KEM_PREKEYS = new Map([...BOB.kemPrekeys, LAST_RESORT].map((k) => [k.id, k]));

/** @param {Uint8Array} data @param {Uint8Array} sender @param {any} rng @param {object} [extra] */
function accept(data, sender, rng, extra = {}) {
  return p.acceptPrekeyMessage(data, {
    identity: BOB.identity,
    signedPrekeys: new Map([[7, BOB.signedPrekey.key]]),
    oneTimePrekeys: new Map([[100, BOB.oneTimePrekeys[0].key]]),
    kemPrekeys: KEM_PREKEYS,
    senderIdentityKey: sender,
    usedBaseKeys: [],
    rng,
    ...extra,
  });
}

/** @param {Uint8Array} wire */
function headerOf(wire) {
  const message = p.decodeMessage(wire);
  return (message instanceof p.PrekeyMessage ? message.message : message).header;
}

test("every row of the encapsulation table is libsodium's encapsulation of its m", () => {
  const keys = new Map();
  const remember = (/** @type {Uint8Array} */ publicKey) =>
    keys.set(hex(primitives.hash32("Parley v2 kem public key", publicKey)), publicKey);
  for (const k of KEM_PREKEYS.values()) remember(k.public);
  for (const step of V.conversation.steps) {
    if (step.op === "encrypt") {
      const offer = headerOf(unhex(step.message)).kemOffer;
      if (offer) remember(offer.publicKey);
    }
  }
  assert.ok(V.encapsulations.length >= 4);
  for (const row of V.encapsulations) {
    const publicKey = keys.get(row.public_key_hash);
    assert.ok(publicKey, "the table's key is Bob's or an offer in the conversation");
    const [ciphertext, shared] = primitives.mlkem768Encapsulate(publicKey, () => unhex(row.m));
    assert.equal(hex(ciphertext), row.ciphertext);
    assert.equal(hex(shared), row.shared);
  }
});

test("KEM prekeys come from their seeds, signed with their flag", () => {
  for (const [i, key] of [BOB.kemPrekeys[0], LAST_RESORT].entries()) {
    const c = V.kem_prekeys[i];
    assert.equal(hex(key.public), c.public_key);
    assert.equal(key.lastResort, c.last_resort);
    assert.equal(hex(p.kemPrekeyBytes(key.id, key.lastResort, key.public)), c.signed_bytes);
    assert.equal(hex(key.signature), c.signature);
  }
  assert.deepEqual(BOB.toJSON(), V.bob_device_keys);
});

for (const c of V.sessions) {
  test(`PQXDH both sides, ${c.name}`, () => {
    const aliceRng = p.TestRng(seed(`pq alice ${c.name}`));
    const alice = p.generateDeviceKeys(aliceRng);
    const session = p.Session.initiate({
      identity: alice.identity,
      bundle: p.PrekeyBundle.fromJSON(c.bundle),
      listedIdentityKey: BOB.identity.public,
      rng: aliceRng,
      deviceSpeaksV2: true,
    });
    assert.equal(session.version, 2);
    assert.equal(hex(session.binding), c.binding);
    assert.equal(hex(session.associatedData), c.associated_data);
    const first = session.encrypt(new TextEncoder().encode("hello, quantum-safe bob"), aliceRng);
    assert.equal(hex(first), c.first_message);
    assert.deepEqual(session.toJSON(), c.alice_session);
    const inbound = accept(first, alice.identity.public, p.TestRng(seed(`pq bob ${c.name}`)));
    assert.equal(text(inbound.plaintext), "hello, quantum-safe bob");
    assert.equal(inbound.oneTimeKemPrekeyId, c.one_time_kem_prekey_id);
    assert.deepEqual(inbound.session.toJSON(), c.bob_session);
  });
}

test("the conversation with KEM steps, out of order and a lost message", () => {
  const first = V.sessions[0];
  const aliceRng = p.TestRng(seed("pq alice one_time"));
  const alice = p.generateDeviceKeys(aliceRng);
  /** @type {Record<string, any>} */
  const parties = {
    alice: p.Session.initiate({
      identity: alice.identity,
      bundle: p.PrekeyBundle.fromJSON(first.bundle),
      listedIdentityKey: BOB.identity.public,
      rng: aliceRng,
    }),
  };
  parties.alice.encrypt(new TextEncoder().encode("hello, quantum-safe bob"), aliceRng);
  const bobRng = p.TestRng(seed("pq bob one_time"));
  parties.bob = accept(unhex(first.first_message), alice.identity.public, bobRng).session;
  /** @type {Record<string, any>} */
  const rngs = { alice: aliceRng, bob: bobRng };
  /** @type {Map<string, Uint8Array>} */
  const messages = new Map();
  let offers = 0;
  let answers = 0;
  for (const step of V.conversation.steps) {
    const session = parties[step.party];
    const rng = rngs[step.party];
    if (step.op === "encrypt") {
      const wire = session.encrypt(unhex(step.plaintext), rng);
      assert.equal(hex(wire), step.message, step.name);
      messages.set(step.name, wire);
      const header = headerOf(wire);
      offers += header.kemOffer ? 1 : 0;
      answers += header.kemAnswer ? 1 : 0;
      continue;
    }
    /** @type {string | null} */
    let plaintext = null;
    const error = errorName(() => {
      plaintext = hex(session.decrypt(messages.get(step.name), rng));
    });
    assert.deepEqual([plaintext, error], [step.plaintext, step.expected_error], step.name);
  }
  assert.ok(offers > 0 && answers > 0);
  assert.deepEqual(parties.alice.toJSON(), V.conversation.final_sessions.alice);
  assert.deepEqual(parties.bob.toJSON(), V.conversation.final_sessions.bob);
});

test("refusals", () => {
  for (const c of V.refusals) {
    /** @type {Record<string, () => unknown>} */
    const calls = {
      accept: () =>
        accept(unhex(c.message), unhex(c.sender), p.TestRng(seed("pq refusal")), {
          kemPrekeys: new Map(c.kem_prekey_ids?.map((/** @type {number} */ i) => [i, KEM_PREKEYS.get(i)])),
          senderSpeaksV2: c.sender_speaks_v2,
        }),
      initiate: () =>
        p.Session.initiate({
          identity: p.generateDeviceKeys(p.TestRng(seed("pq alice downgrade"))).identity,
          bundle: p.PrekeyBundle.fromJSON(c.bundle),
          listedIdentityKey: BOB.identity.public,
          rng: p.TestRng(seed("pq refusal")),
          deviceSpeaksV2: c.device_speaks_v2,
        }),
      verify_bundle: () =>
        p.verifyPrekeyBundle(p.PrekeyBundle.fromJSON(c.bundle), {
          listedIdentityKey: BOB.identity.public,
        }),
      decrypt: () => p.Session.fromJSON(c.session).decrypt(unhex(c.message), p.TestRng(seed("pq refusal"))),
      decode: () => p.decodeMessage(unhex(c.message)),
    };
    assert.equal(errorName(calls[c.call]), c.expected_error, c.name);
  }
});

test("an answer to an offer this side did not make is refused and changes nothing", () => {
  // The conversation's step where Alice stepped into Bob's answering chain, replayed from the
  // session just before it with the offer's id changed.
  const steps = V.conversation.steps;
  const aliceRng = p.TestRng(seed("pq alice one_time"));
  const alice = p.generateDeviceKeys(aliceRng);
  const session = p.Session.initiate({
    identity: alice.identity,
    bundle: p.PrekeyBundle.fromJSON(V.sessions[0].bundle),
    listedIdentityKey: BOB.identity.public,
    rng: aliceRng,
  });
  session.encrypt(new TextEncoder().encode("hello, quantum-safe bob"), aliceRng);
  /** @type {Map<string, Uint8Array>} */
  const messages = new Map();
  for (const step of steps) {
    if (step.op === "encrypt") messages.set(step.name, unhex(step.message));
    if (step.party !== "alice") continue;
    if (step.op === "encrypt") {
      session.encrypt(unhex(step.plaintext), aliceRng);
      continue;
    }
    const wire = /** @type {Uint8Array} */ (messages.get(step.name));
    if (headerOf(wire).kemAnswer && session.kem.offer) {
      const state = session.toJSON();
      const other = p.Session.fromJSON({ ...state, kem: { ...state.kem, offer: { ...state.kem.offer, id: state.kem.offer.id + 1 } } });
      const before = JSON.stringify(other.toJSON());
      assert.throws(() => other.decrypt(wire, p.TestRng(seed("pq refusal"))), /did not make/);
      assert.equal(JSON.stringify(other.toJSON()), before);
      return;
    }
    session.decrypt(wire, aliceRng);
  }
  assert.fail("no answer reached Alice");
});

test("KEM refill plans are reproduced", () => {
  for (const c of V.refills) {
    const rng = p.TestRng(seed(`pq refill ${c.name}`));
    const keys = c.keys === "new" ? p.generateDeviceKeys(rng) : BOB;
    const plan = p.planKemRefill(keys, {
      stored: c.stored,
      lastResortStored: c.last_resort_stored,
      nextId: c.next_id,
      target: c.target,
      rng,
    });
    if (c.plan === null) {
      assert.equal(plan, null, c.name);
      continue;
    }
    assert.ok(plan, c.name);
    assert.deepEqual(plan.keys.toJSON(), c.plan.keys, c.name);
    assert.equal(plan.nextId, c.plan.next_id);
    const uploads = plan.uploads.map((body) => ({
      ids: body.kem_prekeys.map((/** @type {{id: number}} */ k) => k.id),
      last_resort_id: body.last_resort_kem_prekey?.id ?? null,
      digest: hex(primitives.hash32("Parley v1 test digest", p.strictjson.canonicalJson(body))),
    }));
    assert.deepEqual(uploads, c.plan.uploads, c.name);
  }
});

test("a device list whose entries say their versions is reproduced, and its refusals", () => {
  const L = V.device_lists;
  const rng = p.TestRng(seed("pq device list"));
  const [primary, laptop] = [0, 1, 2].map(() => p.generateDeviceKeys(rng).identity);
  const parsed = p.DeviceList.fromJSON(L.list);
  assert.equal(hex(p.deviceListBytes(parsed)), L.list_bytes);
  assert.equal(hex(parsed.hash), L.hash);
  assert.deepEqual(parsed.toJSON(), L.list);
  assert.deepEqual(parsed.devices.map((d) => d.speaksV2), [true, true, false]);
  assert.equal(hex(p.deviceSignatureBytes("acct-pq", primary.public, laptop.public, [1, 2])), L.laptop_signed_bytes);
  for (const c of L.signature_protocols) {
    const entry = /** @type {any} */ (parsed.entry(c.device));
    const covered = p.deviceSignatureProtocols(unhex(c.signature), {
      accountId: "acct-pq",
      accountKey: primary.public,
      identityKey: entry.identityKey,
    });
    assert.deepEqual([...covered], c.protocols);
  }
  for (const c of L.cases) {
    const error = errorName(() => {
      let list = p.DeviceList.fromJSON(c.list);
      if (c.resign) {
        list = p.signDeviceList(primary, {
          accountId: list.accountId,
          version: list.version,
          timestamp: list.timestamp,
          devices: list.devices,
        });
      }
      p.verifyDeviceList(list, { expectedAccountKey: primary.public });
    });
    assert.equal(error, c.expected_error, c.name);
  }
});
