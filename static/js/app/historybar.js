// The progress of a history transfer, on whatever page is open on either device: a progress
// bar (role=progressbar with aria-valuenow) in the notices region, then the outcome.

import { Change, changes } from "./events.js";
import { h, noticesRegion } from "./ui.js";

/** @type {HTMLElement | null} */
let notice = null;

/** @param {{role: string, state: string, percent: number, text: string}} progress */
function render(progress) {
  const failed = progress.state === "failed";
  const done = progress.state === "done";
  if (!notice) {
    notice = h("div", { class: "notice history-notice", attrs: { id: "history-progress" } });
    noticesRegion().append(notice);
  }
  notice.className = `notice history-notice ${failed ? "error" : done ? "ok" : ""}`.trim();
  notice.dataset.state = progress.state;
  notice.dataset.role = progress.role;
  if (failed) notice.setAttribute("role", "alert");
  else notice.setAttribute("role", "status");
  const label = progress.role === "send" ? "Sending message history" : "Receiving message history";
  const bar = h("div", {
    class: "progress",
    attrs: {
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": String(progress.percent),
    },
  });
  bar.append(h("div", { class: `progress-fill p${Math.round(progress.percent / 5) * 5}` }));
  const close = h("button", {
    class: "link-button",
    text: "Dismiss",
    attrs: { type: "button", "aria-label": "Dismiss this notice" },
  });
  close.addEventListener("click", () => {
    notice?.remove();
    notice = null;
  });
  const actions = h(
    "div",
    { class: "row history-actions" },
    done && progress.role === "receive" && !location.pathname.startsWith("/chats")
      ? h("a", { text: "Open your chats", attrs: { href: "/chats" } })
      : null,
    done || failed ? close : null,
  );
  notice.replaceChildren(
    ...[
      h("p", { class: "history-text", text: progress.text }),
      failed ? null : bar,
      actions.childElementCount ? actions : null,
    ].filter((node) => node !== null),
  );
}

/** Follow history transfers of this device on this page. */
export function showHistoryProgress() {
  changes.addEventListener("change", (event) => {
    const detail = /** @type {CustomEvent} */ (event).detail;
    if (detail?.kind === Change.HISTORY) render(detail);
  });
}
