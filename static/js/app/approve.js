// /link/approve on the primary: scan the new device's QR (in-page camera) or open its URL,
// show the anti-phishing page, approve with a passkey whose challenge we recompute from the
// QR's own keys, seal the provisioning payload, check the new device's signature, and
// publish list v+1. DESIGN sections 4 and 7 (Linking).

import {
  DeviceEntry,
  LINK_PATH,
  linkChallenge,
  linkCheckCode,
  makeProvisioning,
  parseLinkUrl,
  sealProvisioning,
  deviceSignatureProtocols,
} from "../protocol/index.js";
import * as frames from "../protocol/frames.js";
import { ApiError, api } from "./api.js";
import { acceptDeviceList, b64uDecode, b64uEncode, loadKeys, nextDeviceList } from "./device.js";
import { PasskeyCancelled, getAssertion } from "./passkey.js";
import { onDeviceFrame, startDeviceSocket } from "./socket.js";
import { shareSyncKey } from "./sync.js";
import { getSelf } from "./store.js";
import { byId, formatCheckCode, formatTime, h, say, timeAgo } from "./ui.js";

const SIGNATURE_WAIT_MS = 120_000;

const views = ["approve-gate", "approve-scanner", "approve-request", "approve-done"];
/** @param {string} id */
function showView(id) {
  for (const view of views) byId(view).hidden = view !== id;
}

/**
 * A message instead of the page, with actions.
 * @param {string} title @param {string} text @param {{href: string, text: string}[]} actions
 */
function gate(title, text, actions = []) {
  stopCamera();
  byId("approve-gate-title").textContent = title;
  byId("approve-gate-text").textContent = text;
  byId("approve-gate-actions").replaceChildren(
    ...actions.map((a, i) =>
      h("a", { class: i ? "button secondary" : "button", text: a.text, attrs: { href: a.href } }),
    ),
  );
  showView("approve-gate");
}

const SCAN_AGAIN = { href: "/link/approve", text: "Scan another code" };
const DEVICES = { href: "/devices", text: "Your devices" };

/**
 * Said before the person names the device and approves (the server checks the cap again).
 * @param {number} max
 */
function accountFull(max) {
  gate(
    "Your account is full",
    `You can link up to ${max} devices, and all ${max} are in use. Log one out on your devices page, then show a new code on the new device.`,
    [{ href: "/devices", text: "Log a device out" }],
  );
}

/**
 * The link code of a URL of this site's approval page (the engine's parseLinkUrl), or null.
 * @param {string} url
 */
export function parseLink(url) {
  try {
    return parseLinkUrl(url, { origin: location.origin });
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ camera scanner

/** @type {MediaStream | null} */
let stream = null;
let scanTimer = 0;

function loadJsQR() {
  if (/** @type {any} */ (window).jsQR) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const plain = "/static/vendor/jsqr/jsQR.js";
    const map = document.querySelector('script[type="importmap"]');
    const { imports = {}, integrity: hashes = {} } = map ? JSON.parse(map.textContent || "{}") : {};
    const src = imports[plain] ?? plain;
    const integrity = hashes[src];
    const script = document.createElement("script");
    script.src = src;
    if (integrity) script.integrity = integrity;
    script.addEventListener("load", () => resolve(undefined));
    script.addEventListener("error", () => reject(new Error("The QR reader did not load.")));
    document.head.append(script);
  });
}

function stopCamera() {
  clearTimeout(scanTimer);
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  const video = /** @type {HTMLVideoElement} */ (byId("scan-video"));
  video.srcObject = null;
  video.hidden = true;
  byId("scan-placeholder").hidden = false;
  byId("scan-start").hidden = false;
  byId("scan-stop").hidden = true;
}

