// The JSON API: CSRF header, typed errors, one device-key sign-in retry when the session
// expired, and a wipe when the server says this device was logged out.

import { deviceSignIn } from "./device.js";
import { getSelf, wipe } from "./store.js";

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
 * One request, no retry.
 * @param {string} path
 * @param {{method?: string, body?: any}} [options]
 * @returns {Promise<any>}
 */
export async function request(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = cookie("csrftoken");
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError({
      status: 0,
      code: "network",
      message: "The server cannot be reached. Check your connection and try again.",
    });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
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
  return data;
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
 * @param {{method?: string, body?: any}} [options]
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
