// Groups (section 25), mirroring tests/protocol/test_groups.py: every value of groups.json
// reproduced by the JS mirror, and the rules a device relies on.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { errorName, hex, p, unhex, vector } from "./support.js";

const V = vector("groups.json");
const SK = V.sender_keys;
const { groups, senderkeys } = p;

/** @param {string} device */
const identity = (device) => p.IdentityKeyPair.fromSeed(unhex(V.seeds[device]));

/** @type {Map<string, Uint8Array[]>} */
const DEVICE_LISTS = new Map();
for (const [device, account] of Object.entries(V.devices)) {
  DEVICE_LISTS.set(account, [...(DEVICE_LISTS.get(account) ?? []), identity(device).public]);
}
const CHAIN = V.chain.map((/** @type {any} */ e) => unhex(e.wire));
const json = (/** @type {any} */ value) => JSON.parse(JSON.stringify(value));
/** @param {string} name */
const state = (name) => (V.states[name] === null ? null : groups.GroupState.fromJSON(V.states[name]));

describe("groups.json: the membership log", () => {
  test("the chain is reproduced entry by entry", () => {
    assert.equal(hex(groups.newGroupId(p.TestRng(unhex(V.seeds.id)))), V.group_id);
    /** @type {any} */
    let current = null;
    for (const item of V.chain) {
      const wire = groups.signEntry({
        groupId: unhex(V.group_id),
        seq: item.seq,
        previous: current ? current.head : groups.ZERO_HASH,
        kind: groups.EntryKind[item.kind.toUpperCase()],
        actor: item.actor,
        identity: identity(item.signer),
        timestamp: item.timestamp,
        accounts: item.accounts,
        name: item.name,
      });
      assert.equal(hex(wire), item.wire);
      assert.equal(item.wire, item.signed_bytes + item.signature);
      assert.equal(hex(groups.entryHash(wire)), item.hash);
      current = groups.applyEntry(current, wire, { deviceLists: DEVICE_LISTS });
      assert.deepEqual(json(current), item.state);
      assert.deepEqual(json(groups.GroupState.fromJSON(item.state)), item.state);
    }
    const final = groups.verifyChain(CHAIN, { deviceLists: DEVICE_LISTS });
    assert.deepEqual(json(final), V.states.after_6);
    assert.deepEqual([...final.members].sort(), ["alice", "bob"]);
    assert.equal(final.name, "Trip 2027");
    // a held state extended by the entries after it is the whole chain's state
    const held = groups.verifyChain(CHAIN.slice(0, 3), { deviceLists: DEVICE_LISTS });
    assert.deepEqual(json(groups.verifyChain(CHAIN.slice(3), { deviceLists: DEVICE_LISTS, state: held })), json(final));
    assert.deepEqual(json(groups.verifyChain([], { deviceLists: DEVICE_LISTS, state: held })), json(held));
  });

  for (const c of V.refused) {
    test(`refused: ${c.name}`, () => {
      const base = state(c.state);
      assert.equal(errorName(() => groups.applyEntry(base, unhex(c.wire), { deviceLists: DEVICE_LISTS })), c.expected_error);
    });
  }

  test("a group of 256 is accepted", () => {
    const big = groups.verifyChain(V.big_entries.map(unhex), { deviceLists: DEVICE_LISTS });
    assert.equal(big.members.size, 256);
    assert.deepEqual(json(big), V.states.big_1);
  });

  test("heads carried in messages, and a withheld entry", () => {
    const final = /** @type {any} */ (state("after_6"));
    for (const c of V.heads) {
      const fn = () => groups.compareHead(final, c.seq, unhex(c.hash));
      assert.equal(errorName(fn), c.expected_error, c.name);
      if (c.verdict !== null) assert.equal(fn(), c.verdict);
    }
    for (const c of V.check_fetched) {
      assert.equal(errorName(() => groups.checkFetched(final, c.wanted_seq)), c.expected_error);
    }
  });

  for (const c of V.from_scratch) {
    test(`from scratch, after devices left their lists: ${c.name}`, () => {
      const gone = new Set(c.removed_devices.map((/** @type {string} */ d) => hex(identity(d).public)));
      const lists = new Map([...DEVICE_LISTS].map(([a, keys]) => [a, keys.filter((k) => !gone.has(hex(k)))]));
      const entries = CHAIN.slice(0, c.entries);
      assert.equal(errorName(() => groups.verifyChain(entries, { deviceLists: lists })), c.expected_error);
      if (c.expected_state) assert.deepEqual(json(groups.verifyChain(entries, { deviceLists: lists })), c.expected_state);
    });
  }

  test("a new entry by a device removed from its list is refused on a state held", () => {
    const lists = new Map(DEVICE_LISTS);
    lists.set("alice", [identity("a1").public]);
    assert.equal(errorName(() => groups.applyEntry(state("after_0"), CHAIN[1], { deviceLists: lists })), "GroupSignerUnlisted");
  });

  test("the encoder refuses what the decoder refuses", () => {
    const base = { groupId: new Uint8Array(16), seq: 0, previous: groups.ZERO_HASH, actor: "alice", timestamp: 1, identity: identity("a1") };
    const bad = [
      { kind: groups.EntryKind.CREATE, accounts: ["alice", "alice"], name: "dup" },
      { kind: groups.EntryKind.LEAVE, accounts: ["alice"] },
      { kind: groups.EntryKind.ADD, accounts: [] },
      { kind: groups.EntryKind.ADD, accounts: ["bob"], name: "named" },
      { kind: groups.EntryKind.RENAME, name: "x".repeat(257) },
      { kind: groups.EntryKind.ADD, accounts: Array.from({ length: 257 }, (_, i) => `a${i}`) },
      { kind: 99, accounts: ["bob"] },
    ];
    for (const fields of bad) assert.equal(errorName(() => groups.signEntry({ ...base, ...fields })), "MalformedMessage");
  });

  test("random and mutated entries throw only protocol errors", () => {
    const rng = p.TestRng(new Uint8Array(32).fill(9));
    for (let i = 0; i < 300; i++) {
      const index = i % CHAIN.length;
      const wire = CHAIN[index].slice();
      const at = (rng(2)[0] * 256 + rng(1)[0]) % wire.length;
      wire[at] ^= 1 << (rng(1)[0] % 8);
      const base = index === 0 ? null : groups.verifyChain(CHAIN.slice(0, index), { deviceLists: DEVICE_LISTS });
      assert.notEqual(errorName(() => groups.applyEntry(base, wire, { deviceLists: DEVICE_LISTS })), null);
      const random = rng(rng(1)[0]);
      assert.notEqual(errorName(() => groups.decodeEntry(random)), null);
    }
  });
});

