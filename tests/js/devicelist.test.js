// Device-list verification, table-driven like tests/protocol/test_devicelist.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { errorName, makeDevice, p } from "./support.js";

const { DeviceEntry, DeviceList } = p;
const ACCOUNT = "acct-alice";
const T0 = 1_700_000_000_000;

const primary = makeDevice("list primary").keys.identity;
const laptop = makeDevice("list laptop").keys.identity;
const tablet = makeDevice("list tablet").keys.identity;
const intruder = makeDevice("list intruder").keys.identity;

function companion(
  identity,
  deviceId = "dev-laptop",
  accountId = ACCOUNT,
  accountKey = primary.public,
) {
  const deviceSignature = p.signDevice(identity, { accountId, accountKey });
  return new DeviceEntry({
    deviceId,
    identityKey: identity.public,
    addedAt: T0 + 1,
    deviceSignature,
  });
}

const PRIMARY_ENTRY = new DeviceEntry({
  deviceId: "dev-primary",
  identityKey: primary.public,
  addedAt: T0,
});

function signed({ version = 2, devices = null, signer = primary } = {}) {
  return p.signDeviceList(signer, {
    accountId: ACCOUNT,
    version,
    timestamp: T0 + version,
    devices: devices ?? [PRIMARY_ENTRY, companion(laptop)],
  });
}

/** A copy of a signed list with fields replaced after signing. */
function replaced(list, changes) {
  return new DeviceList({ ...list, ...changes });
}

test("a valid list verifies and its hash is stable", () => {
  const list = signed();
  p.verifyDeviceList(list, {
    expectedAccountKey: primary.public,
    lastAcceptedVersion: 1,
    knownDevices: {},
  });
  assert.deepEqual(DeviceList.fromJSON(list.toJSON()), list);
  assert.deepEqual(p.deviceListHash(list), list.hash);
  assert.equal(list.hash.length, 32);
  assert.equal(list.entry("dev-laptop").deviceId, "dev-laptop");
  assert.equal(list.entry("dev-none"), null);
});

const sixDevices = [PRIMARY_ENTRY];
for (let i = 0; i < 5; i++)
  sixDevices.push(companion(makeDevice(`x${i}`).keys.identity, `dev-x${i}`));

