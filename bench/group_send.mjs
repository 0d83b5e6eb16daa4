// A message to a group of 100 members x 5 devices in node: the mirror of bench/group_send.py
// over static/js/protocol/engine (docs/protocol.md 25.8). Run: node bench/group_send.mjs
import * as p from "../static/js/protocol/index.js";

await p.ready();

const { engine, groups, senderkeys } = p;
const MEMBERS = 100;
const DEVICES = 5;
const GROUP_ID = p.TestRng(new Uint8Array(32).fill(7))(16);
const SEED = new Uint8Array(32);
const rng = p.systemRng;

function measure(runs, fn) {
  for (let i = 0; i < Math.min(20, runs); i++) fn();
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return [samples[Math.floor(samples.length / 2)], samples[Math.floor(0.95 * (samples.length - 1))]];
}

const accounts = Array.from({ length: MEMBERS }, (_, n) => `m${String(n).padStart(3, "0")}`);
const creator = p.IdentityKeyPair.fromSeed(new Uint8Array(32).fill(1));
const lists = new Map(
  accounts.map((a) => [a, new Map(Array.from({ length: DEVICES }, (_, d) => [`${a}-d${d}`, rng(32)]))]),
);
lists.get("m000").set("m000-d0", creator.public);
const wire = groups.signEntry({
  groupId: GROUP_ID,
  seq: 0,
  previous: new Uint8Array(32),
  kind: groups.EntryKind.CREATE,
  actor: "m000",
  identity: creator,
  timestamp: 0,
  accounts,
  name: "bench",
});
const chain = groups.verifyChain([wire], { deviceLists: new Map([["m000", [creator.public]]]) });
const body = p.encodeContent(
  new p.Content({
    type: p.ContentType.TEXT,
    messageId: new Uint8Array(16),
    timestamp: 0,
    senderListVersion: 1,
    senderListHash: new Uint8Array(32),
    body: { text: "x".repeat(200) },
  }),
);

let record = new engine.GroupRecord({ accountId: "m000", deviceId: "m000-d1", groupId: GROUP_ID, chain });
let n = 0;
function send() {
  n += 1;
  let effects;
  [record, effects] = engine.handleGroup(record, new engine.GroupSendWanted(`s${n}`, body, lists, 0, rng(32)));
  const planned = effects.find((e) => e instanceof engine.GroupSend);
  [record] = engine.handleGroup(
    record,
    new engine.GroupSendAnswered({ type: "accepted", id: planned.sendId }, lists, 0, SEED),
  );
  return planned;
}

let start = process.hrtime.bigint();
const first = send();
const firstMs = Number(process.hrtime.bigint() - start) / 1e6;
const steady = measure(200, send);
const stored = JSON.stringify(record);
const storeMs = measure(50, () => JSON.stringify(record));
const loadMs = measure(50, () => engine.GroupRecord.fromJSON(JSON.parse(stored)));

const distribution = senderkeys.distributionBody(record.sending, { headSeq: chain.seq, headHash: chain.head });
let member = new engine.GroupRecord({ accountId: "m001", deviceId: "m001-d0", groupId: GROUP_ID, chain });
[member] = engine.handleGroup(member, new engine.GroupKeyReceived("m000", "m000-d1", distribution, lists, 0));
const messages = Array.from({ length: 400 }, () => send().message);
let i = 0;
const decrypt = measure(300, () => {
  [member] = engine.handleGroup(member, new engine.GroupMessageReceived(messages[i++], lists, 0));
});

const row = (name, [median, p95], digits = 2) =>
  `${name.padEnd(60)} ${median.toFixed(digits).padStart(10)} ${p95 === undefined ? "" : p95.toFixed(digits).padStart(9)}`;
console.log(`group of ${MEMBERS} members x ${DEVICES} devices: ${first.targets.length} target devices (node ${process.version})`);
console.log(`${"operation".padEnd(60)} ${"median ms".padStart(10)} ${"p95 ms".padStart(9)}`);
console.log(row("first send: new sender key, 499 distributions planned", [firstMs, undefined]));
console.log(row("send, no new device (targets, key check, encrypt, accepted)", steady));
console.log(row("  the record to JSON (what the adapter stores)", storeMs));
console.log(row("  the record from JSON", loadMs));
console.log(row("a member decrypts one message", decrypt, 3));
console.log(`record JSON: ${stored.length.toLocaleString("en")} bytes; group message: ${first.message.length} B`);