async function startCamera() {
  const status = byId("scan-status");
  status.textContent = "Starting the camera…";
  try {
    await loadJsQR();
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment" },
      audio: false,
    });
  } catch (error) {
    const name = /** @type {any} */ (error)?.name;
    status.textContent =
      name === "NotAllowedError"
        ? "Camera access was refused. Allow the camera for this site, or open the link shown under the QR code on the new device."
        : `The camera could not start: ${/** @type {any} */ (error)?.message ?? error}`;
    return;
  }
  const video = /** @type {HTMLVideoElement} */ (byId("scan-video"));
  video.srcObject = stream;
  video.hidden = false;
  byId("scan-placeholder").hidden = true;
  byId("scan-start").hidden = true;
  byId("scan-stop").hidden = false;
  await video.play();
  status.textContent = "Point the camera at the QR code on the new device.";
  const canvas = document.createElement("canvas");
  const ctx = /** @type {CanvasRenderingContext2D} */ (
    canvas.getContext("2d", { willReadFrequently: true })
  );
  const scan = () => {
    if (!stream) return;
    if (video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      ctx.drawImage(video, 0, 0);
      const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      const code = /** @type {any} */ (window).jsQR(data, width, height, {
        inversionAttempts: "dontInvert",
      });
      if (code?.data) {
        if (parseLink(code.data)) {
          stopCamera();
          status.textContent = "Code found.";
          location.hash = new URL(code.data).hash;
          return;
        }
        status.textContent = "That QR code is not a Parley link code for this site. Keep looking.";
      }
    }
    scanTimer = window.setTimeout(scan, 120);
  };
  scan();
}

byId("scan-start").addEventListener("click", () => startCamera());
byId("scan-stop").addEventListener("click", () => {
  stopCamera();
  byId("scan-status").textContent = "";
});

// ------------------------------------------------------------------ approval

/** @type {{self: any, fragment: any, detail: any} | null} */
let pending = null;

/** @param {string} text */
function approveError(text) {
  say(byId("approve-message"), "error", text);
  /** @type {HTMLButtonElement} */ (byId("approve-submit")).disabled = false;
}

/** @param {any} self @param {{linkId: string, identityKey: Uint8Array, ephemeralKey: Uint8Array}} fragment */
async function showRequest(self, fragment) {
  let detail;
  try {
    detail = await api(`/api/link/${encodeURIComponent(fragment.linkId)}/detail`);
  } catch (error) {
    if (error instanceof ApiError) {
      gate("This link can't be approved", error.message, [SCAN_AGAIN, DEVICES]);
      return;
    }
    throw error;
  }
  if (detail.account_full && detail.state === "waiting") {
    accountFull(detail.max_companions);
    // The new browser is not signed in: its link request is what tells it.
    await api(`/api/link/${encodeURIComponent(fragment.linkId)}/decline`, {
      method: "POST",
      body: { account_full: true },
    }).catch(() => {});
    return;
  }
  if (detail.state !== "waiting") {
    gate(
      "This link can't be approved",
      "This link request was already approved or used. Show a new QR code on the new device.",
      [SCAN_AGAIN, DEVICES],
    );
    return;
  }
  pending = { self, fragment, detail };
  byId("approve-platform").textContent = detail.platform || "Unknown device";
  const started = new Date(detail.created_at);
  byId("approve-started").textContent = `${formatTime(started)} (${timeAgo(started)})`;
  byId("approve-check-code").textContent = formatCheckCode(
    linkCheckCode({
      linkId: fragment.linkId,
      companionIdentityKey: fragment.identityKey,
      ephemeralKey: fragment.ephemeralKey,
    }),
  );
  /** @type {HTMLInputElement} */ (byId("approve-name")).value = detail.name || "";
  /** @type {HTMLInputElement} */ (byId("approve-history")).checked = false;
  say(byId("approve-message"), "info", "");
  /** @type {HTMLButtonElement} */ (byId("approve-submit")).disabled = false;
  showView("approve-request");
}

