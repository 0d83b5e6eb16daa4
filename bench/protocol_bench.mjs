// Benchmarks of the JavaScript protocol (static/js/protocol/) in node.
// Run: node bench/protocol_bench.mjs   Prints median and p95 in microseconds per operation.
import { cpus, platform, release, totalmem } from "node:os";

import * as p from "../static/js/protocol/index.js";

await p.ready();

const rng = p.systemRng;
const utf8 = (text) => new TextEncoder().encode(text);

function device(name) {
  const keys = p.generateDeviceKeys(rng, { signedPrekeyId: 1, oneTimePrekeyIds: [1] });
  return {
    name,
    keys,
    bundle: () => p.makePrekeyBundle(name, keys, keys.oneTimePrekeys[0]),
  };
}

function accept(receiver, sender, message) {
  return p.acceptPrekeyMessage(message, {
    identity: receiver.keys.identity,
    signedPrekeys: new Map([[1, receiver.keys.signedPrekey.key]]),
    oneTimePrekeys: new Map([[1, receiver.keys.oneTimePrekeys[0].key]]),
    senderIdentityKey: sender.keys.identity.public,
    usedBaseKeys: [],
    rng,
  });
}

/** Alice and Bob after one message each way. */
function establishedPair() {
  const alice = device("alice");
  const bob = device("bob");
  const a = p.Session.initiate({
    identity: alice.keys.identity,
    bundle: bob.bundle(),
    listedIdentityKey: bob.keys.identity.public,
    rng,
  });
  const b = accept(bob, alice, a.encrypt(utf8("hello"), rng)).session;
  a.decrypt(b.encrypt(utf8("hi"), rng), rng);
  return { alice, bob, a, b };
}

function measure(name, iterations, fn, setup = () => undefined) {
  for (let i = 0; i < Math.min(200, iterations); i++) fn(setup());
  const samples = [];
  for (let i = 0; i < iterations; i++) {
    const input = setup();
    const start = process.hrtime.bigint();
    fn(input);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  samples.sort((x, y) => x - y);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { name, iterations, median: at(0.5), p95: at(0.95) };
}

// A text content of exactly 256 bytes (175 characters, section 10), as the Python bench.
const listHash = rng(32);
const content = p.encodeContent(
  p.newContent(
    p.ContentType.TEXT,
    { text: "x".repeat(175) },
    {
      timestamp: Date.now(),
      senderListVersion: 3,
      senderListHash: listHash,
      rng,
    },
  ),
);

const results = [];

{
  const { a, b } = establishedPair();
  results.push(
    measure("encrypt + decrypt, one message (same chain)", 5000, () => {
      b.decrypt(a.encrypt(content, rng), rng);
    }),
  );
}

{
  const { a, b } = establishedPair();
  let turn = 0;
  results.push(
    measure("encrypt + decrypt with a DH ratchet step (alternating)", 3000, () => {
      const [from, to] = turn++ % 2 === 0 ? [a, b] : [b, a];
      to.decrypt(from.encrypt(content, rng), rng);
    }),
  );
}

{
  const alice = device("alice");
  const bob = device("bob");
  results.push(
    measure("X3DH setup, initiator (verify bundle, X3DH, first ratchet key)", 1000, () => {
      p.Session.initiate({
        identity: alice.keys.identity,
        bundle: bob.bundle(),
        listedIdentityKey: bob.keys.identity.public,
        rng,
      });
    }),
  );
  results.push(
    measure(
      "X3DH setup, responder (accept first prekey message)",
      1000,
      (message) => accept(bob, alice, message),
      () =>
        p.Session.initiate({
          identity: alice.keys.identity,
          bundle: bob.bundle(),
          listedIdentityKey: bob.keys.identity.public,
          rng,
        }).encrypt(content, rng),
    ),
  );
  results.push(
    measure("X3DH setup: initiate + first message + accept", 1000, () => {
      const session = p.Session.initiate({
        identity: alice.keys.identity,
        bundle: bob.bundle(),
        listedIdentityKey: bob.keys.identity.public,
        rng,
      });
      accept(bob, alice, session.encrypt(content, rng));
    }),
  );
}

{
  const sender = device("sender");
  const sessions = new Map();
  for (let i = 0; i < 9; i++) {
    const receiver = device(`receiver ${i}`);
    const session = p.Session.initiate({
      identity: sender.keys.identity,
      bundle: receiver.bundle(),
      listedIdentityKey: receiver.keys.identity.public,
      rng,
    });
    const theirs = accept(receiver, sender, session.encrypt(utf8("setup"), rng)).session;
    session.decrypt(theirs.encrypt(utf8("ack"), rng), rng);
    sessions.set(`dev-${i}`, session);
  }
  results.push(
    measure("fan-out of one message to 9 devices (existing sessions)", 2000, () => {
      p.encryptForDevices(content, sessions, rng);
    }),
  );
}

const cpu = cpus();
console.log(
  `Parley protocol (JavaScript) — node ${process.version}, libsodium-wrappers-sumo 0.8.4`,
);
console.log(
  `${platform()} ${release()}, ${cpu[0]?.model ?? "unknown CPU"} × ${cpu.length}, ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB RAM`,
);
console.log(`message content: ${content.length} bytes (encoded text content)\n`);
const width = Math.max(...results.map((r) => r.name.length));
console.log(
  `${"operation".padEnd(width)}  ${"median µs".padStart(10)}  ${"p95 µs".padStart(10)}  runs`,
);
for (const r of results) {
  console.log(
    `${r.name.padEnd(width)}  ${r.median.toFixed(1).padStart(10)}  ${r.p95.toFixed(1).padStart(10)}  ${r.iterations}`,
  );
}
const fanout = results.at(-1);
console.log(
  `\n9-device fan-out p95 ${(fanout.p95 / 1000).toFixed(2)} ms (target < 5 ms): ${fanout.p95 < 5000 ? "met" : "MISSED"}`,
);
