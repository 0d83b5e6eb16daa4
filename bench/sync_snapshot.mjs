// Account state sync in node: a 10,000-mutation snapshot applied on a new device (the JS
// mirror of bench/sync_snapshot.py, the same record shapes).
//
// Run alone: node bench/sync_snapshot.mjs [mutations] [runs]

import * as p from "../static/js/protocol/index.js";

const T0 = 1_700_000_000_000;
const [count = 10_000, runs = 5] = process.argv.slice(2).map(Number);

/** @param {number} i */
function mutation(i) {
  const user = `user-${String(i).padStart(6, "0")}`;
  if (i % 3 === 0) {
    const value = { nickname: `Friend ${i}`, verified: i % 2 === 0, added_at: T0 + i };
    return new p.Mutation("contacts", ["contact", user], value, T0 + i, "dev-phone");
  }
  if (i % 3 === 1) {
    const value = { archived: false, muted: false, pinned: false, read_up_to: T0 + i, unread: i % 7 };
    return new p.Mutation("conversations", ["conversation", user], value, T0 + i, "dev-laptop");
  }
  return new p.Mutation("settings", ["setting", `s${i}`], { enabled: true }, T0 + i, "dev-phone");
}

await p.ready();
const key = p.newSyncKey(p.systemRng, { sinceVersion: 1 });
let state = new p.AccountState();
for (let start = 0; start < count; start += 100) {
  const batch = [];
  for (let i = start; i < Math.min(start + 100, count); i++) batch.push(mutation(i));
  state = p.buildPatch(state, batch, { version: state.version + 1, key, rng: p.systemRng }).state;
}
const snapshot = p.buildSnapshot(state, { version: state.version + 1, key, rng: p.systemRng });
const walls = [];
const cpus = [];
for (let r = 0; r < runs; r++) {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  const fresh = p.applyEntry(new p.AccountState(), snapshot.blob, { version: snapshot.version, keys: [key] });
  const used = process.cpuUsage(cpu);
  walls.push((performance.now() - wall) / 1000);
  cpus.push((used.user + used.system) / 1e6);
  if (fresh.records.size !== state.records.size || !p.encoding.bytesEqual(fresh.hash, state.hash)) {
    throw new Error("the applied snapshot differs from the written state");
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`snapshot of ${state.records.size} records, ${snapshot.blob.length} bytes`);
console.log(
  `apply on a new device: wall median ${median(walls).toFixed(3)} s (best ${Math.min(...walls).toFixed(3)}), ` +
    `cpu median ${median(cpus).toFixed(3)} s, ${runs} runs`,
);
