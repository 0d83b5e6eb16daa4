// /link on a new browser: make this browser's keys, show a QR (rotated before it expires)
// and a check code, wait for the primary's approval, check the provisioning payload covers
// our own key and link id, answer with our device signature, redeem the one-time token.
// DESIGN section 4 and 7 (Linking); docs/protocol.md section 13.

import {
  X25519KeyPair,
  LinkCode,
  frames,
  linkCheckCode,
  linkUrl,
  openProvisioning,
  signDevice,
  signLinkToken,
  SPOKEN_PROTOCOLS,
  strictjson,
  systemRng,
} from "../protocol/index.js";
import { ApiError, request } from "./api.js";
import {
  acceptDeviceList,
  b64uDecode,
  b64uEncode,
  createDeviceKeys,
  describePlatform,
  prekeysUpload,
} from "./device.js";
import { drawQr } from "./qr.js";
import { getSelf, putSelf } from "./store.js";
import { byId, formatCheckCode, say } from "./ui.js";

const MAX_WAIT_MS = 10 * 60_000;
const POLL_MS = 3_000;

const views = [
  "link-existing",
  "link-waiting",
  "link-progress",
  "link-refused",
  "link-full",
  "link-generating",
];
/** @param {string} id */
function showView(id) {
  for (const view of views) byId(view).hidden = view !== id;
}

/**
 * @typedef {object} LinkSession
 * @property {string} linkId
 * @property {X25519KeyPair} ephemeral
 * @property {number} expiresAt ms
 * @property {WebSocket | null} socket
 * @property {"waiting"|"opening"|"signing"|"redeeming"|"done"|"dead"} phase
 * @property {import("../protocol/index.js").Provisioning | null} provisioning
 * @property {string} displayName
 */

/** @type {{deviceId: string, keys: any, nextPrekeyId: number, nextKemPrekeyId: number} | null} */
let device = null;
const name = describePlatform();
/** @type {LinkSession[]} */
let sessions = [];
/** @type {LinkSession | null} */
let current = null;
/** @type {LinkSession | null} */
let finishing = null;
let startedAt = 0;
let rotateTimer = 0;
let tickTimer = 0;
let pollTimer = 0;
let maxCompanions = 4;

function stopTimers() {
  clearTimeout(rotateTimer);
  clearInterval(tickTimer);
  clearInterval(pollTimer);
}

/** @param {LinkSession} session */
function closeSession(session) {
  session.phase = session.phase === "done" ? "done" : "dead";
  session.socket?.close();
  session.socket = null;
}

/** @param {LinkSession} session */
async function cancelSession(session) {
  closeSession(session);
  try {
    await request(`/api/link/${encodeURIComponent(session.linkId)}/cancel`, {
      method: "POST",
      body: {},
    });
  } catch {
    // an expired or used session needs no cancelling
  }
}

function stopAll() {
  stopTimers();
  for (const session of sessions) closeSession(session);
  finishing = null;
  current = null;
}

/** @param {string} text */
function refuse(text) {
  stopAll();
  byId("link-refused-text").textContent = text;
  showView("link-refused");
  byId("link-again").focus();
}

/** The primary found its account full: this browser cannot be linked until one is logged out. */
function accountFull() {
  stopAll();
  byId("link-full-text").textContent =
    `The account you scanned this code with already has ${maxCompanions} linked devices, the most it can have. Nothing was linked. On your phone, open Devices and log one of them out, then show a new code here.`;
  showView("link-full");
  byId("link-full-title").focus();
}

/** @param {string} text */
function progress(text) {
  byId("link-progress-step").textContent = text;
}

function tick() {
  if (!current || finishing) return;
  const left = Math.max(0, Math.round((current.expiresAt - Date.now()) / 1000));
  const text = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  byId("link-countdown").textContent =
    Date.now() - startedAt < MAX_WAIT_MS
      ? `A new code appears before this one expires (${text}).`
      : `This code expires in ${text}.`;
  if (left === 0) refuse("This code expired before it was approved. Nothing was linked.");
}

