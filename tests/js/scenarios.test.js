// Every scenario file of the device engine (tests/vectors/scenarios/, docs/protocol.md
// section 22.5), run against static/js/protocol/engine; tests/protocol/test_scenarios.py
// runs the same files against protocol/engine.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, describe, test } from "node:test";

import { p, VECTOR_DIR } from "./support.js";

const { engine } = p;
const { b64uDecode, b64uEncode } = p.encoding;
const DIR = `${VECTOR_DIR}scenarios/`;
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .sort();

/** @param {any} step */
function call(step) {
  const { args } = step;
  if (step.call === "link_url") {
    const code = new p.LinkCode({
      linkId: args.link_id,
      identityKey: b64uDecode(args.identity_key),
      ephemeralKey: b64uDecode(args.ephemeral_key),
    });
    return p.linkUrl(args.origin, code);
  }
  if (step.call === "parse_link_url") {
    const parsed = p.parseLinkUrl(args.url, { origin: args.origin });
    return {
      link_id: parsed.linkId,
      identity_key: b64uEncode(parsed.identityKey),
      ephemeral_key: b64uEncode(parsed.ephemeralKey),
    };
  }
  if (step.call === "history_bundle") return engine.historyBundle(args.messages, args.contacts, args.now, args.group_messages ?? []);
  if (step.call === "history_records") {
    return engine.historyRecords(args.bundle, { accountId: args.account_id, contacts: args.contacts });
  }
  if (step.call === "read_state") return engine.readState(args.messages, args.value);
  if (step.call === "read_position") return engine.readPosition(args.messages, args.value);
  if (step.call === "read_up_to") return engine.readUpTo(args.value);
  throw new Error(`unknown call ${step.call}`);
}

/** JSON as the files hold it: toJSON applied, undefined dropped. @param {any} value */
const plain = (value) => JSON.parse(JSON.stringify(value));

/** @type {Record<string, [any, any, any]>} */
const MACHINES = {
  device: [engine.DeviceState, engine.handle, engine.eventFromJSON],
  sync: [engine.SyncState, engine.handleSync, engine.syncEventFromJSON],
  group: [engine.GroupRecord, engine.handleGroup, engine.groupEventFromJSON],
};

/** Replay one file; returns how many steps it checked. @param {string} name */
function run(name) {
  const scenario = JSON.parse(readFileSync(`${DIR}${name}`, "utf8"));
  // "machine": "sync" files run the sync machine (section 22.8), "group" the group machine
  // (25.8), instead of the device engine
  const [Kind, step, parse] = MACHINES[scenario.machine ?? "device"];
  let state = scenario.state ? Kind.fromJSON(scenario.state) : null;
  scenario.steps.forEach((item, i) => {
    const where = `${name} step ${i + 1} (${item.note ?? ""})`;
    if (item.call) {
      if (item.error) {
        assert.throws(() => call(item), (error) => error instanceof p.ProtocolError && error.name === item.error, where);
      } else {
        assert.deepEqual(call(item), item.returns, where);
      }
      return;
    }
    let effects;
    [state, effects] = step(state, parse(item.event));
    assert.deepEqual(plain(effects), item.effects, where);
    // the state survives its JSON form: an adapter may store it between events
    assert.deepEqual(plain(Kind.fromJSON(plain(state))), plain(state), where);
  });
  return scenario.steps.length;
}

let steps = 0;
describe("engine scenarios", () => {
  for (const name of FILES) {
    test(name, () => {
      steps += run(name);
    });
  }
  after(() => {
    console.log(`engine scenarios (JavaScript): ${FILES.length} files, ${steps} steps`);
  });
});

test("there are scenario files", () => {
  assert.ok(FILES.length >= 10);
});
