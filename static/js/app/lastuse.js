// This device's last use, written by the device itself into the account's synced state
// (docs/protocol.md section 22.8), so the devices page of every own device shows it exactly
// while the server keeps only the day. This module only says when the device is in use: on
// load, when the page becomes visible, and each minute while it is; the sync machine decides
// when a write is due (at most every LAST_USE_EVERY_MS).

import { syncDeviceUsed } from "./sync.js";

const TICK_MS = 60_000;
let started = false;

function inUse() {
  if (document.visibilityState === "visible") syncDeviceUsed();
}

/** Start telling the sync machine that this device is in use (once per page). */
export function startLastUse() {
  if (started) return;
  started = true;
  inUse();
  document.addEventListener("visibilitychange", inUse);
  window.setInterval(inUse, TICK_MS);
}