/** Open a link session and show its QR; the previous session stays valid until it expires. */
async function openSession() {
  const ephemeral = X25519KeyPair.generate(systemRng);
  const opened = await request("/api/link", {
    method: "POST",
    body: {
      device_id: device.deviceId,
      identity_key: b64uEncode(device.keys.identity.public),
      ephemeral_key: b64uEncode(ephemeral.public),
      name,
      platform: name,
    },
  });
  if (finishing) return;
  maxCompanions = opened.max_companions ?? maxCompanions;
  const ttlMs = opened.ttl_seconds * 1000;
  /** @type {LinkSession} */
  const session = {
    linkId: opened.link_id,
    ephemeral,
    expiresAt: Date.now() + ttlMs,
    socket: null,
    phase: "waiting",
    provisioning: null,
    displayName: "",
  };
  sessions = sessions.filter((s) => s.phase !== "dead" && s.expiresAt > Date.now());
  sessions.push(session);
  current = session;
  watch(session);
  show(session);
  // Sessions that expired are dropped; one scanned a moment ago still works.
  for (const old of sessions) {
    if (old !== session) setTimeout(() => closeSession(old), Math.max(0, old.expiresAt - Date.now()));
  }
  clearTimeout(rotateTimer);
  if (Date.now() - startedAt < MAX_WAIT_MS) {
    const rotateIn = Math.max(ttlMs - 20_000, ttlMs * 0.75);
    rotateTimer = window.setTimeout(() => {
      openSession().catch((error) => refuse(messageOf(error)));
    }, rotateIn);
  }
}

/** @param {LinkSession} session */
function show(session) {
  const identityKey = device.keys.identity.public;
  const url = linkUrl(
    location.origin,
    new LinkCode({ linkId: session.linkId, identityKey, ephemeralKey: session.ephemeral.public }),
  );
  const qr = byId("link-qr");
  qr.dataset.url = url;
  qr.dataset.linkId = session.linkId;
  drawQr(/** @type {HTMLCanvasElement} */ (byId("link-qr-canvas")), url);
  /** @type {HTMLInputElement} */ (byId("link-url")).value = url;
  byId("link-check-code").textContent = formatCheckCode(
    linkCheckCode({
      linkId: session.linkId,
      companionIdentityKey: identityKey,
      ephemeralKey: session.ephemeral.public,
    }),
  );
  showView("link-waiting");
  tick();
}

/** @param {LinkSession} session */
function watch(session) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(
    `${scheme}://${location.host}/ws/link/${encodeURIComponent(session.linkId)}/`,
  );
  session.socket = socket;
  socket.addEventListener("message", (event) => {
    try {
      const frame = strictjson.parseJson(event.data, { maxBytes: 64 * 1024 });
      if (frame?.type === frames.LINK_STATE) onState(session, frame.state);
    } catch {
      // ignore a frame we cannot read
    }
  });
  socket.addEventListener("close", () => {
    // The socket is only a doorbell: reconnect while the session is still in play.
    if (session.socket === socket && session.phase !== "dead" && session.phase !== "done") {
      session.socket = null;
      setTimeout(() => {
        if (session.phase !== "dead" && session.phase !== "done" && !session.socket) watch(session);
      }, 1000);
    }
  });
}

/** @param {LinkSession} session @param {string} state */
function onState(session, state) {
  if (session.phase === "dead" || session.phase === "done") return;
  if (finishing && finishing !== session) return;
  if (state === "approved" && session.phase === "waiting") {
    approved(session).catch((error) => fail(session, error));
  } else if (state === "linked" && session.phase === "signing") {
    redeem(session).catch((error) => fail(session, error));
  } else if (state === "account_full") {
    accountFull();
  } else if (state === "cancelled" && (session === current || session === finishing)) {
    refuse("This link request was cancelled or declined on your phone. Nothing was linked.");
  } else if (state === "expired" && (session === current || session === finishing)) {
    refuse("This code expired before it was approved. Nothing was linked.");
  }
}

/** @param {unknown} error */
function messageOf(error) {
  if (error instanceof ApiError) return error.message;
  return `Something went wrong: ${/** @type {any} */ (error)?.message ?? error}`;
}

/** @param {LinkSession} session @param {unknown} error */
function fail(session, error) {
  if (session.phase === "dead") return;
  refuse(messageOf(error));
}

