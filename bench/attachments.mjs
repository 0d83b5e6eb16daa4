// Sealing and opening a file in node, in the 1 MiB pieces the web app reads from a File: the
// mirror of bench/attachments.py's crypto over static/js/protocol/attachments.js (docs/protocol.md
// 26). Run: node bench/attachments.mjs [MB ...] (default 5 25)
import * as p from "../static/js/protocol/index.js";

await p.ready();

const { attachments } = p;
const PIECE = 1024 * 1024;
const sizes = process.argv.slice(2).map(Number).filter(Boolean);

/** @param {number} mb */
function run(mb) {
  const file = p.systemRng(mb * 1_000_000);
  let start = process.hrtime.bigint();
  const sealer = new attachments.AttachmentSealer(file.length, p.systemRng);
  const parts = [sealer.header];
  for (let offset = 0; offset < file.length; offset += PIECE) parts.push(sealer.push(file.subarray(offset, offset + PIECE)));
  const sealed = sealer.finish();
  const seal = Number(process.hrtime.bigint() - start) / 1e6;
  const blob = p.encoding.concatBytes(...parts);
  const pointer = new attachments.AttachmentPointer({ blobId: "A".repeat(22), ...sealed, type: "application/octet-stream", name: "f.bin" });
  start = process.hrtime.bigint();
  const opener = new attachments.AttachmentOpener(pointer);
  for (let offset = 0; offset < blob.length; offset += PIECE) opener.pull(blob.subarray(offset, offset + PIECE));
  opener.finish();
  const open = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(`| ${mb} MB | ${seal.toFixed(0)} ms | ${(mb / (seal / 1000)).toFixed(1)} | ${open.toFixed(0)} ms | ${(mb / (open / 1000)).toFixed(1)} |`);
}

console.log("| file | seal (node) | MB/s | open (node) | MB/s |");
console.log("|---:|---:|---:|---:|---:|");
for (const mb of sizes.length ? sizes : [5, 25]) for (let i = 0; i < 3; i++) run(mb);
