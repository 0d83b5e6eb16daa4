// Account state sync (section 23), mirroring tests/protocol/test_account_state.py: every value
// of account_state.json reproduced by the JS mirror, and the rules a device relies on.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { hex, p, unhex, vector } from "./support.js";

const V = vector("account_state.json");
const T0 = 1_700_000_000_000;

/** @param {string} name */
const key = (name) => {
  const k = V.keys[name];
  return new p.SyncKey({ keyId: unhex(k.key_id), key: unhex(k.key), sinceVersion: k.since_version });
};
const mutation = (d) => new p.Mutation(d.collection, d.index, d.value, d.timestamp, d.device);
const state = (name) => p.AccountState.fromJSON(V.states[name]);
const json = (value) => JSON.parse(JSON.stringify(value));

/** [class name, message] of the ProtocolError fn throws, or [null, null]. */
function errorOf(fn) {
  try {
    fn();
  } catch (error) {
    if (error instanceof p.ProtocolError) return [error.name, error.message];
    throw error;
  }
  return [null, null];
}

describe("account_state.json", () => {
  test("keys and sub-keys", () => {
    const rng = p.TestRng(unhex(V.seeds.keys));
    for (const [name, since] of [["k1", 1], ["k2", 6]]) {
      const k = p.newSyncKey(rng, { sinceVersion: since });
      assert.deepEqual(k, key(name));
      const sub = p.syncSubkeys(k);
      const expected = V.keys[name].subkeys;
      assert.deepEqual(
        [sub.index, sub.value, sub.valueMac, sub.entry].map(hex),
        [expected.index, expected.value, expected.value_mac, expected.entry],
      );
    }
  });

  test("index MACs", () => {
    for (const c of V.index_macs) {
      assert.equal(hex(p.indexMac(p.syncSubkeys(key(c.key)), c.collection, c.index)), c.index_mac);
    }
  });

  test("sealed records and value MACs", () => {
    const rng = p.TestRng(unhex(V.seeds.records));
    for (const c of V.records) {
      const sub = p.syncSubkeys(key(c.key));
      const m = mutation(c.mutation);
      assert.equal(hex(p.encodeMutation(m)), c.plaintext);
      const [sealed, vm] = p.sealRecord(sub, m, rng);
      assert.equal(hex(sealed.indexMac), c.index_mac);
      assert.equal(hex(sealed.nonce), c.nonce);
      assert.equal(hex(sealed.ciphertext), c.ciphertext);
      assert.equal(hex(sealed.encode()), c.encoded);
      assert.equal(hex(vm), c.value_mac);
      const [opened, openedMac] = p.openRecord(sub, sealed);
      assert.deepEqual(opened, m);
      assert.equal(hex(openedMac), c.value_mac);
    }
  });

  test("state hash: add and remove", () => {
    const v = V.state_hash;
    const macs = v.value_macs.map(unhex);
    assert.equal(hex(p.stateHash(p.EMPTY_LTHASH)), v.empty_state_hash);
    assert.equal(hex(p.primitives.keystream(macs[0], p.LTHASH_BYTES)), v.element_0);
    const added = p.lthashUpdate(p.EMPTY_LTHASH, { add: macs });
    assert.equal(hex(added), v.lthash_add_all);
    assert.equal(hex(p.stateHash(added)), v.state_hash_add_all);
    const removed = p.lthashUpdate(added, { remove: [macs[1]] });
    assert.equal(hex(removed), v.lthash_remove_1);
    assert.equal(hex(p.stateHash(removed)), v.state_hash_remove_1);
  });

  test("the log is rebuilt byte for byte", () => {
    const [k1, k2] = [key("k1"), key("k2")];
    const muts = (name) => V.log[name].mutations.map(mutation);
    let rng = p.TestRng(unhex(V.seeds.log));
    const out = {};
    out.e1 = p.buildPatch(new p.AccountState(), muts("e1"), { version: 1, key: k1, rng });
    out.e2 = p.buildPatch(out.e1.state, muts("e2"), { version: 2, key: k1, rng });
    out.e3 = p.buildPatch(out.e2.state, muts("e3"), { version: 3, key: k1, rng });
    out.e4 = p.buildSnapshot(out.e3.state, { version: 4, key: k1, rng });
    out.e5 = p.buildPatch(out.e4.state, muts("e5"), { version: 5, key: k1, rng });
    rng = p.TestRng(unhex(V.seeds.rotation));
    out.e6 = p.buildSnapshot(out.e5.state, { version: 6, key: k2, rng });
    out.e7 = p.buildPatch(out.e6.state, muts("e7"), { version: 7, key: k2, rng });
    const e5 = out.e5.state;
    const removed = new p.AccountState({
      version: 6,
      chain: out.e6.blob.slice(-32),
      lthash: e5.lthash,
      records: e5.records,
    });
    out.r7 = p.buildPatch(removed, muts("r7"), { version: 7, key: k1, rng });
    rng = p.TestRng(unhex(V.seeds.fork));
    out.f3 = p.buildPatch(out.e2.state, muts("f3"), { version: 3, key: k1, rng });
    out.f4 = p.buildPatch(out.f3.state, muts("f4"), { version: 4, key: k1, rng });
    for (const [name, written] of Object.entries(out)) {
      const expected = V.log[name];
      assert.equal(written.kind, expected.kind, name);
      assert.equal(written.version, expected.version, name);
      assert.equal(hex(written.blob), expected.blob, name);
      assert.equal(hex(written.state.hash), expected.state_hash, name);
      assert.deepEqual(json(written.state), expected.state, name);
    }
  });

  for (const c of V.apply) {
    test(`apply: ${c.name}`, () => {
      const keys = c.keys.map(key);
      const start = state(c.state);
      const entries = c.entries.map(([version, name]) => [version, unhex(V.blobs[name])]);
      if (c.error === null) {
        assert.deepEqual(json(p.applyEntries(start, entries, { keys })), c.state_after);
      } else {
        assert.deepEqual(errorOf(() => p.applyEntries(start, entries, { keys })), [c.error, c.message]);
        assert.deepEqual(json(start), V.states[c.state]);
      }
    });
  }

  for (const c of V.check_fetched) {
    test(`check fetched: ${c.name}`, () => {
      const checkpoint = c.checkpoint && new p.Checkpoint(c.checkpoint.version, unhex(c.checkpoint.chain));
      const got = errorOf(() =>
        p.checkFetched(state(c.state), { serverVersion: c.server_version, keys: c.keys.map(key), checkpoint }),
      );
      assert.deepEqual(got, [c.error, c.message ?? null]);
    });
  }

  for (const c of V.compare_checkpoint) {
    test(`compare checkpoint: ${c.name}`, () => {
      const point = new p.Checkpoint(c.checkpoint.version, unhex(c.checkpoint.chain));
      if (c.error) {
        assert.deepEqual(errorOf(() => p.compareCheckpoint(state(c.state), point)), [c.error, c.message]);
      } else {
        assert.equal(p.compareCheckpoint(state(c.state), point), c.verdict);
      }
    });
  }

  test("malformed entries and mutations are refused", () => {
    for (const c of V.malformed_entries) {
      assert.equal(errorOf(() => p.decodeEntry(unhex(c.blob)))[0], c.error, c.name);
      const apply = () => p.applyEntry(state("v2"), unhex(c.blob), { version: 3, keys: [key("k1")] });
      assert.equal(errorOf(apply)[0], c.error, c.name);
    }
    for (const c of V.malformed_mutations) {
      assert.equal(errorOf(() => p.decodeMutation(unhex(c.plaintext)))[0], c.error, c.name);
    }
  });

  test("sync key and checkpoint contents", () => {
    for (const c of V.contents) {
      const content = new p.Content({
        type: c.type,
        messageId: unhex(c.message_id),
        timestamp: c.timestamp,
        senderListVersion: c.sender_list_version,
        senderListHash: unhex(c.sender_list_hash),
        body: c.body,
      });
      assert.equal(hex(p.encodeContent(content)), c.encoded);
      assert.deepEqual(p.decodeContent(unhex(c.encoded)).body, c.body);
    }
  });
});

