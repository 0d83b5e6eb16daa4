// Every shared vector in tests/vectors/*.json, reproduced byte for byte by the JS mirror.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { errorName, hex, p, seed, text, unhex, vector, vectorFiles } from "./support.js";

before(async () => {
  await p.ready();
});

// account_state.json is reproduced by accountstate.test.js, groups.json by groups.test.js,
// attachments.json by attachments.test.js, mlkem.json by mlkem.test.js, pq.json by pq.test.js.
const COVERED = [
  "account_state.json",
  "attachments.json",
  "content.json",
  "device_lists.json",
  "groups.json",
  "history.json",
  "json_decoder.json",
  "kdf.json",
  "keys.json",
  "linking.json",
  "mlkem.json",
  "pq.json",
  "ratchet.json",
  "safety.json",
  "x3dh.json",
];

test("every vector file is covered by this test", () => {
  assert.deepEqual(vectorFiles(), COVERED);
});

describe("kdf.json", () => {
  const v = vector("kdf.json");
  test("enc_str", () => {
    for (const c of v.enc_str) assert.equal(hex(p.encoding.encStr(c.input)), c.output);
  });
  test("KDF and H", () => {
    const out = p.primitives.kdf(unhex(v.kdf.key), v.kdf.label, unhex(v.kdf.data), 64);
    assert.equal(hex(out), v.kdf.out64);
    assert.equal(hex(p.primitives.hash32(v.kdf.label, unhex(v.kdf.data))), v.kdf.hash32_of_data);
  });
  test("KDF_RK and KDF_CK", () => {
    const [rk, ck] = p.kdfRk(unhex(v.kdf_rk.input_root_key), unhex(v.kdf_rk.input_dh));
    assert.equal(hex(rk), v.kdf_rk.root_key);
    assert.equal(hex(ck), v.kdf_rk.chain_key);
    const [mk, next] = p.kdfCk(unhex(v.kdf_ck.input_chain_key));
    assert.equal(hex(mk), v.kdf_ck.message_key);
    assert.equal(hex(next), v.kdf_ck.next_chain_key);
  });
  test("TestRng stream across block boundaries", () => {
    assert.equal(hex(seed(v.test_rng.seed_name)), v.test_rng.seed);
    const rng = p.TestRng(unhex(v.test_rng.seed));
    for (const r of v.test_rng.requests) assert.equal(hex(rng(r.n)), r.output);
  });
});

describe("keys.json", () => {
  const v = vector("keys.json");
  test("generateDeviceKeys draws identity, signed prekey, one-time prekeys in order", () => {
    const keys = p.generateDeviceKeys(p.TestRng(unhex(v.seed)), {
      signedPrekeyId: 7,
      oneTimePrekeyIds: [100, 101],
    });
    assert.equal(hex(keys.identity.secret.subarray(0, 32)), v.identity.seed);
    assert.equal(hex(keys.identity.public), v.identity.ed25519_public);
    assert.equal(hex(keys.identity.secret), v.identity.ed25519_secret);
    assert.equal(hex(keys.identity.x25519Public), v.identity.x25519_public);
    assert.equal(hex(keys.identity.x25519Private), v.identity.x25519_private);
    const spk = keys.signedPrekey;
    assert.equal(spk.id, v.signed_prekey.id);
    assert.equal(hex(spk.key.private), v.signed_prekey.private);
    assert.equal(hex(spk.key.public), v.signed_prekey.public);
    assert.equal(hex(p.signedPrekeyBytes(spk.id, spk.key.public)), v.signed_prekey.signed_bytes);
    assert.equal(hex(spk.signature), v.signed_prekey.signature);
    assert.deepEqual(
      keys.oneTimePrekeys.map((k) => ({
        id: k.id,
        private: hex(k.key.private),
        public: hex(k.key.public),
      })),
      v.one_time_prekeys,
    );
    const bundle = p.makePrekeyBundle("dev-keys", keys, keys.oneTimePrekeys[0]);
    assert.deepEqual(bundle.toJSON(), v.bundle);
    assert.deepEqual(p.PrekeyBundle.fromJSON(v.bundle).toJSON(), v.bundle);
    p.verifyPrekeyBundle(p.PrekeyBundle.fromJSON(v.bundle), {
      listedIdentityKey: keys.identity.public,
    });
    assert.deepEqual(keys.toJSON(), v.device_keys);
    assert.deepEqual(p.DeviceKeys.fromJSON(v.device_keys).toJSON(), v.device_keys);
  });
});

