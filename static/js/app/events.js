// What changed, told to every tab of this browser: pages listen to `changes` and re-read
// IndexedDB. Several tabs are one device; a tab that is not the leader (socket.js) rings the
// leader's outbox over the same BroadcastChannel.

/** The kinds of change (the `kind` of a change's detail), named once. */
export const Change = Object.freeze({
  CONTACTS: "contacts",
  MESSAGES: "messages",
  SETTINGS: "settings",
  HISTORY: "history",
  /** The account's display name changed (account.js). */
  ACCOUNT: "account",
  /** A conversation was pinned, archived or muted, or an account blocked (flags.js): {peer}. */
  FLAGS: "flags",
  /** The account's synced state was read or written: {refused: [error, message] | null}. */
  SYNC: "sync",
  /** An outbox item was sent or failed: {envelopeId, ok, reason}. */
  OUTBOX_DONE: "outbox-done",
  /** A group's record or conversation changed (groups.js): {group}. */
  GROUPS: "groups",
});

/** A tab asks the leader to send what it put in the outbox (never dispatched as a change). */
const OUTBOX_RING = "outbox";

/** Fires "change" with detail {kind, peer?, ...} in every tab of this browser. */
export const changes = new EventTarget();
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("parley-messenger");
let outboxRung = () => {};
channel?.addEventListener("message", (event) => {
  const detail = event.data;
  if (detail?.kind === OUTBOX_RING) {
    outboxRung();
    return;
  }
  changes.dispatchEvent(new CustomEvent("change", { detail }));
});

/** Tell every tab of this browser that something changed. @param {Record<string, any>} detail */
export function notify(detail) {
  changes.dispatchEvent(new CustomEvent("change", { detail }));
  channel?.postMessage(detail);
}

/** Ring the outbox of the other tabs (the leader among them sends). */
export function ringOtherTabs() {
  channel?.postMessage({ kind: OUTBOX_RING });
}

/** What to do when another tab rings the outbox (outbox.js). @param {() => void} handler */
export function onOutboxRung(handler) {
  outboxRung = handler;
}
