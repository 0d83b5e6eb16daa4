// Version-2 sessions against version 1 in the JavaScript protocol (docs/protocol.md 27), in
// node: session setup, a message in one chain, a reply that turns the ratchet, the 9-device
// fan-out, and one KEM exchange (its three ratchet steps timed together).
// Run: node bench/pq.mjs   Prints median and p95 in microseconds per operation.
import * as p from "../static/js/protocol/index.js";

await p.ready();

const rng = p.systemRng;
const MESSAGE = new Uint8Array(256).fill(120);

function bob(version) {
  const keys = p.generateDeviceKeys(rng, { oneTimePrekeyIds: [1] });
  const kem = version === 2 ? p.generateKemPrekey(keys.identity, 9, rng) : null;
  return { keys, kem, bundle: p.makePrekeyBundle("bob", keys, keys.oneTimePrekeys[0], kem) };
}

function setup(version) {
  const alice = p.generateDeviceKeys(rng);
  const b = bob(version);
  return () => {
    const a = p.Session.initiate({
      identity: alice.identity,
      bundle: b.bundle,
      listedIdentityKey: b.keys.identity.public,
      rng,
    });
    const first = a.encrypt(MESSAGE, rng);
    const inbound = p.acceptPrekeyMessage(first, {
      identity: b.keys.identity,
      signedPrekeys: new Map([[b.keys.signedPrekey.id, b.keys.signedPrekey.key]]),
      oneTimePrekeys: new Map([[1, b.keys.oneTimePrekeys[0].key]]),
      kemPrekeys: new Map(b.kem ? [[9, b.kem]] : []),
      senderIdentityKey: alice.identity.public,
      usedBaseKeys: [],
      rng,
    });
    return { a, b: inbound.session };
  };
}

function pair(version) {
  const { a, b } = setup(version)();
  a.decrypt(b.encrypt(MESSAGE, rng), rng);
  return { a, b };
}

function measure(name, runs, fn) {
  for (let i = 0; i < Math.min(50, runs); i++) fn();
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return summary(name, runs, samples);
}

function summary(name, runs, samples) {
  samples.sort((x, y) => x - y);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { name, runs, median: at(0.5), p95: at(0.95) };
}

function kemExchange(runs) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const { a, b } = pair(2);
    let total = 0n;
    for (;;) {
      b.decrypt(a.encrypt(MESSAGE, rng), rng);
      const reply = b.encrypt(MESSAGE, rng);
      const start = process.hrtime.bigint();
      a.decrypt(reply, rng);
      if (a.kem.offer !== null) {
        total += process.hrtime.bigint() - start;
        break;
      }
    }
    const wire = a.encrypt(MESSAGE, rng);
    let start = process.hrtime.bigint();
    b.decrypt(wire, rng);
    total += process.hrtime.bigint() - start;
    const reply = b.encrypt(MESSAGE, rng);
    start = process.hrtime.bigint();
    a.decrypt(reply, rng);
    total += process.hrtime.bigint() - start;
    if (a.kem.offer !== null) throw new Error("the exchange did not complete");
    samples.push(Number(total) / 1000);
  }
  return summary("v2 one KEM exchange (three ratchet steps, timed together)", runs, samples);
}

const rows = [];
for (const version of [1, 2]) {
  rows.push(measure(`v${version} session setup: initiate + first message + accept`, 300, setup(version)));
  const same = pair(version);
  rows.push(measure(`v${version} encrypt + decrypt, one message (same chain)`, 3000, () =>
    same.b.decrypt(same.a.encrypt(MESSAGE, rng), rng)));
  let turn = pair(version);
  rows.push(measure(`v${version} encrypt + decrypt with a DH ratchet step`, 2000, () => {
    turn.b.decrypt(turn.a.encrypt(MESSAGE, rng), rng);
    turn = { a: turn.b, b: turn.a };
  }));
  const targets = new Map(Array.from({ length: 9 }, (_, i) => [`dev-${i}`, pair(version).a]));
  rows.push(measure(`v${version} fan-out of one message to 9 devices`, 1000, () =>
    p.encryptForDevices(MESSAGE, targets, rng)));
}
rows.push(kemExchange(60));
console.log(`${"operation".padEnd(66)} ${"median µs".padStart(10)} ${"p95 µs".padStart(10)} ${"runs".padStart(6)}`);
for (const r of rows) {
  console.log(`${r.name.padEnd(66)} ${r.median.toFixed(1).padStart(10)} ${r.p95.toFixed(1).padStart(10)} ${String(r.runs).padStart(6)}`);
}
console.log(`node ${process.version}`);