describe("device_lists.json", () => {
  const v = vector("device_lists.json");
  const rng = p.TestRng(unhex(v.keys.seed));
  const [primary, laptop, phone2, intruder] = [0, 1, 2, 3].map(
    () => p.generateDeviceKeys(rng).identity,
  );

  test("keys", () => {
    assert.equal(hex(primary.public), v.keys.primary_public);
    assert.equal(hex(laptop.public), v.keys.laptop_public);
    assert.equal(hex(phone2.public), v.keys.phone2_public);
    assert.equal(hex(intruder.public), v.keys.intruder_public);
  });

  test("canonical bytes, signature and hash of each list", () => {
    for (const item of v.lists) {
      const list = p.DeviceList.fromJSON(item.device_list);
      assert.deepEqual(list.toJSON(), item.device_list);
      assert.equal(hex(p.deviceListBytes(list)), item.canonical_bytes);
      assert.equal(hex(list.signature), item.signature);
      assert.equal(hex(list.hash), item.hash);
      const resigned = p.signDeviceList(primary, {
        accountId: list.accountId,
        version: list.version,
        timestamp: list.timestamp,
        devices: [...list.devices].reverse(),
      });
      assert.deepEqual(resigned.toJSON(), item.device_list);
    }
  });

  test("device and link signatures", () => {
    const accountId = v.account_id;
    assert.equal(
      hex(p.deviceSignatureBytes(accountId, primary.public, laptop.public)),
      v.device_signature.signed_bytes,
    );
    assert.equal(
      hex(p.signDevice(laptop, { accountId, accountKey: primary.public })),
      v.device_signature.signature,
    );
    p.verifyDeviceSignature(unhex(v.device_signature.signature), {
      accountId,
      accountKey: primary.public,
      identityKey: laptop.public,
    });
    const linkId = v.link_signature.link_id;
    assert.equal(
      hex(p.linkSignatureBytes(accountId, laptop.public, linkId)),
      v.link_signature.signed_bytes,
    );
    assert.equal(
      hex(p.signLink(primary, { accountId, companionIdentityKey: laptop.public, linkId })),
      v.link_signature.signature,
    );
  });

  for (const c of v.cases) {
    test(`case ${c.name} → ${c.expected_error ?? "accepted"}`, () => {
      const params = c.params;
      const actual = errorName(() =>
        p.verifyDeviceList(p.DeviceList.fromJSON(c.device_list), {
          expectedAccountKey: params.expected_account_key
            ? unhex(params.expected_account_key)
            : null,
          lastAcceptedVersion: params.last_accepted_version ?? null,
          knownDevices: new Map(
            Object.entries(params.known_devices ?? {}).map(([k, val]) => [k, unhex(val)]),
          ),
        }),
      );
      assert.equal(actual, c.expected_error);
    });
  }
});