/** Resolve with the new device's signature once it has answered (socket frame or polling). */
function waitForDeviceSignature(linkId) {
  return new Promise((resolve, reject) => {
    let done = false;
    let timer = 0;
    const finish = (/** @type {any} */ value, /** @type {any} */ error) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      unsubscribe();
      error ? reject(error) : resolve(value);
    };
    const check = async () => {
      try {
        const detail = await api(`/api/link/${encodeURIComponent(linkId)}/detail`);
        if (detail.device_signature) finish(detail, null);
      } catch (error) {
        finish(null, error);
      }
    };
    const unsubscribe = onDeviceFrame((frame) => {
      if (frame.type === frames.LINK_SIGNED && frame.link_id === linkId) check();
    });
    const started = Date.now();
    timer = window.setInterval(() => {
      if (Date.now() - started > SIGNATURE_WAIT_MS) {
        finish(null, new Error("The new device did not answer in time. Nothing was linked."));
      } else check();
    }, 2000);
    check();
  });
}

async function approve() {
  if (!pending) return;
  const { self, fragment, detail } = pending;
  const message = byId("approve-message");
  const submit = /** @type {HTMLButtonElement} */ (byId("approve-submit"));
  const nameInput = /** @type {HTMLInputElement} */ (byId("approve-name"));
  const name = nameInput.value.trim();
  if (!name) {
    approveError("Give the new device a name.");
    nameInput.focus();
    return;
  }
  submit.disabled = true;
  say(message, "info", "Preparing the approval…");
  const linkPath = `/api/link/${encodeURIComponent(fragment.linkId)}`;
  const { challenge_id, server_nonce, options } = await api(`${linkPath}/approve/options`, {
    method: "POST",
    body: {},
  });
  // The challenge must bind the keys in the QR we scanned, not whatever the server holds.
  const expected = linkChallenge({
    serverNonce: b64uDecode(server_nonce, { length: 32, what: "server nonce" }),
    linkId: fragment.linkId,
    companionIdentityKey: fragment.identityKey,
    ephemeralKey: fragment.ephemeralKey,
  });
  if (b64uEncode(expected) !== options.challenge) {
    approveError(
      "This request does not match the QR code you scanned (the challenge differs). Nothing was approved. Show a new code on the new device.",
    );
    submit.disabled = true;
    return;
  }
  say(message, "info", "Confirm with your fingerprint or face…");
  const credential = await getAssertion(options);
  const keys = await loadKeys(self);
  const sealed = sealProvisioning(
    makeProvisioning(keys.identity, {
      accountId: self.accountId,
      companionIdentityKey: fragment.identityKey,
      linkId: fragment.linkId,
    }),
    fragment.ephemeralKey,
  );
  const sendHistory = /** @type {HTMLInputElement} */ (byId("approve-history")).checked;
  await api(`${linkPath}/approve`, {
    method: "POST",
    body: {
      challenge_id,
      credential,
      provisioning: b64uEncode(sealed),
      name,
      send_history: sendHistory,
    },
  });
  say(message, "info", "Approved. Waiting for the new device to confirm…");
  const signed = await waitForDeviceSignature(fragment.linkId);
  const deviceSignature = b64uDecode(signed.device_signature, { length: 64, what: "signature" });
  /** @type {readonly number[]} */
  let protocols;
  try {
    // what the signature covers is what the new device speaks (docs/protocol.md 27.5)
    protocols = deviceSignatureProtocols(deviceSignature, {
      accountId: self.accountId,
      accountKey: keys.identity.public,
      identityKey: fragment.identityKey,
    });
  } catch {
    approveError(
      "The new device's signature does not match the key in the QR code. Nothing was linked.",
    );
    submit.disabled = true;
    return;
  }
  say(message, "info", "Publishing your new device list…");
  const index = await api("/api/devices");
  const current = await acceptDeviceList(index.device_list, {
    accountId: self.accountId,
    accountKey: keys.identity.public,
  });
  const next = nextDeviceList(keys, current, {
    remove: index.suspended ?? [],
    add: new DeviceEntry({
      deviceId: detail.device_id,
      identityKey: fragment.identityKey,
      addedAt: Date.now(),
      deviceSignature,
      protocols,
    }),
  });
  const completed = await api(`${linkPath}/complete`, {
    method: "POST",
    body: { device_list: next.toJSON() },
  });
  await acceptDeviceList(next.toJSON(), {
    accountId: self.accountId,
    accountKey: keys.identity.public,
  });
  pending = null;
  // The account's synced state follows to the new device whether or not history was chosen:
  // it gets the sync key over its pairwise session (docs/protocol.md 23.2). Queued before the
  // page says it is done: a person who leaves the page then must not cut the share short.
  await shareSyncKey();
  byId("approve-done-title").textContent = "Device linked";
  byId("approve-done-text").textContent = `${completed.name} is now linked to your account.`;
  showView("approve-done");
  if (sendHistory) {
    // The progress shows in the notices region (historybar.js); a failure is shown there too.
    const { sendHistory: send } = await import("./history.js");
    await send(detail.device_id).catch((error) =>
      console.warn("Parley: the history was not sent", error),
    );
  }
}

