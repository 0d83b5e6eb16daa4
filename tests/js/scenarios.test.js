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
  if (step.call === "history_bundle") return engine.historyBundle(args.messages, args.contacts, args.now);
  if (step.call === "history_records") {
    return engine.historyRecords(args.bundle, { accountId: args.account_id, contacts: args.contacts });
  }
  throw new Error(`unknown call ${step.call}`);
}

/** JSON as the files hold it: toJSON applied, undefined dropped. @param {any} value */
const plain = (value) => JSON.parse(JSON.stringify(value));

/** Replay one file; returns how many steps it checked. @param {string} name */
function run(name) {
  const scenario = JSON.parse(readFileSync(`${DIR}${name}`, "utf8"));
  let state = scenario.state ? engine.DeviceState.fromJSON(scenario.state) : null;
  scenario.steps.forEach((step, i) => {
    const where = `${name} step ${i + 1} (${step.note ?? ""})`;
    if (step.call) {
      if (step.error) {
        assert.throws(() => call(step), (error) => error instanceof p.ProtocolError && error.name === step.error, where);
      } else {
        assert.deepEqual(call(step), step.returns, where);
      }
      return;
    }
    let effects;
    [state, effects] = engine.handle(state, engine.eventFromJSON(step.event));
    assert.deepEqual(plain(effects), step.effects, where);
    // the state survives its JSON form: an adapter may store it between events
    assert.deepEqual(plain(engine.DeviceState.fromJSON(plain(state))), plain(state), where);
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