describe("rules", () => {
  const K1 = new p.SyncKey({
    keyId: Uint8Array.from({ length: 16 }, (_, i) => i),
    key: Uint8Array.from({ length: 32 }, (_, i) => i),
    sinceVersion: 1,
  });
  const m = (index, value, at, device = "dev-a") =>
    new p.Mutation("contacts", ["contact", index], value, T0 + at, device);
  const written = (s, ...mutations) => {
    const entry = p.buildPatch(s, mutations, { version: s.version + 1, key: K1, rng: p.TestRng(new Uint8Array(32)) });
    const applied = p.applyEntry(s, entry.blob, { version: entry.version, keys: [K1] });
    assert.deepEqual(json(applied), json(entry.state));
    return applied;
  };

  test("last writer wins by timestamp then device id; a late older write loses", () => {
    let s = written(new p.AccountState(), m("bob", { n: "first" }, 100, "dev-b"));
    s = written(s, m("bob", { n: "older" }, 50, "dev-z"));
    assert.deepEqual(s.get("contacts", ["contact", "bob"]), { n: "first" });
    s = written(s, m("bob", { n: "same ms, lower id" }, 100, "dev-a"));
    assert.deepEqual(s.get("contacts", ["contact", "bob"]), { n: "first" });
    s = written(s, m("bob", { n: "same ms, higher id" }, 100, "dev-c"));
    assert.deepEqual(s.get("contacts", ["contact", "bob"]), { n: "same ms, higher id" });
    s = written(s, m("bob", { n: "later in the log" }, 100, "dev-c"));
    assert.deepEqual(s.get("contacts", ["contact", "bob"]), { n: "later in the log" });
  });

  test("device ids compare as UTF-8 bytes, not UTF-16 units", () => {
    const s = written(new p.AccountState(), new p.Mutation("contacts", ["contact", "x"], {}, T0, "\u{1f600}"));
    const record = [...s.records.values()][0];
    assert.equal(p.supersedes(new p.Mutation("contacts", ["contact", "x"], {}, T0, "\uff5e"), record), false);
  });

  test("a removal is a tombstone an older add cannot undo", () => {
    let s = written(new p.AccountState(), m("carol", { n: "Carol" }, 100));
    s = written(s, m("carol", null, 200));
    assert.equal(s.get("contacts", ["contact", "carol"]), null);
    assert.deepEqual(s.collection("contacts"), []);
    s = written(s, m("carol", { n: "stale add" }, 150));
    assert.equal(s.get("contacts", ["contact", "carol"]), null);
    s = written(s, m("carol", { n: "re-added" }, 300));
    assert.deepEqual(s.collection("contacts"), [[["contact", "carol"], { n: "re-added" }]]);
  });

  test("the removed device cannot read anything written after the rotation", () => {
    const old = p.syncSubkeys(key("k1"));
    for (const name of ["e6", "e7"]) {
      const blob = unhex(V.blobs[name]);
      const entry = p.decodeEntry(blob);
      for (const record of entry.records) {
        assert.equal(errorOf(() => p.openRecord(old, record))[0], "SyncEntryForged");
      }
      const apply = () => p.applyEntry(state("v5"), blob, { version: entry.version, keys: [key("k1")] });
      assert.equal(errorOf(apply)[0], "SyncKeyUnknown");
    }
  });

  test("every change to a valid entry is refused", () => {
    const blob = unhex(V.blobs.e3);
    const start = state("v2");
    for (let i = 0; i < blob.length; i++) {
      const tampered = blob.slice();
      tampered[i] ^= 0x40;
      const [name] = errorOf(() => p.applyEntry(start, tampered, { version: 3, keys: [key("k1")] }));
      assert.ok(name === "MalformedMessage" || name?.startsWith("Sync"), `byte ${i}: ${name}`);
    }
  });

  test("the state round-trips through JSON", () => {
    const s = state("v5");
    assert.deepEqual(json(p.AccountState.fromJSON(json(s))), json(s));
  });
});
