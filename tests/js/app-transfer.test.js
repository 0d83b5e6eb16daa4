// The words of a history transfer's progress (static/js/app/transfer.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { formatDuration, transferProgress } from "../../static/js/app/transfer.js";

test("messages moved are counted from the bytes moved, never beyond the bundle's count", () => {
  const at = (moved) => transferProgress({ moved, total: 1000, count: 33, elapsedMs: 1 }).messages;
  assert.deepEqual([at(0), at(364), at(999), at(1000), at(5000)], [0, 12, 32, 33, 33]);
});

test("the time left is shown only when it is more than a few seconds", () => {
  // 100 of 1000 bytes in 4 s: 36 s left
  assert.deepEqual(transferProgress({ moved: 100, total: 1000, count: 33, elapsedMs: 4000 }), {
    messages: 3,
    secondsLeft: 36,
    text: "3 of 33 messages · about 36 s left",
  });
  // 900 of 1000 bytes in 4 s: under half a second left
  assert.equal(
    transferProgress({ moved: 900, total: 1000, count: 33, elapsedMs: 4000 }).text,
    "29 of 33 messages",
  );
  // nothing moved yet: no rate to estimate from
  assert.equal(transferProgress({ moved: 0, total: 1000, count: 1, elapsedMs: 9000 }).text, "0 of 1 message");
});

test("without a count (a download resumed from an older state) only the time left is said", () => {
  const progress = transferProgress({ moved: 100, total: 1000, count: undefined, elapsedMs: 4000 });
  assert.equal(progress.messages, null);
  assert.equal(progress.text, "about 36 s left");
});

test("durations read as seconds, minutes, hours", () => {
  assert.deepEqual(
    [6, 89, 90, 600, 3600, 3900].map(formatDuration),
    ["6 s", "89 s", "2 min", "10 min", "1 h", "1 h 5 min"],
  );
});