describe("groups.json: sender keys", () => {
  test("distribution and messages are reproduced", () => {
    const final = /** @type {any} */ (state("after_6"));
    const rng = p.TestRng(unhex(V.seeds.sender));
    let key = senderkeys.newSenderKey(rng, { groupId: unhex(V.group_id), sender: "alice", device: "a1" });
    assert.deepEqual(json(key), SK.created);
    assert.deepEqual(json(senderkeys.SenderKey.fromJSON(SK.created)), SK.created);
    let plan = senderkeys.prepareSend(key, SK.targets.map(unhex), rng);
    assert.equal(plan.rotated, false);
    assert.deepEqual(plan.distributeTo.map(hex), SK.distribute_to);
    key = plan.key;
    const body = senderkeys.distributionBody(key, { headSeq: 3, headHash: final.hashes[3] });
    assert.deepEqual(body, SK.body);
    const content = p.decodeContent(unhex(SK.content));
    assert.equal(content.type, p.ContentType.GROUP_SENDER_KEY);
    assert.deepEqual(content.body, body);
    rng(16); // new_content's message id
    for (const item of SK.messages) {
      let data;
      [key, data] = senderkeys.encryptGroup(key, unhex(item.plaintext), { headSeq: 3, headHash: final.hashes[3], rng });
      assert.equal(hex(data), item.message);
      assert.equal(senderkeys.decodeGroupMessage(data).iteration, item.iteration);
    }
    assert.deepEqual(json(key), SK.after_sending);
    const rotation = SK.rotation;
    plan = senderkeys.prepareSend(key, rotation.targets.map(unhex), rng);
    assert.equal(plan.rotated, true);
    assert.deepEqual(json(plan.key), rotation.key);
    assert.deepEqual(senderkeys.distributionBody(plan.key, { headSeq: 4, headHash: final.hashes[4] }), rotation.body);
    const [after, data] = senderkeys.encryptGroup(plan.key, unhex(rotation.plaintext), { headSeq: 4, headHash: final.hashes[4], rng });
    assert.equal(hex(data), rotation.message);
    assert.deepEqual(json(after), rotation.key_after);
  });

  test("messages decrypt out of order; replays, tampering and a late device are refused", () => {
    let receiver = senderkeys.receivingKey(SK.body, { sender: "alice", device: "a1" });
    assert.deepEqual(json(receiver), SK.receiver);
    for (const step of SK.decrypt_order) {
      const message = SK.messages[step.iteration];
      let out;
      [receiver, out] = senderkeys.decryptGroup(receiver, unhex(message.message));
      assert.equal(hex(out), message.plaintext);
      assert.deepEqual(json(receiver), step.receiver);
      assert.deepEqual(json(senderkeys.ReceivingKey.fromJSON(step.receiver)), step.receiver);
    }
    const snapshot = json(receiver);
    for (const c of SK.refused) {
      const chain = c.name.startsWith("late") ? senderkeys.receivingKey(SK.late_body, { sender: "alice", device: "a1" }) : receiver;
      assert.equal(errorName(() => senderkeys.decryptGroup(chain, unhex(c.message))), c.expected_error, c.name);
    }
    assert.deepEqual(json(receiver), snapshot);
  });

  test("after rotation the removed device reads nothing and the others read on", () => {
    const rotation = SK.rotation;
    const old = senderkeys.receivingKey(SK.body, { sender: "alice", device: "a1" });
    assert.equal(errorName(() => senderkeys.decryptGroup(old, unhex(rotation.message))), rotation.removed_device_error);
    const bob = senderkeys.receivingKey(rotation.body, { sender: "alice", device: "a1" });
    assert.equal(hex(senderkeys.decryptGroup(bob, unhex(rotation.message))[1]), rotation.plaintext);
  });

  test("skipping more than MAX_SKIP is refused, exactly MAX_SKIP accepted", () => {
    const rng = p.TestRng(new Uint8Array(32).fill(7));
    const key = senderkeys.newSenderKey(rng, { groupId: new Uint8Array(16), sender: "alice", device: "a1" });
    const receiver = senderkeys.receivingKey(senderkeys.distributionBody(key, { headSeq: 0, headHash: new Uint8Array(32) }), {
      sender: "alice",
      device: "a1",
    });
    /** @param {number} n */
    const at = (n) => {
      let chainKey = key.chainKey;
      for (let i = 0; i < n; i++) chainKey = senderkeys.kdfSk(chainKey)[1];
      return new senderkeys.SenderKey({ ...key, chainKey, iteration: n });
    };
    const [, far] = senderkeys.encryptGroup(at(1001), utf8("far"), { headSeq: 0, headHash: new Uint8Array(32), rng });
    assert.equal(errorName(() => senderkeys.decryptGroup(receiver, far)), "TooManySkippedMessages");
    const [, near] = senderkeys.encryptGroup(at(1000), utf8("near"), { headSeq: 0, headHash: new Uint8Array(32), rng });
    const [after, out] = senderkeys.decryptGroup(receiver, near);
    assert.equal(new TextDecoder().decode(out), "near");
    assert.equal(after.skipped.size, 1000);
  });

  test("adding a device distributes the current key without rotating", () => {
    const rng = p.TestRng(new Uint8Array(32).fill(8));
    const key = senderkeys.newSenderKey(rng, { groupId: new Uint8Array(16), sender: "alice", device: "a1" });
    const one = new Uint8Array(32).fill(1);
    const two = new Uint8Array(32).fill(2);
    const first = senderkeys.prepareSend(key, [one], rng);
    const again = senderkeys.prepareSend(first.key, [one, two], rng);
    assert.equal(again.rotated, false);
    assert.deepEqual(again.distributeTo.map(hex), [hex(two)]);
    assert.deepEqual(again.key.keyId, key.keyId);
  });
});

/** @param {string} s */
function utf8(s) {
  return new TextEncoder().encode(s);
}
