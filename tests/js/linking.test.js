// Safety numbers (section 11) and linking signatures (section 13), mirroring
// test_safety_and_linking.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { errorName, makeDevice, p } from "./support.js";

const alice = makeDevice("safety alice").keys.identity;
const bob = makeDevice("safety bob").keys.identity;
const mallory = makeDevice("safety mallory").keys.identity;

test("the safety number is symmetric, 60 digits, and changes with a key", () => {
  const number = p.safetyNumber("a", alice.public, "b", bob.public);
  assert.equal(number, p.safetyNumber("b", bob.public, "a", alice.public));
  assert.match(number, /^[0-9]{60}$/);
  assert.notEqual(number, p.safetyNumber("a", alice.public, "b", mallory.public));
  assert.equal(p.formatSafetyNumber(number).split(" ").length, 12);
  assert.equal(p.safetyQrPayload(number), `PARLEY-SN1:${number}`);
});

test("provisioning opens only for its companion key and link id", () => {
  const rng = makeDevice("linking").rng;
  const ephemeral = p.X25519KeyPair.generate(rng);
  const provisioning = p.makeProvisioning(alice, {
    accountId: "acct-a",
    companionIdentityKey: bob.public,
    linkId: "L1",
  });
  const sealed = p.sealProvisioning(provisioning, ephemeral.public);
  const open = (options) =>
    p.openProvisioning(sealed, { ephemeral, ownIdentityKey: bob.public, linkId: "L1", ...options });
  assert.deepEqual(open({}), provisioning);
  assert.equal(
    errorName(() => open({ ownIdentityKey: mallory.public })),
    "InvalidSignature",
  );
  assert.equal(
    errorName(() => open({ linkId: "L2" })),
    "MalformedMessage",
  );
  assert.equal(
    errorName(() => open({ ephemeral: p.X25519KeyPair.generate(rng) })),
    "DecryptionFailed",
  );
});

test("link token and sign-in signatures bind their fields", () => {
  const nonce = Uint8Array.from({ length: 32 }, (_, i) => i);
  const token = p.signLinkToken(bob, { nonce, linkId: "L1" });
  p.verifyLinkToken(token, { identityKey: bob.public, nonce, linkId: "L1" });
  assert.equal(
    errorName(() => p.verifyLinkToken(token, { identityKey: bob.public, nonce, linkId: "L2" })),
    "InvalidSignature",
  );
  const sig = p.signIn(bob, { origin: "https://p.example", deviceId: "d1", nonce });
  p.verifySignIn(sig, {
    identityKey: bob.public,
    origin: "https://p.example",
    deviceId: "d1",
    nonce,
  });
  assert.equal(
    errorName(() =>
      p.verifySignIn(sig, {
        identityKey: bob.public,
        origin: "https://evil.example",
        deviceId: "d1",
        nonce,
      }),
    ),
    "InvalidSignature",
  );
  assert.equal(
    errorName(() => p.signIn(bob, { origin: "o", deviceId: "d", nonce: new Uint8Array(31) })),
    "InvalidKey",
  );
});

test("every error has the class name and code of section 15", () => {
  const codes = {
    MalformedMessage: "malformed_message",
    MalformedDeviceList: "malformed_device_list",
    InvalidKey: "invalid_key",
    InvalidSignature: "invalid_signature",
    AccountKeyChanged: "account_key_changed",
    MissingDeviceSignature: "missing_device_signature",
    StaleDeviceList: "stale_device_list",
    DeviceKeyChanged: "device_key_changed",
    UntrustedIdentity: "untrusted_identity",
    UnknownPrekey: "unknown_prekey",
    UnknownSession: "unknown_session",
    ReplayDetected: "replay_detected",
    TooManySkippedMessages: "too_many_skipped_messages",
    DecryptionFailed: "decryption_failed",
    HistoryBundleMismatch: "history_bundle_mismatch",
  };
  for (const [name, code] of Object.entries(codes)) {
    const error = new p[name]("x");
    assert.ok(error instanceof p.ProtocolError && error instanceof Error);
    assert.equal(error.name, name);
    assert.equal(error.code, code);
    assert.equal(p[name].code, code);
  }
});

