// A JSON-lines driver around the JavaScript protocol (static/js/protocol/) for the
// cross-implementation tests: one command per stdin line, one answer per stdout line.
//
//   {"cmd": "generate_keys", "device": "bob", "seed": hex | null,
//    "signed_prekey_id": 1, "one_time_prekey_ids": [1, 2],
//    "kem_prekey_ids": [9] (one-time), "last_resort_kem_prekey_id": 10 | null (version 2)}
//                                                            → {"device_keys", "identity_key"}
//   {"cmd": "bundle", "device": "bob", "device_id": "dev-bob", "one_time_prekey_id": 1 | null,
//    "kem_prekey_id": 9 | 10 | null}                         → {"bundle"}
//   {"cmd": "initiate", "device": "alice", "session": "s", "bundle": {...},
//    "listed_identity_key": b64u}                            → {}
//   {"cmd": "accept", "device": "bob", "session": "s", "message": b64u,
//    "sender_identity_key": b64u}                            → {"plaintext"}
//   {"cmd": "encrypt", "session": "s", "plaintext": b64u}    → {"message"}
//   {"cmd": "decrypt", "session": "s", "message": b64u}      → {"plaintext"}
//   {"cmd": "encrypt_for_devices", "sessions": {device_id: session}, "plaintext": b64u}
//                                                            → {"messages": {device_id: b64u}}
//   {"cmd": "serialize", "session": "s"}                     → {"state"}
//   {"cmd": "restore", "device": "bob", "session": "s", "state": {...}} → {}
//   {"cmd": "group", "record": "name", "state": {...} | absent, "event": {...}}
//                                                            → {"record", "effects"}
//     (the group machine, docs/protocol.md 25.8: `state` starts a record, else the one kept)
//   {"cmd": "parse_json", "hex": hex, "as_text": bool, "max_bytes": n, "max_depth": n}
//                                                            → {"reason": str | null, "value"}
//
// Every answer is {"ok": true, ...} or {"ok": false, "error": ClassName, "message": str}.
// Sessions use their device's rng: TestRng(seed) when a seed is given, else the system rng.
import { createInterface } from "node:readline";

import * as p from "../../static/js/protocol/index.js";

await p.ready();

const { b64uDecode, b64uEncode, fromHex } = p.encoding;
const devices = new Map();
const sessions = new Map();
const groupRecords = new Map();

function device(name) {
  const found = devices.get(name);
  if (!found) throw new Error(`unknown device ${name}`);
  return found;
}

function session(name) {
  const found = sessions.get(name);
  if (!found) throw new Error(`unknown session ${name}`);
  return found;
}

