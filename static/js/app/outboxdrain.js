// When the outbox is sent (outbox.js): one drain at a time in the leader tab. A ring while a
// drain runs makes that drain go round once more instead of starting a second one, so an item
// queued while the last one was being read is never left behind.

/** @typedef {"idle" | "draining" | "draining_then_again"} DrainState */

export class OutboxDrain {
  /** @type {DrainState} */
  state = "idle";

  /** Someone wants the outbox sent. True when the caller must start a drain now. */
  ring() {
    if (this.state === "idle") {
      this.state = "draining";
      return true;
    }
    this.state = "draining_then_again";
    return false;
  }

  /** The drain found the outbox empty. True when it must go round again (it was rung). */
  emptied() {
    if (this.state === "draining_then_again") {
      this.state = "draining";
      return true;
    }
    this.state = "idle";
    return false;
  }

  /** The drain stopped before the outbox was empty (no socket, a failure): a later ring or timer starts the next. */
  stopped() {
    this.state = "idle";
  }
}
