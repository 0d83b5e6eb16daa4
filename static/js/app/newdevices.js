// "New device ‹name› linked at ‹time› from ‹platform›. Not you? Remove it": shown on every
// device of the account that may still remove the new one (the veto window; the server says
// until when in `veto_until`, docs/protocol.md section 19).

import { api } from "./api.js";
import { formatDate, formatTime, h, noticesRegion } from "./ui.js";

/** @type {((device: any) => Promise<void>) | null} */
let remover = null;
/** @type {any[]} */
let shown = [];
const dismissed = new Set();
let timer = 0;

/**
 * The devices page removes in place; elsewhere "Remove it" opens the devices page.
 * @param {(device: any) => Promise<void>} remove
 */
export function setRemover(remove) {
  remover = remove;
  showNewDevices(shown);
}

/** Fetch this account's devices and show their notices (any signed-in page). */
export async function refreshNewDevices() {
  try {
    showNewDevices((await api("/api/devices")).devices);
  } catch {
    // the next page load or device change tries again
  }
}

/** @param {Date} when */
function linkedAt(when) {
  const today = new Date().toDateString() === when.toDateString();
  return today ? formatTime(when) : `${formatTime(when)} on ${formatDate(when)}`;
}

/** @param {any} device */
function notice(device) {
  const name = device.name || "Unnamed device";
  const textId = `new-device-${device.device_id}`;
  const close = h("button", {
    class: "link-button",
    text: "Dismiss",
    attrs: { type: "button", "aria-label": `Dismiss the notice about ${name}` },
  });
  const from = device.platform ? ` from ${device.platform}` : "";
  const node = h(
    "div",
    {
      class: "notice warn account-notice new-device-notice",
      attrs: { role: "status", "data-device-id": device.device_id },
    },
    h(
      "p",
      {},
      h(
        "span",
        { attrs: { id: textId } },
        "New device ",
        h("strong", { class: "notice-device", text: name }),
        ` linked at ${linkedAt(new Date(device.added_at))}${from}.`,
      ),
      " Not you?",
    ),
    " ",
    h(
      "div",
      { class: "new-device-actions" },
      remover
        ? removeButton(device, textId)
        : h("a", { text: "Remove it", attrs: { href: "/devices", "aria-describedby": textId } }),
      " ",
      close,
    ),
  );
  close.addEventListener("click", () => {
    dismissed.add(device.device_id);
    node.remove();
  });
  return node;
}

/** @param {any} device @param {string} textId */
function removeButton(device, textId) {
  const button = h("button", {
    class: "secondary danger-outline",
    text: "Remove it",
    attrs: { type: "button", "aria-describedby": textId },
  });
  button.addEventListener("click", () => remover?.(device));
  return button;
}

/**
 * Show one notice per device still in its veto window (and hide them when it ends).
 * @param {any[]} devices entries of GET /api/devices
 */
export function showNewDevices(devices) {
  shown = devices.filter((d) => d.veto_until && Date.parse(d.veto_until) > Date.now());
  const region = noticesRegion();
  for (const old of region.querySelectorAll(".new-device-notice")) old.remove();
  region.append(...shown.filter((d) => !dismissed.has(d.device_id)).map(notice));
  clearTimeout(timer);
  if (shown.length) {
    const next = Math.min(...shown.map((d) => Date.parse(d.veto_until)));
    timer = window.setTimeout(() => showNewDevices(shown), Math.max(0, next - Date.now()) + 100);
  }
}
