// The browser messenger's session logic (static/js/app/sessions.js, docs/protocol.md 7.1):
// which session decrypts, what must be remembered, and what is refused.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  decryptFrom,
  retryRequestReuses,
  sessionForSending,
  sessionFromSignedPrekey,
} from "../../static/js/app/sessions.js";
import { makeDevice, p, startSession, text, utf8 } from "./support.js";

const { b64uEncode } = p.encoding;

/** Bob's side of decryptFrom for a message from Alice. */
function receive(bob, alice, data, record, { baseKeyUsed = false } = {}) {
  return decryptFrom({
    data,
    accountId: "alice",
    deviceId: "alice-phone",
    listedKey: alice.keys.identity.public,
    record,
    keys: bob.keys,
    baseKeyUsed,
  });
}

/** A new session of Alice's with Bob, on his `index`-th one-time prekey (she starts over). */
function startOver(alice, bob, index) {
  return p.Session.initiate({
    identity: alice.keys.identity,
    bundle: p.makePrekeyBundle("bob", bob.keys, bob.keys.oneTimePrekeys[index]),
    listedIdentityKey: bob.keys.identity.public,
    rng: alice.rng,
  });
}

test("a prekey message starts a session and names the base key and one-time prekey to consume", () => {
  const alice = makeDevice("app alice");
  const bob = makeDevice("app bob");
  const a = startSession(alice, bob);
  const first = a.encrypt(utf8("hello"), alice.rng);
  const got = receive(bob, alice, first, undefined);
  assert.equal(text(got.plaintext), "hello");
  assert.equal(got.baseKey, b64uEncode(a.baseKey));
  assert.equal(got.oneTimePrekeyId, bob.keys.oneTimePrekeys[0].id);
  assert.deepEqual(got.record.archived, []);

  // Alice has not heard back: her next prekey message goes through the stored session,
  // and consumes nothing more.
  const second = a.encrypt(utf8("again"), alice.rng);
  const again = receive(bob, alice, second, got.record, { baseKeyUsed: true });
  assert.equal(text(again.plaintext), "again");
  assert.equal(again.baseKey, null);
  assert.equal(again.oneTimePrekeyId, null);
});

test("a prekey message again is a replay while its session is held, a lost session once it is gone", () => {
  const alice = makeDevice("app replay alice");
  const bob = makeDevice("app replay bob");
  const first = startSession(alice, bob).encrypt(utf8("hello"), alice.rng);
  const got = receive(bob, alice, first, undefined);
  assert.throws(() => receive(bob, alice, first, got.record, { baseKeyUsed: true }), p.ReplayDetected);
  // storage cleared for that contact: asked for again (docs/protocol.md 24.1), not dropped
  assert.throws(() => receive(bob, alice, first, undefined, { baseKeyUsed: true }), p.UnknownSession);
});

test("a replayed ratchet message is refused by the stored session", () => {
  const alice = makeDevice("app ratchet alice");
  const bob = makeDevice("app ratchet bob");
  const a = startSession(alice, bob);
  let record = receive(bob, alice, a.encrypt(utf8("hello"), alice.rng), undefined).record;
  const b = p.Session.fromJSON(record.current);
  a.decrypt(b.encrypt(utf8("hi"), bob.rng), alice.rng);
  record = { ...record, current: b.toJSON() };
  const message = a.encrypt(utf8("ratchet"), alice.rng);
  const got = receive(bob, alice, message, record);
  assert.equal(text(got.plaintext), "ratchet");
  assert.throws(() => receive(bob, alice, message, got.record), p.ReplayDetected);
});

test("a message for the previous session is decrypted with it, which becomes current", () => {
  const alice = makeDevice("app previous alice", { oneTimePrekeyIds: [1, 2] });
  const bob = makeDevice("app previous bob", { oneTimePrekeyIds: [1, 2] });
  const a = startSession(alice, bob);
  const old = receive(bob, alice, a.encrypt(utf8("one"), alice.rng), undefined).record;
  // Alice starts over (a second session, say from a restored device); Bob keeps both.
  const a2 = startOver(alice, bob, 1);
  const fresh = receive(bob, alice, a2.encrypt(utf8("two"), alice.rng), old).record;
  assert.deepEqual(fresh.archived, [old.current]);
  // A late message of the first session still decrypts, through the archived one.
  const late = receive(bob, alice, a.encrypt(utf8("late"), alice.rng), fresh);
  assert.equal(text(late.plaintext), "late");
});

