// libsodium's deterministic ML-KEM-768 encapsulation, for tests/vectors/generate_pq.py, which
// cannot encapsulate reproducibly in Python (docs/protocol.md 27.2, 27.7). Reads
// [{public_key, m}] (hex) as JSON on stdin, writes [{ciphertext, shared}] (hex).
import { readFileSync } from "node:fs";

import * as p from "../../static/js/protocol/index.js";

await p.ready();
const requests = JSON.parse(readFileSync(0, "utf8"));
const answers = requests.map((/** @type {{public_key: string, m: string}} */ r) => {
  const [ciphertext, shared] = p.primitives.mlkem768Encapsulate(p.encoding.fromHex(r.public_key), () =>
    p.encoding.fromHex(r.m),
  );
  return { ciphertext: p.encoding.toHex(ciphertext), shared: p.encoding.toHex(shared) };
});
process.stdout.write(JSON.stringify(answers));
