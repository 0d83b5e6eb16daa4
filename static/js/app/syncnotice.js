// The account sync's refusal, on whatever page is open: when the server's copy of the
// account's state did not check out (a change left out, replayed, forked...), the person
// reads why in plain words, and that this device kept what it had (docs/protocol.md 22.8).

import { Change, changes } from "./events.js";
import { lastRefusal } from "./sync.js";
import { h, noticesRegion } from "./ui.js";

/** @param {[string, string] | null} refused [error class, message] */
function render(refused) {
  const existing = document.getElementById("sync-refused");
  // a key still to come from an own device is no fault of the server's: nothing to say
  if (!refused || refused[0] === "SyncKeyUnknown") {
    existing?.remove();
    return;
  }
  const notice = existing ?? h("div", { class: "notice error", attrs: { id: "sync-refused", role: "alert" } });
  const [, message] = refused;
  notice.replaceChildren(
    h("p", {
      text: `Your contacts and settings were not updated from your other devices: ${message}. This device keeps what it had and will check again.`,
    }),
  );
  if (!existing) noticesRegion().append(notice);
}

/** Follow the account sync's refusals on this page. */
export function showSyncRefusal() {
  changes.addEventListener("change", (event) => {
    const detail = /** @type {CustomEvent} */ (event).detail;
    if (detail?.kind === Change.SYNC) render(detail.refused ?? null);
  });
  lastRefusal()
    .then(render)
    .catch(() => {});
}