test("the link check code is six digits, as protocol/linking.py computes it", () => {
  const range = (a, b) => Uint8Array.from({ length: b - a }, (_, i) => a + i);
  // Expected values from protocol.linking.link_check_code with the same inputs.
  assert.equal(
    p.linkCheckCode({
      linkId: "link-0001",
      companionIdentityKey: range(0, 32),
      ephemeralKey: range(32, 64),
    }),
    "486641",
  );
  assert.equal(
    p.linkCheckCode({
      linkId: "é",
      companionIdentityKey: new Uint8Array(32).fill(255),
      ephemeralKey: new Uint8Array(32),
    }),
    "950751",
  );
});

function sealedForBob() {
  const rng = makeDevice("linking sealed").rng;
  const ephemeral = p.X25519KeyPair.generate(rng);
  const provisioning = p.makeProvisioning(alice, {
    accountId: "acct-a",
    companionIdentityKey: bob.public,
    linkId: "L1",
  });
  return { sealed: p.sealProvisioning(provisioning, ephemeral.public), ephemeral, rng };
}

/** @param {Uint8Array} data @param {number} index @param {number} mask */
function xorAt(data, index, mask) {
  const out = data.slice();
  out[index < 0 ? out.length + index : index] ^= mask;
  return out;
}

for (const [name, tamper] of [
  ["another ephemeral key", (s, e, rng) => [s, p.X25519KeyPair.generate(rng)]],
  ["truncated", (s, e) => [s.slice(0, -1), e]],
  ["shorter than a sealed box", (s, e) => [s.slice(0, 47), e]],
  ["empty", (s, e) => [new Uint8Array(0), e]],
  ["extended", (s, e) => [p.encoding.concatBytes(s, new Uint8Array(1)), e]],
  ["its public key changed", (s, e) => [xorAt(s, 0, 1), e]],
  ["a ciphertext byte changed", (s, e) => [xorAt(s, 60, 1), e]],
  ["the tag changed", (s, e) => [xorAt(s, -1, 0x80), e]],
]) {
  test(`a provisioning box that cannot be opened is DecryptionFailed: ${name}`, () => {
    const { sealed, ephemeral, rng } = sealedForBob();
    const [data, key] = tamper(sealed, ephemeral, rng);
    assert.equal(
      errorName(() =>
        p.openProvisioning(data, { ephemeral: key, ownIdentityKey: bob.public, linkId: "L1" }),
      ),
      "DecryptionFailed",
    );
  });
}

for (const [name, companionKey, ephemeralKey] of [
  ["31-byte companion key", new Uint8Array(31), new Uint8Array(32)],
  ["33-byte ephemeral key", new Uint8Array(32), new Uint8Array(33)],
  ["companion key as text", "k".repeat(32), new Uint8Array(32)],
  ["no ephemeral key", new Uint8Array(32), null],
]) {
  test(`link check code and challenge refuse keys of the wrong size: ${name}`, () => {
    const options = { linkId: "L1", companionIdentityKey: companionKey, ephemeralKey };
    assert.equal(
      errorName(() => p.linkCheckCode(options)),
      "InvalidKey",
    );
    assert.equal(
      errorName(() => p.linkChallenge({ ...options, serverNonce: new Uint8Array(32) })),
      "InvalidKey",
    );
  });
}

for (const linkId of ["L\ud800", null, "x".repeat(65536)]) {
  test(`the link check code refuses a link id without UTF-8: ${String(linkId).slice(0, 8)}`, () => {
    assert.equal(
      errorName(() =>
        p.linkCheckCode({ linkId, companionIdentityKey: bob.public, ephemeralKey: bob.public }),
      ),
      "MalformedMessage",
    );
  });
}
