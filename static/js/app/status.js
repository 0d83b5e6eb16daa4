// The footer status line: a ping over the public status socket, echoed through the channel layer.
// Reconnects with capped exponential backoff so a server restart heals by itself.

import { parseJson } from "../protocol/encoding.js";

const el = document.getElementById("status");
const PING_EVERY_MS = 25_000;

/** @param {"connecting"|"online"|"offline"} state @param {string} text */
function show(state, text) {
  if (!el) return;
  el.dataset.state = state;
  el.textContent = text;
}

let attempt = 0;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/status/`);
  let timer = 0;
  const pending = new Map();

  const ping = () => {
    const id = crypto.randomUUID();
    pending.set(id, performance.now());
    socket.send(JSON.stringify({ type: "ping", v: 1, id }));
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
    if (frame?.type === "pong" && pending.has(frame.id)) {
      const ms = Math.round(performance.now() - pending.get(frame.id));
      pending.delete(frame.id);
      show("online", `Connected · realtime round trip ${ms} ms`);
    }
  });
  socket.addEventListener("close", () => {
    clearInterval(timer);
    const delay = Math.min(30_000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
    show("offline", `Offline · retrying in ${Math.ceil(delay / 1000)} s`);
    setTimeout(connect, delay);
  });
}

connect();