const CASES = [
  ["version changed after signing", replaced(signed(), { version: 3 }), {}, "InvalidSignature"],
  ["timestamp changed", replaced(signed(), { timestamp: 0 }), {}, "InvalidSignature"],
  ["account id changed", replaced(signed(), { accountId: "acct-bob" }), {}, "InvalidSignature"],
  [
    "device dropped",
    replaced(signed(), { devices: signed().devices.slice(1) }),
    {},
    "InvalidSignature",
  ],
  [
    "device injected by server",
    replaced(signed(), { devices: [...signed().devices, companion(intruder, "dev-zz")] }),
    {},
    "InvalidSignature",
  ],
  [
    "signature bytes flipped",
    replaced(signed(), { signature: new Uint8Array(64) }),
    {},
    "InvalidSignature",
  ],
  [
    "signed by another key",
    signed({
      devices: [
        new DeviceEntry({ deviceId: "dev-primary", identityKey: intruder.public, addedAt: T0 }),
      ],
      signer: intruder,
    }),
    { expectedAccountKey: primary.public },
    "AccountKeyChanged",
  ],
  [
    "companion without device signature",
    signed({
      devices: [
        PRIMARY_ENTRY,
        new DeviceEntry({ deviceId: "dev-laptop", identityKey: laptop.public, addedAt: T0 }),
      ],
    }),
    {},
    "MissingDeviceSignature",
  ],
  [
    "device signature for another account",
    signed({ devices: [PRIMARY_ENTRY, companion(laptop, "dev-laptop", "acct-mallory")] }),
    {},
    "InvalidSignature",
  ],
  [
    "device signature for another account key",
    signed({ devices: [PRIMARY_ENTRY, companion(laptop, "dev-laptop", ACCOUNT, intruder.public)] }),
    {},
    "InvalidSignature",
  ],
  [
    "device signature by another key",
    signed({
      devices: [
        PRIMARY_ENTRY,
        new DeviceEntry({
          ...companion(laptop),
          deviceSignature: companion(tablet).deviceSignature,
        }),
      ],
    }),
    {},
    "InvalidSignature",
  ],
  [
    "equal version is rollback",
    signed({ version: 2 }),
    { lastAcceptedVersion: 2 },
    "StaleDeviceList",
  ],
  [
    "older version is rollback",
    signed({ version: 1 }),
    { lastAcceptedVersion: 2 },
    "StaleDeviceList",
  ],
  [
    "known device id with new key",
    signed({ version: 3, devices: [PRIMARY_ENTRY, companion(tablet, "dev-laptop")] }),
    { knownDevices: new Map([["dev-laptop", laptop.public]]) },
    "DeviceKeyChanged",
  ],
  [
    "removed device returns with new key",
    signed({ version: 5, devices: [PRIMARY_ENTRY, companion(tablet, "dev-old")] }),
    { knownDevices: { "dev-old": laptop.public } },
    "DeviceKeyChanged",
  ],
  [
    "no primary entry",
    replaced(signed(), { devices: [companion(laptop)] }),
    {},
    "MalformedDeviceList",
  ],
  [
    "unsorted entries",
    replaced(signed(), { devices: [...signed().devices].reverse() }),
    {},
    "MalformedDeviceList",
  ],
  [
    "duplicate device id",
    replaced(signed(), { devices: [PRIMARY_ENTRY, PRIMARY_ENTRY] }),
    {},
    "MalformedDeviceList",
  ],
  ["six devices", replaced(signed(), { devices: sixDevices }), {}, "MalformedDeviceList"],
  [
    "primary entry with a device signature",
    replaced(signed(), {
      devices: [new DeviceEntry({ ...PRIMARY_ENTRY, deviceSignature: new Uint8Array(64) })],
    }),
    {},
    "MalformedDeviceList",
  ],
];

for (const [name, list, options, error] of CASES) {
  test(`tampered or stale list is refused: ${name} → ${error}`, () => {
    assert.equal(
      errorName(() => p.verifyDeviceList(list, options)),
      error,
    );
  });
}

test("a known device with the same key is accepted", () => {
  p.verifyDeviceList(signed({ version: 3 }), {
    expectedAccountKey: primary.public,
    lastAcceptedVersion: 2,
    knownDevices: { "dev-laptop": laptop.public, "dev-primary": primary.public },
  });
});

test("malformed JSON is refused", () => {
  const data = signed().toJSON();
  const { devices, ...withoutDevices } = data;
  for (const broken of [
    { ...data, version: -1 },
    { ...data, version: "2" },
    { ...data, version: 1.5 },
    { ...data, signature: `${data.signature}A` },
    { ...data, account_key: `${data.account_key}==` },
    withoutDevices,
    { ...data, devices: [{ ...devices[0], device_signature: undefined }] },
    null,
    [],
  ]) {
    assert.equal(
      errorName(() => DeviceList.fromJSON(broken)),
      "MalformedDeviceList",
    );
  }
});

test("device ids are sorted by their UTF-8 bytes, not UTF-16 code units", () => {
  // U+FF5E (EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in UTF-8 but after it in UTF-16.
  const list = signed({
    devices: [PRIMARY_ENTRY, companion(laptop, "dev-\u{1F600}"), companion(tablet, "dev-\uFF5E")],
  });
  assert.deepEqual(
    list.devices.map((d) => d.deviceId),
    ["dev-primary", "dev-\uFF5E", "dev-\u{1F600}"],
  );
  p.verifyDeviceList(list);
});

test("the link signature covers account, companion key and link id", () => {
  const sig = p.signLink(primary, {
    accountId: ACCOUNT,
    companionIdentityKey: laptop.public,
    linkId: "L1",
  });
  const base = {
    accountId: ACCOUNT,
    accountKey: primary.public,
    companionIdentityKey: laptop.public,
    linkId: "L1",
  };
  p.verifyLinkSignature(sig, base);
  for (const changes of [
    { linkId: "L2" },
    { companionIdentityKey: tablet.public },
    { accountId: "acct-bob" },
    { accountKey: intruder.public },
  ]) {
    assert.equal(
      errorName(() => p.verifyLinkSignature(sig, { ...base, ...changes })),
      "InvalidSignature",
    );
  }
});