describe("x3dh.json", () => {
  const v = vector("x3dh.json");
  for (const c of v.cases) {
    test(`X3DH and first message, one-time prekey: ${c.with_one_time_prekey}`, () => {
      const alice = p.generateDeviceKeys(p.TestRng(unhex(c.alice_keys.seed)));
      const bob = p.generateDeviceKeys(p.TestRng(unhex(c.bob_keys.seed)), {
        signedPrekeyId: 7,
        oneTimePrekeyIds: [100],
      });
      assert.deepEqual(alice.toJSON(), c.alice_keys.device_keys);
      assert.deepEqual(bob.toJSON(), c.bob_keys.device_keys);
      const opk = c.with_one_time_prekey ? bob.oneTimePrekeys[0] : null;
      const bundle = p.makePrekeyBundle("dev-bob", bob, opk);
      assert.deepEqual(bundle.toJSON(), c.bundle);

      const agreement = p.x3dh.initiate({
        identity: alice.identity,
        bundle,
        rng: p.TestRng(unhex(c.session_rng_seed)),
      });
      assert.equal(hex(agreement.baseKey.private), c.ephemeral_private);
      assert.equal(hex(agreement.baseKey.public), c.ephemeral_public);
      assert.deepEqual(agreement.dhOutputs.map(hex), c.dh_outputs);
      assert.equal(hex(agreement.sharedSecret), c.shared_secret);
      assert.equal(hex(agreement.associatedData), c.associated_data);
      const bobSide = p.x3dh.respond({
        identity: bob.identity,
        signedPrekey: bob.signedPrekey.key,
        oneTimePrekey: opk === null ? null : opk.key,
        initiatorIdentityKey: alice.identity.public,
        baseKey: agreement.baseKey.public,
      });
      assert.deepEqual(bobSide.dhOutputs.map(hex), c.dh_outputs);
      assert.equal(hex(bobSide.sharedSecret), c.shared_secret);

      const sessionRng = p.TestRng(unhex(c.session_rng_seed));
      const session = p.Session.initiate({
        identity: alice.identity,
        bundle,
        listedIdentityKey: bob.identity.public,
        rng: sessionRng,
      });
      assert.equal(hex(session.dhSelf.private), c.first_ratchet_private);
      const message = session.encrypt(unhex(c.plaintext), sessionRng);
      assert.equal(hex(message), c.first_message);
      assert.deepEqual(session.toJSON(), c.alice_session_after_first_message);

      const inbound = p.acceptPrekeyMessage(message, {
        identity: bob.identity,
        signedPrekeys: new Map([[7, bob.signedPrekey.key]]),
        oneTimePrekeys: new Map([[100, bob.oneTimePrekeys[0].key]]),
        senderIdentityKey: alice.identity.public,
        usedBaseKeys: [],
        rng: p.TestRng(unhex(c.bob_rng_seed)),
      });
      assert.equal(hex(inbound.plaintext), c.plaintext);
      assert.deepEqual(inbound.session.toJSON(), c.bob_session_after_first_message);
      assert.deepEqual(
        p.Session.fromJSON(c.bob_session_after_first_message).toJSON(),
        c.bob_session_after_first_message,
      );
    });
  }
});

describe("ratchet.json", () => {
  const v = vector("ratchet.json");
  test("conversation with out-of-order delivery, DH ratchet steps and replays", () => {
    const rngs = { alice: p.TestRng(unhex(v.alice_seed)), bob: p.TestRng(unhex(v.bob_seed)) };
    const alice = p.generateDeviceKeys(rngs.alice);
    const bob = p.generateDeviceKeys(rngs.bob, { signedPrekeyId: 1, oneTimePrekeyIds: [1] });
    const sessions = {
      alice: p.Session.initiate({
        identity: alice.identity,
        bundle: p.makePrekeyBundle("dev-bob", bob, bob.oneTimePrekeys[0]),
        listedIdentityKey: bob.identity.public,
        rng: rngs.alice,
      }),
    };
    const messages = {};
    for (const step of v.steps) {
      if (step.op === "encrypt") {
        assert.equal(text(unhex(step.plaintext)), `${step.name}: message from ${step.party}`);
        const message = sessions[step.party].encrypt(unhex(step.plaintext), rngs[step.party]);
        assert.equal(hex(message), step.message, step.name);
        messages[step.name] = message;
      } else if (step.op === "accept_prekey_message") {
        const inbound = p.acceptPrekeyMessage(messages[step.name], {
          identity: bob.identity,
          signedPrekeys: new Map([[1, bob.signedPrekey.key]]),
          oneTimePrekeys: new Map([[1, bob.oneTimePrekeys[0].key]]),
          senderIdentityKey: alice.identity.public,
          usedBaseKeys: [],
          rng: rngs.bob,
        });
        sessions.bob = inbound.session;
        assert.equal(hex(inbound.plaintext), step.plaintext, step.name);
      } else {
        assert.equal(step.op, "decrypt");
        const before = JSON.stringify(sessions[step.party]);
        let plaintext = null;
        const error = errorName(() => {
          plaintext = sessions[step.party].decrypt(messages[step.name], rngs[step.party]);
        });
        assert.equal(error, step.expected_error, step.name);
        assert.equal(plaintext === null ? null : hex(plaintext), step.plaintext, step.name);
        if (error) assert.equal(JSON.stringify(sessions[step.party]), before);
      }
    }
    for (const [party, expected] of Object.entries(v.final_sessions)) {
      assert.deepEqual(sessions[party].toJSON(), expected, party);
      assert.deepEqual(p.Session.fromJSON(expected).toJSON(), expected, party);
    }
  });
});