byId("approve-request").addEventListener("submit", (event) => {
  event.preventDefault();
  approve().catch((error) => {
    if (error instanceof ApiError && error.code === "companion_limit") {
      accountFull(error.data?.max_companions ?? 4);
    } else if (error instanceof ApiError || error instanceof PasskeyCancelled) {
      approveError(error.message);
    } else approveError(`Something went wrong: ${error?.message ?? error}`);
  });
});

byId("approve-decline").addEventListener("click", async () => {
  if (!pending) return;
  const { linkId } = pending.fragment;
  try {
    await api(`/api/link/${encodeURIComponent(linkId)}/decline`, { method: "POST", body: {} });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 410) {
      approveError(error instanceof ApiError ? error.message : String(error));
      return;
    }
  }
  pending = null;
  gate("Request declined", "Nothing was linked. The new device was told.", [DEVICES]);
});

// ------------------------------------------------------------------ routing

/** The deployment's other origins (PARLEY_DEPLOYMENT_ORIGINS), each with its own accounts. */
function otherOrigins() {
  const listed = byId("approve-gate").dataset.deploymentOrigins ?? "";
  return listed.split(" ").filter((origin) => origin && origin !== location.origin);
}

/** Passkeys and IndexedDB are per origin: an account made on a sibling origin is not visible here. */
function gateOtherOrigins(/** @type {string[]} */ origins) {
  const hosts = origins.map((origin) => new URL(origin).host);
  gate(
    "No account on this address",
    `This browser holds no Parley account for ${location.host}. This Parley is also served at ` +
      `${hosts.join(", ")}, and each address keeps its own accounts, passkeys and devices. ` +
      "If this browser's account was made there, open this link there to approve the new device.",
    [
      ...origins.map((origin, i) => ({
        href: `${origin}/link/approve${location.hash}`,
        text: `Open it on ${hosts[i]}`,
      })),
      { href: "/signin", text: "Sign in here" },
    ],
  );
}

async function route() {
  const self = await getSelf();
  const others = otherOrigins();
  if (!self && others.length) {
    gateOtherOrigins(others);
    return;
  }
  if (!self) {
    gate(
      "Approve a new device",
      "This browser holds no Parley account. Open this page on your phone (your primary device) to approve a new device.",
      [{ href: "/signin", text: "Sign in" }],
    );
    return;
  }
  if (!self.isPrimary) {
    gate(
      "Open this on your phone",
      "Only your primary device can approve a new device. Scan the code with your phone.",
      [DEVICES],
    );
    return;
  }
  startDeviceSocket();
  const hash = location.hash;
  if (!hash || hash === "#") {
    const index = await api("/api/devices");
    if (index.devices.filter((d) => !d.is_primary).length >= index.max_companions) {
      accountFull(index.max_companions);
      return;
    }
    stopCamera();
    byId("scan-status").textContent = "";
    showView("approve-scanner");
    return;
  }
  const fragment = parseLink(`${location.origin}${LINK_PATH}${hash}`);
  if (!fragment) {
    gate(
      "This is not a link code",
      "This address does not hold a valid Parley link code. Scan the QR code on the new device again.",
      [SCAN_AGAIN],
    );
    return;
  }
  stopCamera();
  await showRequest(self, fragment);
}

window.addEventListener("hashchange", () => route());
route().catch((error) =>
  gate("Something went wrong", error instanceof Error ? error.message : String(error), [DEVICES]),
);
