// The JSON API: CSRF header, typed errors, the device-key sign-in (one retry with it when the
// session expired), and a wipe when the server says this device was logged out.

import { b64uDecode, b64uEncode, concatBytes } from "../protocol/encoding.js";
import { InvalidJson } from "../protocol/exceptions.js";
import { signIn } from "../protocol/index.js";
import { parseJson } from "../protocol/strictjson.js";
import { loadKeys } from "./device.js";
import { getSelf, wipe } from "./store.js";

/** The largest answer read, as the Python client's: Parley's JSON answers are a few KiB. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

export class ApiError extends Error {
  /**
   * @param {{status: number, code: string, message: string, data?: any}} fields
   */
  constructor({ status, code, message, data = {} }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.data = data;
  }
}

/** Fired on window when the server says this device was logged out (local data is wiped). */
export const REVOKED_EVENT = "parley:revoked";

/** @param {string} name */
function cookie(name) {
  const prefix = `${name}=`;
  const found = document.cookie.split("; ").find((c) => c.startsWith(prefix));
  return found ? decodeURIComponent(found.slice(prefix.length)) : "";
}

/**
 * The body of an answer, refused (InvalidJson "too_large") past `limit` bytes without
 * reading the rest.
 * @param {Response} response
 * @param {number} limit
 * @returns {Promise<Uint8Array>}
 */
async function readAnswer(response, limit) {
  if (!response.body) return new Uint8Array(0);
  const declared = Number(response.headers.get("Content-Length") ?? 0);
  if (declared > limit) {
    await response.body.cancel();
    throw new InvalidJson("too_large", `expected at most ${limit} bytes, got ${declared}`);
  }
  const chunks = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return concatBytes(...chunks);
    chunks.push(value);
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      throw new InvalidJson("too_large", `expected at most ${limit} bytes, got more`);
    }
  }
}

/**
 * One request, no retry. An answer the bounded decoder refuses (docs/protocol.md section
 * 2.2: too deep, too large, duplicate keys...) is an ApiError `invalid_json`.
 * @param {string} path
 * @param {{method?: string, body?: any, maxBytes?: number, withStatus?: boolean, signal?: AbortSignal}} [options]
 *   `body`: JSON, or a Uint8Array sent as it is
 *   `maxBytes`: the largest answer read (MAX_ANSWER_BYTES unless an endpoint serves more, like
 *   /api/state); `withStatus`: answer `{status, data}` (a machine that reads the HTTP status)
 * @returns {Promise<any>}
 */
export async function request(path, { method = "GET", body, maxBytes = MAX_ANSWER_BYTES, withStatus = false, signal } = {}) {
  const headers = { Accept: "application/json" };
  const raw = body instanceof Uint8Array; // a piece of a file's blob (docs/protocol.md 19.5)
  if (method !== "GET") {
    headers["Content-Type"] = raw ? "application/octet-stream" : "application/json";
    headers["X-CSRFToken"] = cookie("csrftoken");
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError({
      status: 0,
      code: "network",
      message: "The server cannot be reached. Check your connection and try again.",
    });
  }
  let data = null;
  let refused = null;
  try {
    const raw = await readAnswer(response, maxBytes);
    if (raw.length > 0) data = parseJson(raw, { maxBytes });
  } catch (error) {
    refused = /** @type {Error} */ (error);
  }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError({
      status: response.status,
      code: error.code ?? "http_error",
      message: error.message ?? `The server answered ${response.status}.`,
      data: error.data,
    });
  }
  if (refused) {
    throw new ApiError({
      status: 502,
      code: "invalid_json",
      message: `The server's answer to ${path} was refused: ${refused.message}.`,
      data: { reason: /** @type {any} */ (refused).reason ?? "unreadable" },
    });
  }
  return withStatus ? { status: response.status, data } : data;
}

/**
 * Sign this device back in with its identity key (a session that expired).
 * @param {import("./store.js").SelfRecord} self
 */
export async function deviceSignIn(self) {
  const keys = await loadKeys(self);
  const { challenge_id, nonce } = await request("/api/devices/signin/options", {
    method: "POST",
    body: { device_id: self.deviceId },
  });
  const signature = signIn(keys.identity, {
    origin: location.origin,
    deviceId: self.deviceId,
    nonce: b64uDecode(nonce, { length: 32, what: "nonce" }),
  });
  return request("/api/devices/signin", {
    method: "POST",
    body: { challenge_id, device_id: self.deviceId, signature: b64uEncode(signature) },
  });
}

/** Wipe this device and tell the page. */
export async function deviceRevoked(reason = "logged_out") {
  await wipe();
  window.dispatchEvent(new CustomEvent(REVOKED_EVENT, { detail: { reason } }));
}

/**
 * A request as a signed-in device: on 401 sign back in once with the device key (a companion
 * has no passkey; DESIGN section 7), on "device_revoked" wipe local data.
 * @param {string} path
 * @param {{method?: string, body?: any, withStatus?: boolean}} [options]
 */
export async function api(path, options = {}) {
  try {
    return await request(path, options);
  } catch (error) {
    if (error instanceof ApiError && error.code === "device_revoked") {
      await deviceRevoked();
      throw error;
    }
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    const self = await getSelf();
    if (!self) throw error;
    try {
      await deviceSignIn(self);
    } catch (signInError) {
      if (signInError instanceof ApiError && signInError.code === "device_revoked") {
        await deviceRevoked();
        throw signInError;
      }
      throw error;
    }
    return request(path, options);
  }
}