/** @param {any} data @param {object} changes */
function entryChanged(data, changes) {
  const devices = data.devices.map((d) => ({ ...d }));
  Object.assign(devices[0], changes);
  return { ...data, devices };
}

for (const [name, change] of [
  ["device id with a lone high surrogate", (d) => entryChanged(d, { device_id: "dev-\ud800" })],
  ["device id with a lone low surrogate", (d) => entryChanged(d, { device_id: "\udfff" })],
  ["device id over 65535 bytes", (d) => entryChanged(d, { device_id: "x".repeat(65536) })],
  ["account id with a lone surrogate", (d) => ({ ...d, account_id: "acct-\ud800" })],
  ["account id over 65535 bytes", (d) => ({ ...d, account_id: "x".repeat(65536) })],
  ["timestamp 2^53", (d) => ({ ...d, version: 2 ** 53 - 1, timestamp: 2 ** 53 })],
  ["version 2^64", (d) => ({ ...d, version: 2 ** 64 })],
  ["added_at -1", (d) => entryChanged(d, { added_at: -1 })],
  ["added_at true", (d) => entryChanged(d, { added_at: true })],
  ["version 2.5", (d) => ({ ...d, version: 2.5 })],
  ["timestamp null", (d) => ({ ...d, timestamp: null })],
]) {
  test(`a bad JSON field is a MalformedDeviceList, never another error: ${name}`, () => {
    const data = change(signed().toJSON());
    assert.equal(
      errorName(() => p.verifyDeviceList(DeviceList.fromJSON(data))),
      "MalformedDeviceList",
    );
  });
}

for (const [name, changes] of [
  ["version -1", { version: -1 }],
  ["version 2^53", { version: 2 ** 53 }],
  ["timestamp 2^64", { timestamp: 2 ** 64 }],
  ["account id with a lone surrogate", { accountId: "acct-\ud800" }],
  ["account id not a string", { accountId: 5 }],
  ["account key as text", { accountKey: "k".repeat(32) }],
  [
    "device id with a lone surrogate",
    { devices: [new DeviceEntry({ ...PRIMARY_ENTRY, deviceId: "dev-\ud800" })] },
  ],
  ["added_at -1", { devices: [new DeviceEntry({ ...PRIMARY_ENTRY, addedAt: -1 })] }],
  ["added_at 2^53", { devices: [new DeviceEntry({ ...PRIMARY_ENTRY, addedAt: 2 ** 53 })] }],
  ["device id not a string", { devices: [new DeviceEntry({ ...PRIMARY_ENTRY, deviceId: 7 })] }],
  [
    "device signature of 63 bytes",
    {
      devices: [
        PRIMARY_ENTRY,
        new DeviceEntry({ ...companion(laptop), deviceSignature: new Uint8Array(63) }),
      ],
    },
  ],
  ["an entry that is a string", { devices: ["dev-primary"] }],
]) {
  test(`the structure check covers every field of a constructed list: ${name}`, () => {
    assert.equal(
      errorName(() => p.verifyDeviceList(replaced(signed(), changes))),
      "MalformedDeviceList",
    );
  });
}

for (const [deviceId, addedAt] of [
  ["dev-\ud800", T0],
  ["x".repeat(65536), T0],
  ["dev-ok", -1],
  ["dev-ok", 2 ** 53],
]) {
  test(`signing a list with a bad entry is malformed: ${deviceId.slice(0, 8)} ${addedAt}`, () => {
    const entry = new DeviceEntry({ deviceId, identityKey: laptop.public, addedAt });
    assert.equal(
      errorName(() => signed({ devices: [PRIMARY_ENTRY, entry] })),
      "MalformedDeviceList",
    );
  });
}