test("the ten newest replaced sessions are kept and tried; the one that decrypts becomes current", () => {
  const count = p.ARCHIVED_SESSIONS + 2;
  const ids = Array.from({ length: count }, (_, i) => i + 1);
  const alice = makeDevice("app archive alice", { oneTimePrekeyIds: ids });
  const bob = makeDevice("app archive bob", { oneTimePrekeyIds: ids });
  // Alice starts over `count` times (retry requests, a restored copy); Bob gets each first message.
  const sessions = [];
  let record;
  for (let i = 0; i < count; i++) {
    const session = startOver(alice, bob, i);
    record = receive(bob, alice, session.encrypt(utf8(`start ${i}`), alice.rng), record).record;
    sessions.push(session);
  }
  assert.equal(record.archived.length, p.ARCHIVED_SESSIONS);
  // the oldest kept: ten sessions back from the current one
  const oldestKept = sessions[count - 1 - p.ARCHIVED_SESSIONS];
  const late = receive(bob, alice, oldestKept.encrypt(utf8("late"), alice.rng), record, { baseKeyUsed: true });
  assert.equal(text(late.plaintext), "late");
  // it is current now: its next message decrypts with no archive to try
  const next = oldestKept.encrypt(utf8("again"), alice.rng);
  const again = receive(bob, alice, next, { ...late.record, archived: [] }, { baseKeyUsed: true });
  assert.equal(text(again.plaintext), "again");
  assert.equal(late.record.archived.length, p.ARCHIVED_SESSIONS);
  assert.deepEqual(late.record.archived[0], record.current);
  // the one before it was dropped: its message is asked for again (24.1)
  assert.throws(
    () => receive(bob, alice, sessions[0].encrypt(utf8("too late"), alice.rng), record, { baseKeyUsed: true }),
    p.UnknownSession,
  );
});

test("a record stored before the archive (one previous session) still decrypts through it", () => {
  const alice = makeDevice("app legacy alice", { oneTimePrekeyIds: [1, 2] });
  const bob = makeDevice("app legacy bob", { oneTimePrekeyIds: [1, 2] });
  const a = startSession(alice, bob);
  const old = receive(bob, alice, a.encrypt(utf8("one"), alice.rng), undefined).record;
  const a2 = startOver(alice, bob, 1);
  const now = receive(bob, alice, a2.encrypt(utf8("two"), alice.rng), old).record;
  const legacy = { deviceId: now.deviceId, accountId: now.accountId, current: now.current, previous: old.current };
  const late = receive(bob, alice, a.encrypt(utf8("late"), alice.rng), legacy);
  assert.equal(text(late.plaintext), "late");
  assert.deepEqual(late.record.archived, [now.current]);
});

test("a stored session whose key differs from the signed list is refused", () => {
  const alice = makeDevice("app identity alice");
  const bob = makeDevice("app identity bob");
  const mallory = makeDevice("app identity mallory");
  const a = startSession(alice, bob);
  const { record } = receive(bob, alice, a.encrypt(utf8("hello"), alice.rng), undefined);
  assert.throws(
    () =>
      decryptFrom({
        data: a.encrypt(utf8("x"), alice.rng),
        accountId: "alice",
        deviceId: "alice-phone",
        listedKey: mallory.keys.identity.public,
        record,
        keys: bob.keys,
        baseKeyUsed: false,
      }),
    p.UntrustedIdentity,
  );
  assert.throws(
    () => sessionForSending({ record, listedKey: mallory.keys.identity.public, bundle: null, keys: bob.keys }),
    p.UntrustedIdentity,
  );
});

test("a bundle is checked against the key in the signed list, not the one beside it", () => {
  const alice = makeDevice("app bundle alice");
  const bob = makeDevice("app bundle bob");
  const mallory = makeDevice("app bundle mallory");
  const forged = p.makePrekeyBundle("bob", mallory.keys, mallory.keys.oneTimePrekeys[0]);
  assert.throws(
    () =>
      sessionForSending({
        record: undefined,
        listedKey: bob.keys.identity.public,
        bundle: forged,
        keys: alice.keys,
      }),
    p.ProtocolError,
  );
  assert.equal(
    sessionForSending({ record: undefined, listedKey: bob.keys.identity.public, bundle: null, keys: alice.keys }),
    null,
  );
});

/** A session record holding `session` as the current one. */
const recordOf = (session) => ({ deviceId: "bob-phone", accountId: "bob", current: session.toJSON(), archived: [] });