const COMMANDS = {
  generate_keys({
    device: name,
    seed = null,
    signed_prekey_id = 1,
    one_time_prekey_ids = [],
    kem_prekey_ids = [],
    last_resort_kem_prekey_id = null,
  }) {
    const rng = seed === null ? p.systemRng : p.TestRng(fromHex(seed));
    const keys = p.generateDeviceKeys(rng, {
      signedPrekeyId: signed_prekey_id,
      oneTimePrekeyIds: one_time_prekey_ids,
    });
    if (last_resort_kem_prekey_id !== null) {
      keys.kemPrekeys = p.generateKemPrekeys(keys.identity, kem_prekey_ids, rng);
      keys.lastResortKemPrekey = p.generateKemPrekey(keys.identity, last_resort_kem_prekey_id, rng, {
        lastResort: true,
      });
    }
    devices.set(name, { rng, keys, usedBaseKeys: [] });
    return { device_keys: keys.toJSON(), identity_key: b64uEncode(keys.identity.public) };
  },

  bundle({ device: name, device_id, one_time_prekey_id = null, kem_prekey_id = null }) {
    const { keys } = device(name);
    const otk =
      one_time_prekey_id === null
        ? null
        : keys.oneTimePrekeys.find((k) => k.id === one_time_prekey_id);
    const kem =
      kem_prekey_id === null
        ? null
        : [...keys.kemPrekeys, keys.lastResortKemPrekey].find((k) => k?.id === kem_prekey_id);
    return { bundle: p.makePrekeyBundle(device_id, keys, otk, kem).toJSON() };
  },

  initiate({ device: name, session: sid, bundle, listed_identity_key }) {
    const { keys, rng } = device(name);
    const created = p.Session.initiate({
      identity: keys.identity,
      bundle: p.PrekeyBundle.fromJSON(bundle),
      listedIdentityKey: b64uDecode(listed_identity_key, { length: 32 }),
      rng,
    });
    sessions.set(sid, { session: created, rng });
    return {};
  },

  accept({ device: name, session: sid, message, sender_identity_key }) {
    const owner = device(name);
    const { keys } = owner;
    const inbound = p.acceptPrekeyMessage(b64uDecode(message), {
      identity: keys.identity,
      signedPrekeys: new Map([[keys.signedPrekey.id, keys.signedPrekey.key]]),
      oneTimePrekeys: new Map(keys.oneTimePrekeys.map((k) => [k.id, k.key])),
      kemPrekeys: new Map(
        [...keys.kemPrekeys, keys.lastResortKemPrekey].filter(Boolean).map((k) => [k.id, k]),
      ),
      senderIdentityKey: b64uDecode(sender_identity_key, { length: 32 }),
      usedBaseKeys: owner.usedBaseKeys,
      rng: owner.rng,
    });
    owner.usedBaseKeys.push(inbound.baseKey);
    keys.oneTimePrekeys = keys.oneTimePrekeys.filter((k) => k.id !== inbound.oneTimePrekeyId);
    keys.kemPrekeys = keys.kemPrekeys.filter((k) => k.id !== inbound.oneTimeKemPrekeyId);
    sessions.set(sid, { session: inbound.session, rng: owner.rng });
    return { plaintext: b64uEncode(inbound.plaintext) };
  },

  encrypt({ session: sid, plaintext }) {
    const { session: s, rng } = session(sid);
    return { message: b64uEncode(s.encrypt(b64uDecode(plaintext), rng)) };
  },

  decrypt({ session: sid, message }) {
    const { session: s, rng } = session(sid);
    return { plaintext: b64uEncode(s.decrypt(b64uDecode(message), rng)) };
  },

  encrypt_for_devices({ sessions: byDevice, plaintext }) {
    const targets = new Map();
    let rng = null;
    for (const [deviceId, sid] of Object.entries(byDevice)) {
      targets.set(deviceId, session(sid).session);
      rng ??= session(sid).rng;
    }
    const out = p.encryptForDevices(b64uDecode(plaintext), targets, rng);
    return {
      messages: Object.fromEntries([...out].map(([deviceId, m]) => [deviceId, b64uEncode(m)])),
    };
  },

  serialize({ session: sid }) {
    return { state: session(sid).session.toJSON() };
  },

  restore({ device: name, session: sid, state }) {
    sessions.set(sid, { session: p.Session.fromJSON(state), rng: device(name).rng });
    return {};
  },

  group({ record: name, state = null, event }) {
    const record = state !== null ? p.engine.GroupRecord.fromJSON(state) : groupRecords.get(name);
    if (!record) throw new Error(`unknown group record ${name}`);
    const [after, effects] = p.engine.handleGroup(record, p.engine.groupEventFromJSON(event));
    groupRecords.set(name, after);
    return { record: after.toJSON(), effects: JSON.parse(JSON.stringify(effects)) };
  },

  parse_json({ hex, as_text: asText, max_bytes: maxBytes, max_depth: maxDepth }) {
    const bytes = fromHex(hex);
    const data = asText ? new TextDecoder().decode(bytes) : bytes;
    try {
      return { reason: null, value: p.strictjson.parseJson(data, { maxBytes, maxDepth }) };
    } catch (error) {
      if (!(error instanceof p.InvalidJson)) throw error;
      return { reason: error.reason, value: null };
    }
  },
};

function answer(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    return { ok: false, error: "BadRequest", message: String(error) };
  }
  const command = COMMANDS[request.cmd];
  if (!command) return { ok: false, error: "BadRequest", message: `unknown cmd ${request.cmd}` };
  try {
    return { ok: true, ...command(request) };
  } catch (error) {
    const name = error instanceof p.ProtocolError ? error.name : "Error";
    return { ok: false, error: name, message: error.message };
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  process.stdout.write(`${JSON.stringify(answer(line))}\n`);
}