/** @param {LinkSession} session */
async function approved(session) {
  session.phase = "opening";
  finishing = session;
  stopTimers();
  for (const other of sessions) if (other !== session) cancelSession(other);
  showView("link-progress");
  byId("link-progress-title").textContent = "Approved on your phone";
  progress("Checking the approval…");
  const status = await request(`/api/link/${encodeURIComponent(session.linkId)}`);
  let provisioning;
  try {
    provisioning = openProvisioning(b64uDecode(status.provisioning), {
      ephemeral: session.ephemeral,
      ownIdentityKey: device.keys.identity.public,
      linkId: session.linkId,
    });
  } catch {
    await cancelSession(session);
    refuse(
      "The approval was not signed for this browser's key and this code, so it was refused. Nothing was linked. Show a new code and scan it again.",
    );
    return;
  }
  session.provisioning = provisioning;
  session.displayName = status.account_display_name || provisioning.accountId;
  byId("link-progress-title").textContent = `Linking to ${session.displayName}`;
  progress("Signing this device into the account…");
  session.phase = "signing";
  const signature = signDevice(device.keys.identity, {
    accountId: provisioning.accountId,
    accountKey: provisioning.accountKey,
    protocols: SPOKEN_PROTOCOLS, // the versions this device speaks (docs/protocol.md 27.5)
  });
  const answer = await request(`/api/link/${encodeURIComponent(session.linkId)}/device-signature`, {
    method: "POST",
    body: {
      device_signature: b64uEncode(signature),
      ...prekeysUpload(device.keys),
    },
  });
  progress("Waiting for your phone to publish the new device list…");
  if (answer.state === "linked") await redeem(session);
  else pollUntilLinked(session);
}

/** @param {LinkSession} session */
function pollUntilLinked(session) {
  clearInterval(pollTimer);
  pollTimer = window.setInterval(async () => {
    if (session.phase !== "signing") {
      clearInterval(pollTimer);
      return;
    }
    try {
      const status = await request(`/api/link/${encodeURIComponent(session.linkId)}`);
      onState(session, status.state);
    } catch (error) {
      clearInterval(pollTimer);
      fail(session, error);
    }
  }, POLL_MS);
}

/** @param {LinkSession} session */
async function redeem(session) {
  session.phase = "redeeming";
  clearInterval(pollTimer);
  progress("Signing in…");
  const status = await request(`/api/link/${encodeURIComponent(session.linkId)}`);
  const signature = signLinkToken(device.keys.identity, {
    nonce: b64uDecode(status.token_nonce, { length: 32, what: "token nonce" }),
    linkId: session.linkId,
  });
  const redeemed = await request(`/api/link/${encodeURIComponent(session.linkId)}/redeem`, {
    method: "POST",
    body: { signature: b64uEncode(signature) },
  });
  const provisioning = /** @type {any} */ (session.provisioning);
  const accountId = provisioning.accountId;
  if (redeemed.account?.username !== accountId || redeemed.device_id !== device.deviceId) {
    refuse("The server signed this browser into another account than the one that approved it.");
    return;
  }
  // Check the published list names this browser under the account key that approved it.
  const { device_list: listJson } = await request("/api/devices");
  let list;
  try {
    list = await acceptDeviceList(listJson, { accountId, accountKey: provisioning.accountKey });
  } catch (error) {
    refuse(`${error.message} This browser was not linked.`);
    return;
  }
  const entry = list.entry(device.deviceId);
  if (!entry || b64uEncode(entry.identityKey) !== b64uEncode(device.keys.identity.public)) {
    refuse("The new device list does not name this browser's key. This browser was not linked.");
    return;
  }
  await putSelf({
    deviceId: device.deviceId,
    keys: device.keys.toJSON(),
    nextPrekeyId: device.nextPrekeyId,
    nextKemPrekeyId: device.nextKemPrekeyId,
    accountId,
    displayName: redeemed.account.display_name || session.displayName,
    isPrimary: false,
    // The server keeps names distinct within the account ("Laptop 2"): its name is the one.
    name: typeof redeemed.name === "string" && redeemed.name ? redeemed.name : name,
    // The primary chose to send its history: accept one bundle key, from it (history.js).
    awaitingHistory: status.send_history === true,
  });
  session.phase = "done";
  closeSession(session);
  progress("Linked. Opening your devices…");
  location.assign("/devices");
}

async function start() {
  stopTimers();
  sessions.forEach(closeSession);
  sessions = [];
  finishing = null;
  say(byId("link-message"), "info", "");
  showView("link-generating");
  startedAt = Date.now();
  try {
    device ??= await createDeviceKeys();
    await openSession();
    tickTimer = window.setInterval(tick, 1000);
  } catch (error) {
    refuse(messageOf(error));
  }
}

byId("link-again").addEventListener("click", () => start());
byId("link-full-again").addEventListener("click", () => start());
byId("link-cancel").addEventListener("click", async () => {
  const open = [...sessions];
  refuse("You cancelled linking. Nothing was linked.");
  await Promise.all(open.map(cancelSession));
});

async function main() {
  const self = await getSelf();
  if (self) {
    byId("link-existing-account").textContent = self.displayName || self.accountId;
    byId("link-title").textContent = "This browser is already linked";
    byId("link-lede").hidden = true;
    showView("link-existing");
    return;
  }
  await start();
}

main();
