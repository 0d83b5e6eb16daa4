// The page title with the device's total unread count, "(3) Chats · Parley", in every tab,
// recounted whenever messages or read state change (events.js tells every tab). Muted and
// archived conversations do not count: the title counts what would raise a notification.

import { Change, changes } from "./events.js";
import * as store from "./store.js";
import { titleWithUnread } from "./wording.js";

/** @type {string | null} */
let base = null;
let unread = 0;
let started = false;

function render() {
  document.title = titleWithUnread(base ?? document.title, unread);
}

/** The page's own title; the unread count goes in front of it. @param {string} title */
export function setTitle(title) {
  base = title;
  render();
}

async function recount() {
  const conversations = await store.readAll("conversations");
  unread = conversations.reduce((sum, c) => sum + (c.unread > 0 && !c.muted && !c.archived ? c.unread : 0), 0);
  render();
}

/** Keep the count in this tab's title (call on every signed-in page with a device). */
export function startUnreadTitle() {
  if (started) return;
  started = true;
  base ??= document.title;
  const update = () => recount().catch(() => {});
  changes.addEventListener("change", (event) => {
    const kind = /** @type {CustomEvent} */ (event).detail?.kind;
    if (kind === Change.MESSAGES || kind === Change.FLAGS) update();
  });
  update();
}
