// The outbox's drain state (static/js/app/outboxdrain.js): one drain at a time, and a ring
// during a drain is never lost.
import assert from "node:assert/strict";
import { test } from "node:test";

import { OutboxDrain } from "../../static/js/app/outboxdrain.js";

test("the first ring starts a drain; rings while it runs only make it go round once more", () => {
  const drain = new OutboxDrain();
  assert.equal(drain.ring(), true);
  assert.equal(drain.ring(), false);
  assert.equal(drain.ring(), false);
  assert.equal(drain.state, "draining_then_again");
  assert.equal(drain.emptied(), true); // an item queued during the read is sent
  assert.equal(drain.emptied(), false);
  assert.equal(drain.state, "idle");
  assert.equal(drain.ring(), true);
});

test("a drain that stops early leaves the outbox to the next ring", () => {
  const drain = new OutboxDrain();
  drain.ring();
  drain.ring();
  drain.stopped(); // no socket: the retry timer or the socket's open rings again
  assert.equal(drain.state, "idle");
  assert.equal(drain.ring(), true);
});

test("a drain rung while running goes round again, rung no more it stops", () => {
  const drain = new OutboxDrain();
  const rounds = [];
  drain.ring();
  let round = 0;
  do {
    round += 1;
    rounds.push(round);
    if (round === 1) drain.ring();
  } while (drain.emptied());
  assert.deepEqual(rounds, [1, 2]);
  assert.equal(drain.state, "idle");
});