test("a retry request reuses only a session this device started and has not heard back on, on the first ask", () => {
  const alice = makeDevice("app retry alice");
  const bob = makeDevice("app retry bob");
  const a = startSession(alice, bob);
  const listed = bob.keys.identity.public;
  const entry = { identityKey: listed, speaksV2: false };
  assert.equal(retryRequestReuses(recordOf(a), entry, 1), true);
  assert.equal(retryRequestReuses(recordOf(a), entry, 2), false); // from the second ask: a new session
  assert.equal(retryRequestReuses(undefined, entry, 1), false);
  // a version-1 session with a device that lists version 2 is not reused (27.5)
  assert.equal(retryRequestReuses(recordOf(a), { identityKey: listed, speaksV2: true }, 1), false);
  // once Alice heard back, her sending chain may be stale (a restored copy): a new session
  const got = receive(bob, alice, a.encrypt(utf8("hello"), alice.rng), undefined);
  a.decrypt(p.Session.fromJSON(got.record.current).encrypt(utf8("hi"), bob.rng), alice.rng);
  assert.equal(retryRequestReuses(recordOf(a), entry, 1), false);
  // a fresh session is made even when one is stored
  const fresh = sessionForSending({
    record: recordOf(a),
    listedKey: listed,
    bundle: p.makePrekeyBundle("bob", bob.keys, null),
    keys: alice.keys,
    fresh: true,
  });
  assert.notDeepEqual(fresh.baseKey, a.baseKey);
});

test("a resend's new session comes from the request's signed prekey, checked under the listed key", () => {
  const alice = makeDevice("app resend alice");
  const bob = makeDevice("app resend bob");
  const mallory = makeDevice("app resend mallory");
  const spk = bob.keys.signedPrekey;
  const signedPrekey = {
    id: spk.id,
    public_key: b64uEncode(spk.key.public),
    signature: b64uEncode(spk.signature),
  };
  const entryOf = (/** @type {Uint8Array} */ identityKey, speaksV2 = false) =>
    new p.DeviceEntry({ deviceId: "bob-phone", identityKey, addedAt: 1, protocols: speaksV2 ? [1, 2] : [1] });
  const session = sessionFromSignedPrekey({ entry: entryOf(bob.keys.identity.public), signedPrekey, keys: alice.keys });
  // Bob opens it with his signed prekey alone (no one-time prekey was used)
  const got = receive(bob, alice, session.encrypt(utf8("again"), alice.rng), undefined);
  assert.equal(got.oneTimePrekeyId, null);
  assert.throws(
    () => sessionFromSignedPrekey({ entry: entryOf(mallory.keys.identity.public), signedPrekey, keys: alice.keys }),
    p.InvalidSignature,
  );
  // version 2 (27.5): with the request's KEM prekey the new session is version 2; a device that
  // lists version 2 and sent none is a downgrade
  const kem = p.generateKemPrekey(bob.keys.identity, 1, bob.rng, { lastResort: true });
  const v2 = sessionFromSignedPrekey({
    entry: entryOf(bob.keys.identity.public, true),
    signedPrekey,
    kemPrekey: kem.toPublic().toJSON(),
    keys: alice.keys,
  });
  assert.equal(v2.version, 2);
  assert.throws(
    () => sessionFromSignedPrekey({ entry: entryOf(bob.keys.identity.public, true), signedPrekey, keys: alice.keys }),
    p.DowngradeRefused,
  );
});

test("a version-1 session with a device that lists version 2 is replaced by a version-2 one", () => {
  const alice = makeDevice("app upgrade alice");
  const bob = makeDevice("app upgrade bob");
  const old = startSession(alice, bob);
  assert.equal(old.version, 1);
  const listed = bob.keys.identity.public;
  const kem = p.generateKemPrekey(bob.keys.identity, 1, bob.rng);
  const bundle = p.makePrekeyBundle("bob", bob.keys, null, kem);
  // listed as version 1 only: the stored session goes on
  const kept = sessionForSending({ record: recordOf(old), listedKey: listed, bundle, keys: alice.keys });
  assert.deepEqual(kept?.toJSON(), old.toJSON());
  const upgraded = sessionForSending({ record: recordOf(old), listedKey: listed, speaksV2: true, bundle, keys: alice.keys });
  assert.ok(upgraded && upgraded.version === 2);
  // no bundle to make it from: nothing to send with, rather than the old session
  assert.equal(sessionForSending({ record: recordOf(old), listedKey: listed, speaksV2: true, bundle: null, keys: alice.keys }), null);
  // a bundle stripped of its KEM prekey for a device that lists version 2: refused
  assert.throws(
    () =>
      sessionForSending({
        record: undefined,
        listedKey: listed,
        speaksV2: true,
        bundle: p.makePrekeyBundle("bob", bob.keys, null),
        keys: alice.keys,
      }),
    p.DowngradeRefused,
  );
});
