// The vendored browser libraries are exactly the pinned ones listed in static/vendor/MANIFEST.json,
// and the vendored libsodium loads and agrees with the npm package it came from.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const manifest = JSON.parse(readFileSync(`${root}static/vendor/MANIFEST.json`, "utf8"));
const lock = JSON.parse(readFileSync(`${root}package-lock.json`, "utf8"));

test("every vendored file matches its recorded hash", () => {
  for (const [path, entry] of Object.entries(manifest)) {
    const bytes = readFileSync(`${root}static/vendor/${path}`);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), entry.sha256, path);
  }
});

test("every vendored file comes from the version pinned in package-lock.json", () => {
  for (const [path, entry] of Object.entries(manifest)) {
    const locked = lock.packages[`node_modules/${entry.package}`];
    assert.ok(locked, `${entry.package} is not in package-lock.json`);
    assert.equal(entry.version, locked.version, path);
  }
});

// Expected values computed with PyNaCl 1.6.2 (nacl.signing.SigningKey(bytes([7]) * 32)).
const PYNACL_SIGNATURE =
  "67e5e68eb1a08c8b2b8b8cc389e719e3053af11533e37a47416cd2569ebae07a" +
  "3c2264a2a89d5141ce062da8102975ba8528840bef017d961019b6f5b9d4ae04";
const PYNACL_X25519_PUBLIC = "761d88ec830413919dfe9d4d1d56f17e653c8c994082df5b137b90a0ae6edf74";

test("vendored libsodium signs and converts keys exactly as PyNaCl does", async () => {
  const { default: sodium } = await import(`${root}static/vendor/libsodium/libsodium-wrappers.mjs`);
  await sodium.ready;
  const { publicKey, privateKey } = sodium.crypto_sign_seed_keypair(new Uint8Array(32).fill(7));
  const sig = sodium.crypto_sign_detached(new TextEncoder().encode("parley"), privateKey);
  assert.equal(sodium.to_hex(sig), PYNACL_SIGNATURE);
  assert.equal(sodium.to_hex(sodium.crypto_sign_ed25519_pk_to_curve25519(publicKey)), PYNACL_X25519_PUBLIC);
});

// types/libsodium-wrappers-sumo.d.ts is what tsc checks static/js/protocol/ against: each
// member it declares must exist on the vendored library, and a secretstream state is a number.
test("every libsodium member the type declarations name exists in the vendored library", async () => {
  const { default: sodium } = await import(`${root}static/vendor/libsodium/libsodium-wrappers.mjs`);
  await sodium.ready;
  const shim = readFileSync(`${root}types/libsodium-wrappers-sumo.d.ts`, "utf8");
  const start = shim.indexOf("export interface Sodium {");
  const body = shim.slice(start, shim.indexOf("\n}\n", start));
  const members = [...body.matchAll(/^ {2}(readonly )?(\w+)(\(|:)/gm)].map(([, , name, kind]) => [name, kind]);
  assert.ok(members.length > 15, `found only ${members.length} members`);
  for (const [name, kind] of members) {
    const expected = kind === "(" ? "function" : name === "ready" ? "object" : "number";
    assert.equal(typeof sodium[name], expected, name);
  }
  const state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(new Uint8Array(24), new Uint8Array(32));
  assert.equal(typeof state, "number");
});