describe("content.json", () => {
  const v = vector("content.json");
  for (const c of v.cases) {
    test(`content type ${c.type} encodes and decodes exactly`, () => {
      const content = new p.Content({
        type: c.type,
        messageId: unhex(c.message_id),
        timestamp: c.timestamp,
        senderListVersion: c.sender_list_version,
        senderListHash: unhex(c.sender_list_hash),
        body: c.body,
      });
      assert.equal(hex(p.encodeContent(content)), c.encoded);
      const decoded = p.decodeContent(unhex(c.encoded));
      assert.equal(decoded.type, c.type);
      assert.equal(hex(decoded.messageId), c.message_id);
      assert.equal(decoded.timestamp, c.timestamp);
      assert.equal(decoded.senderListVersion, c.sender_list_version);
      assert.equal(hex(decoded.senderListHash), c.sender_list_hash);
      assert.deepEqual(decoded.body, c.body);
    });
  }
  for (const c of v.malformed) {
    test(`malformed content ${c.name} → ${c.expected_error}`, () => {
      assert.equal(
        errorName(() => p.decodeContent(unhex(c.encoded))),
        c.expected_error,
      );
    });
  }
  for (const c of v.unknown_types) {
    test(`content of unknown type ${c.type} decodes, for an unsupported message`, () => {
      const decoded = p.decodeContent(unhex(c.encoded));
      assert.equal(decoded.type, c.type);
      assert.deepEqual(decoded.body, c.body);
      assert.equal(errorName(() => p.encodeContent(decoded)), "MalformedMessage");
    });
  }
});

describe("safety.json", () => {
  const v = vector("safety.json");
  test("fingerprints and the safety number, same from both sides", () => {
    const a = v.alice;
    const b = v.bob;
    assert.equal(p.fingerprint(a.account_id, unhex(a.account_key)), a.fingerprint);
    assert.equal(p.fingerprint(b.account_id, unhex(b.account_key)), b.fingerprint);
    const ab = p.safetyNumber(
      a.account_id,
      unhex(a.account_key),
      b.account_id,
      unhex(b.account_key),
    );
    const ba = p.safetyNumber(
      b.account_id,
      unhex(b.account_key),
      a.account_id,
      unhex(a.account_key),
    );
    assert.equal(ab, v.safety_number);
    assert.equal(ba, v.safety_number);
    assert.equal(p.formatSafetyNumber(ab), v.formatted);
    assert.equal(p.safetyQrPayload(ab), `PARLEY-SN1:${v.safety_number}`);
  });
});

describe("history.json", () => {
  const v = vector("history.json");
  for (const c of v.cases) {
    test(`history bundle ${c.name}`, () => {
      const rng = p.TestRng(unhex(c.seed));
      const plaintext = rng(c.plaintext_length);
      if (c.plaintext !== undefined) assert.equal(hex(plaintext), c.plaintext);
      const sealed = p.sealHistory(plaintext, rng);
      assert.equal(hex(sealed.key), c.key);
      assert.equal(hex(sealed.blob.subarray(0, 24)), c.header);
      assert.equal(hex(sealed.hash), c.hash);
      assert.equal(sealed.length, c.length);
      if (c.blob !== undefined) assert.equal(hex(sealed.blob), c.blob);
      const opened = p.openHistory(sealed.blob, {
        key: unhex(c.key),
        expectedHash: unhex(c.hash),
        expectedLength: c.length,
      });
      assert.deepEqual(opened, plaintext);
    });
  }
});

