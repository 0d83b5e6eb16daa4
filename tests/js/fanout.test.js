// Fan-out of one content to many devices (section 9), mirroring test_fanout.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { accept, errorName, makeDevice, p, startSession, text, utf8 } from "./support.js";

test("fan-out to nine devices, each decryptable only by its device", () => {
  const sender = makeDevice("fanout sender");
  const receivers = new Map();
  for (let i = 0; i < 9; i++) receivers.set(`dev-${i}`, makeDevice(`fanout receiver ${i}`));
  const ours = new Map();
  const theirs = new Map();
  for (const [deviceId, device] of receivers) {
    ours.set(deviceId, startSession(sender, device));
    theirs.set(
      deviceId,
      accept(device, sender, ours.get(deviceId).encrypt(utf8("setup"), sender.rng))[0],
    );
    ours.get(deviceId).decrypt(theirs.get(deviceId).encrypt(utf8("ack"), device.rng), sender.rng);
  }

  const ciphertexts = p.encryptForDevices(utf8("one message"), ours, sender.rng);

  assert.deepEqual([...ciphertexts.keys()], [...receivers.keys()].sort());
  assert.equal(new Set([...ciphertexts.values()].map(p.encoding.toHex)).size, 9);
  for (const [deviceId, device] of receivers) {
    assert.equal(
      text(theirs.get(deviceId).decrypt(ciphertexts.get(deviceId), device.rng)),
      "one message",
    );
    for (const [otherId, other] of receivers) {
      if (otherId === deviceId) continue;
      const error = errorName(() =>
        theirs.get(otherId).decrypt(ciphertexts.get(deviceId), other.rng),
      );
      assert.ok(["DecryptionFailed", "UnknownSession"].includes(error), error);
    }
  }
});

test("fan-out order is by UTF-8 bytes of the device id, for a plain object too", () => {
  const sender = makeDevice("fanout order");
  const ids = ["dev-b", "dev-\u{1F600}", "dev-a", "dev-\uFF5E", "10", "9"];
  const sessions = {};
  for (const id of ids) sessions[id] = startSession(sender, makeDevice(`order ${id}`));
  const out = p.encryptForDevices(utf8("x"), sessions, sender.rng);
  assert.deepEqual([...out.keys()], ["10", "9", "dev-a", "dev-b", "dev-\uFF5E", "dev-\u{1F600}"]);
});

for (const badId of ["dev-\ud800", "\udfff"]) {
  test(`a device id without UTF-8 is refused, nothing encrypted: ${JSON.stringify(badId)}`, () => {
    const sender = makeDevice("fanout bad sender");
    const session = startSession(sender, makeDevice("fanout bad receiver"));
    const before = JSON.stringify(session.toJSON());
    const sessions = { [badId]: session, "dev-ok": session };
    assert.equal(
      errorName(() => p.encryptForDevices(utf8("x"), sessions, sender.rng)),
      "MalformedMessage",
    );
    assert.equal(JSON.stringify(session.toJSON()), before);
  });
}
