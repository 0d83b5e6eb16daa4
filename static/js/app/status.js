// The footer status line: a ping over the public status socket, echoed through the channel layer.
// Reconnects with capped exponential backoff so a server restart heals by itself. Once this
// device is logged out it says so and stops: a cut-off device is not "Connected".

import { REVOKED_EVENT } from "./api.js";

import * as frames from "../protocol/frames.js";
import { parseJson } from "../protocol/strictjson.js";

const el = document.getElementById("status");
const PING_EVERY_MS = 25_000;

/** @type {WebSocket | null} */
let current = null;
let loggedOut = false;

/** @param {"connecting"|"online"|"offline"|"logged-out"} state @param {string} text */
function show(state, text) {
  if (!el || loggedOut) return;
  el.dataset.state = state;
  el.textContent = text;
}

window.addEventListener(REVOKED_EVENT, () => {
  show("logged-out", "Logged out · this device no longer connects to Parley");
  loggedOut = true;
  current?.close();
});

let attempt = 0;

function connect() {
  if (loggedOut) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/status/`);
  current = socket;
  let timer = 0;
  const pending = new Map();

  const ping = () => {
    const id = crypto.randomUUID();
    pending.set(id, performance.now());
    socket.send(JSON.stringify({ type: frames.PING, v: frames.PROTOCOL_VERSION, id }));
  };

  socket.addEventListener("open", () => {
    attempt = 0;
    ping();
    timer = setInterval(ping, PING_EVERY_MS);
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = parseJson(event.data, { maxBytes: 64 * 1024 });
    } catch {
      return;
    }
    if (frame?.type === frames.PONG && pending.has(frame.id)) {
      const ms = Math.round(performance.now() - pending.get(frame.id));
      pending.delete(frame.id);
      show("online", `Connected · realtime round trip ${ms} ms`);
    }
  });
  socket.addEventListener("close", () => {
    clearInterval(timer);
    if (loggedOut) return;
    const delay = Math.min(30_000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
    show("offline", `Offline · retrying in ${Math.ceil(delay / 1000)} s`);
    setTimeout(connect, delay);
  });
}

connect();