describe("linking.json", () => {
  const v = vector("linking.json");
  test("challenge, provisioning payload, link token and sign-in signature", () => {
    const rng = p.TestRng(unhex(v.seed));
    const primary = p.generateDeviceKeys(rng).identity;
    const companion = p.generateDeviceKeys(rng).identity;
    const ephemeral = p.X25519KeyPair.generate(rng);
    const serverNonce = rng(32);
    const tokenNonce = rng(32);
    assert.equal(hex(primary.public), v.primary_public);
    assert.equal(hex(companion.public), v.companion_public);
    assert.equal(hex(ephemeral.private), v.ephemeral_private);
    assert.equal(hex(ephemeral.public), v.ephemeral_public);
    assert.equal(hex(serverNonce), v.server_nonce);
    assert.equal(hex(tokenNonce), v.token_nonce);
    const linkId = v.link_id;
    assert.equal(
      hex(
        p.linkChallenge({
          serverNonce,
          linkId,
          companionIdentityKey: companion.public,
          ephemeralKey: ephemeral.public,
        }),
      ),
      v.link_challenge,
    );
    const provisioning = p.makeProvisioning(primary, {
      accountId: "acct-alice",
      companionIdentityKey: companion.public,
      linkId,
    });
    assert.equal(hex(provisioning.linkSignature), v.provisioning_link_signature);
    assert.equal(hex(p.provisioningPayload(provisioning)), v.provisioning_payload);
    const opened = p.openProvisioning(p.sealProvisioning(provisioning, ephemeral.public), {
      ephemeral,
      ownIdentityKey: companion.public,
      linkId,
    });
    assert.deepEqual(opened, provisioning);
    assert.equal(hex(p.linkTokenBytes(tokenNonce, linkId)), v.token_signed_bytes);
    const token = p.signLinkToken(companion, { nonce: tokenNonce, linkId });
    assert.equal(hex(token), v.token_signature);
    p.verifyLinkToken(token, { identityKey: companion.public, nonce: tokenNonce, linkId });
    const s = v.sign_in;
    assert.equal(hex(p.signInBytes(s.origin, s.device_id, unhex(s.nonce))), s.signed_bytes);
    const sig = p.signIn(companion, {
      origin: s.origin,
      deviceId: s.device_id,
      nonce: unhex(s.nonce),
    });
    assert.equal(hex(sig), s.signature);
    p.verifySignIn(sig, {
      identityKey: companion.public,
      origin: s.origin,
      deviceId: s.device_id,
      nonce: unhex(s.nonce),
    });
  });
  test("link check codes", () => {
    const rng = p.TestRng(unhex(v.seed));
    p.generateDeviceKeys(rng);
    p.generateDeviceKeys(rng);
    rng(32 * 3); // ephemeral, server nonce, token nonce
    const keys = new Set([
      v.companion_public,
      v.ephemeral_public,
      hex(p.generateDeviceKeys(rng).identity.public),
      hex(p.X25519KeyPair.generate(rng).public),
    ]);
    assert.ok(v.check_codes.length >= 6);
    for (const c of v.check_codes) {
      assert.ok(keys.has(c.companion_identity_key) && keys.has(c.ephemeral_key));
      const code = p.linkCheckCode({
        linkId: c.link_id,
        companionIdentityKey: unhex(c.companion_identity_key),
        ephemeralKey: unhex(c.ephemeral_key),
      });
      assert.equal(code, c.check_code, JSON.stringify(c));
      assert.match(code, /^[0-9]{6}$/);
    }
  });
});

describe("json_decoder.json", () => {
  const v = vector("json_decoder.json");
  test("the default depth limit is the same", () => {
    assert.equal(p.strictjson.MAX_JSON_DEPTH, v.default_max_depth);
  });
  test("parseJson accepts and refuses exactly as parse_json", () => {
    assert.ok(v.cases.length >= 50);
    for (const c of v.cases) {
      const input = c.hex === undefined ? c.text : unhex(c.hex);
      const limits = { maxBytes: c.max_bytes, maxDepth: c.max_depth };
      let value;
      let reason = null;
      try {
        value = p.strictjson.parseJson(input, limits);
      } catch (error) {
        assert.ok(error instanceof p.InvalidJson, `${c.name}: ${error}`);
        assert.ok(error instanceof p.MalformedMessage && error.message, c.name);
        reason = error.reason;
      }
      assert.equal(reason, c.expected_error, c.name);
      if (c.expected_error === null) assert.deepEqual(value, c.value, c.name);
    }
  });
});
