// The device socket of a signed-in page: account notices ("new device linked"), revocation
// (close 4001: wipe and show "logged out"), a ping every 25 s that keeps "active now" fresh,
// and reconnection with capped exponential backoff.

import { ApiError, api, deviceRevoked } from "./api.js";
import { h, noticesRegion } from "./ui.js";

const PING_EVERY_MS = 25_000;
const CLOSE_REVOKED = 4001;
const CLOSE_UNAUTHENTICATED = 4003;

/** @type {Set<(frame: any) => void>} */
const listeners = new Set();
let started = false;
let attempt = 0;
/** @type {WebSocket | null} */
let current = null;

/** @param {"connecting"|"open"|"closed"|"revoked"} state */
function mark(state) {
  document.documentElement.dataset.deviceSocket = state;
}

/** Subscribe to every frame of the device socket. @param {(frame: any) => void} listener */
export function onDeviceFrame(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** @param {string} name */
function showLinkedNotice(name) {
  const region = noticesRegion();
  const close = h("button", {
    class: "link-button",
    text: "Dismiss",
    attrs: { type: "button", "aria-label": "Dismiss this notice" },
  });
  const notice = h(
    "div",
    { class: "notice warn account-notice", attrs: { role: "status" } },
    h("strong", { text: "New device linked: " }),
    h("span", { class: "notice-device", text: name || "unnamed device" }),
    " — not you? ",
    h("a", { text: "Remove it", attrs: { href: "/devices" } }),
    " ",
    close,
  );
  close.addEventListener("click", () => notice.remove());
  region.append(notice);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/device/`);
  current = socket;
  mark("connecting");
  let timer = 0;

  socket.addEventListener("open", () => {
    attempt = 0;
    mark("open");
    timer = window.setInterval(() => {
      socket.send(JSON.stringify({ type: "ping", v: 1, id: crypto.randomUUID() }));
    }, PING_EVERY_MS);
  });

  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "revoked") {
      mark("revoked");
      socket.close();
      deviceRevoked(frame.reason);
      return;
    }
    if (frame.type === "devices_changed" && frame.reason === "linked") {
      showLinkedNotice(frame.device_name);
    }
    for (const listener of listeners) listener(frame);
  });

  socket.addEventListener("close", async (event) => {
    clearInterval(timer);
    if (current === socket) current = null;
    if (event.code === CLOSE_REVOKED || document.documentElement.dataset.deviceSocket === "revoked") {
      mark("revoked");
      return;
    }
    mark("closed");
    if (event.code === CLOSE_UNAUTHENTICATED) {
      // The session may have expired: one API call signs back in with the device key.
      try {
        await api("/api/me");
      } catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          started = false;
          return;
        }
      }
    }
    const delay = Math.min(30_000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
    window.setTimeout(connect, delay);
  });
}

/** Open the device socket once per page (idempotent). */
export function startDeviceSocket() {
  if (started) return;
  started = true;
  connect();
}

/** Close the socket for good (this device logged itself out). */
export function stopDeviceSocket() {
  mark("revoked");
  current?.close();
}
