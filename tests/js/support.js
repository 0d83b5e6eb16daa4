// Shared helpers for the protocol tests (not a test file itself).
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import * as p from "../../static/js/protocol/index.js";

await p.ready();

export const VECTOR_DIR = fileURLToPath(new URL("../vectors/", import.meta.url));

/** @param {string} name */
export function vector(name) {
  return JSON.parse(readFileSync(`${VECTOR_DIR}${name}`, "utf8"));
}

export function vectorFiles() {
  return readdirSync(VECTOR_DIR)
    .filter((f) => f.endsWith(".json"))
    .sort();
}

export const hex = p.encoding.toHex;
export const unhex = p.encoding.fromHex;
export const utf8 = (/** @type {string} */ s) => new TextEncoder().encode(s);
export const text = (/** @type {Uint8Array} */ b) => new TextDecoder().decode(b);

/** seed(name) = H("Parley v1 test seed", UTF-8 name), as tests/vectors/generate.py. */
export function seed(name) {
  return p.primitives.hash32("Parley v1 test seed", utf8(name));
}

/** The class name of the ProtocolError `fn` throws, or null. */
export function errorName(fn) {
  try {
    fn();
  } catch (error) {
    if (error instanceof p.ProtocolError) return error.name;
    throw error;
  }
  return null;
}

/** @param {string} name */
export function rngFor(name) {
  return p.TestRng(seed(name));
}

/** A device with its own rng, keys and set of used base keys (as protocol_builders.py). */
export function makeDevice(name, { oneTimePrekeyIds = [1, 2, 3] } = {}) {
  const rng = rngFor(name);
  const keys = p.generateDeviceKeys(rng, { signedPrekeyId: 1, oneTimePrekeyIds });
  return { name, rng, keys, usedBaseKeys: [] };
}

export function startSession(alice, bob, { useOneTimePrekey = true } = {}) {
  const opk = useOneTimePrekey ? bob.keys.oneTimePrekeys[0] : null;
  return p.Session.initiate({
    identity: alice.keys.identity,
    bundle: p.makePrekeyBundle(bob.name, bob.keys, opk),
    listedIdentityKey: bob.keys.identity.public,
    rng: alice.rng,
  });
}

/** Bob accepts Alice's prekey message; returns [session, plaintext]. */
export function accept(bob, alice, message) {
  const inbound = p.acceptPrekeyMessage(message, {
    identity: bob.keys.identity,
    signedPrekeys: new Map([[bob.keys.signedPrekey.id, bob.keys.signedPrekey.key]]),
    oneTimePrekeys: new Map(bob.keys.oneTimePrekeys.map((k) => [k.id, k.key])),
    senderIdentityKey: alice.keys.identity.public,
    usedBaseKeys: bob.usedBaseKeys,
    rng: bob.rng,
  });
  bob.usedBaseKeys.push(inbound.baseKey);
  return [inbound.session, inbound.plaintext];
}

/** Alice and Bob after one message each way (both past the prekey phase). */
export function establishedPair(name = "pair") {
  const alice = makeDevice(`${name} alice`);
  const bob = makeDevice(`${name} bob`);
  const a = startSession(alice, bob);
  const [b] = accept(bob, alice, a.encrypt(utf8("hello"), alice.rng));
  a.decrypt(b.encrypt(utf8("hi"), bob.rng), alice.rng);
  return { alice, a, bob, b };
}

/** A copy of `data` with bit `bit` flipped. */
export function flip(data, bit) {
  const out = data.slice();
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

export { p };
