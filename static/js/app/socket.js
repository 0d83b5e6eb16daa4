// The device socket of a signed-in page: account notices ("new device … linked"), revocation
// (close 4001: wipe and show "logged out"), a ping every 25 s that keeps "active now" fresh,
// and reconnection with capped exponential backoff.

import * as frames from "../protocol/frames.js";
import { isPlainObject, parseJson } from "../protocol/strictjson.js";
import { accountRenamed } from "./account.js";
import { ApiError, api, deviceRevoked } from "./api.js";
import { refreshNewDevices } from "./newdevices.js";

const PING_EVERY_MS = 25_000;
// A deliver frame holds up to 100 envelopes of up to 66 KiB of ciphertext each.
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

const LEADER_LOCK = "parley-device-socket";
const RELAY = "parley-device-frames";

/** @type {Set<(frame: any) => void>} */
const listeners = new Set();
/** @type {Set<() => void>} */
const openListeners = new Set();
/** @type {Set<() => void>} */
const closeListeners = new Set();
/** @type {Set<() => void>} */
const leaderListeners = new Set();
let started = false;
let leader = false;
/** @type {BroadcastChannel | null} */
let relay = null;
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

/** Called each time the leader's socket opens (after a reconnect too). @param {() => void} listener */
export function onSocketOpen(listener) {
  openListeners.add(listener);
  return () => openListeners.delete(listener);
}

/** Called each time the leader's socket closes, whatever the reason. @param {() => void} listener */
export function onSocketClose(listener) {
  closeListeners.add(listener);
  return () => closeListeners.delete(listener);
}

/** Called once, when this tab becomes the leader that owns the socket. @param {() => void} listener */
export function onLeader(listener) {
  if (leader) listener();
  else leaderListeners.add(listener);
}

/** Whether this tab owns the device socket. */
export function isLeader() {
  return leader;
}

/** Whether this tab's device socket is open now (only the leader's ever is). */
export function socketOpen() {
  return current?.readyState === WebSocket.OPEN;
}

/**
 * Send a frame on the device socket; false when this tab is not the leader or it is closed.
 * @param {Record<string, any>} frame
 */
export function sendFrame(frame) {
  if (!current || current.readyState !== WebSocket.OPEN) return false;
  current.send(JSON.stringify({ v: frames.PROTOCOL_VERSION, ...frame }));
  return true;
}

/** @param {any} frame */
function dispatch(frame) {
  if (frame.type === frames.REVOKED) {
    mark("revoked");
    deviceRevoked(frame.reason);
    return;
  }
  if (frame.type === frames.DEVICES_CHANGED && frame.reason !== "list_published") {
    refreshNewDevices();
  }
  if (frame.type === frames.ACCOUNT_RENAMED) {
    accountRenamed(frame).catch((error) => console.warn("Parley: the new display name was not kept", error));
  }
  for (const listener of listeners) listener(frame);
}

function lead() {
  leader = true;
  for (const listener of leaderListeners) listener();
  leaderListeners.clear();
  connect();
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
    for (const listener of openListeners) listener();
    timer = window.setInterval(() => {
      socket.send(JSON.stringify({ type: frames.PING, v: frames.PROTOCOL_VERSION, id: crypto.randomUUID() }));
    }, PING_EVERY_MS);
  });

  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = parseJson(event.data, { maxBytes: MAX_FRAME_BYTES });
    } catch (error) {
      console.warn("Parley: skipped a frame from the server", error);
      return;
    }
    if (!isPlainObject(frame)) return;
    if (frame.type === frames.REVOKED) {
      mark("revoked");
      socket.close();
    }
    relay?.postMessage(frame);
    dispatch(frame);
  });

  socket.addEventListener("close", async (event) => {
    clearInterval(timer);
    if (current === socket) current = null;
    for (const listener of closeListeners) listener();
    if (event.code === frames.CLOSE_REVOKED || document.documentElement.dataset.deviceSocket === "revoked") {
      mark("revoked");
      return;
    }
    mark("closed");
    if (event.code === frames.CLOSE_UNAUTHENTICATED) {
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
  // A device that was away when another one was linked still shows "New device…".
  refreshNewDevices();
  if (!("locks" in navigator) || typeof BroadcastChannel === "undefined") {
    lead();
    return;
  }
  relay = new BroadcastChannel(RELAY);
  relay.addEventListener("message", (event) => {
    if (!leader) dispatch(event.data);
  });
  mark("connecting");
  // Held until the tab closes; the next tab in line then takes over the socket.
  navigator.locks.request(LEADER_LOCK, () => {
    lead();
    return new Promise(() => {});
  });
}

/** Close the socket for good (this device logged itself out). */
export function stopDeviceSocket() {
  mark("revoked");
  current?.close();
}
