// /signin: the primary signs in with its passkey plus a device-key signature over the same
// challenge; a companion signs in with its device key alone.

import { ApiError, deviceRevoked, request } from "./api.js";
import { b64uDecode, b64uEncode, deviceSignIn, loadKeys } from "./device.js";
import { PasskeyCancelled, getAssertion } from "./passkey.js";
import { signIn } from "../protocol/index.js";
import { getSelf } from "./store.js";
import { byId, say } from "./ui.js";

const message = byId("signin-message");
const submit = /** @type {HTMLButtonElement} */ (byId("signin-submit"));

/** @param {import("./store.js").SelfRecord} self */
async function primarySignIn(self) {
  const keys = await loadKeys(self);
  const { challenge_id, options } = await request("/api/accounts/signin/options", {
    method: "POST",
    body: {},
  });
  const credential = await getAssertion(options, "Fingerprint or face not verified — you are not signed in.");
  const signature = signIn(keys.identity, {
    origin: location.origin,
    deviceId: self.deviceId,
    nonce: b64uDecode(options.challenge, { length: 32, what: "challenge" }),
  });
  await request("/api/accounts/signin", {
    method: "POST",
    body: {
      challenge_id,
      credential,
      device_id: self.deviceId,
      device_signature: b64uEncode(signature),
    },
  });
}

async function main() {
  const self = await getSelf();
  byId("signin-loading").hidden = true;
  if (!self) {
    byId("signin-none").hidden = false;
    return;
  }
  byId("signin-device").hidden = false;
  byId("signin-account").textContent = self.displayName || self.accountId;
  byId("signin-role").textContent = self.isPrimary ? "the primary device" : "a linked device";
  byId("signin-explain").textContent = self.isPrimary
    ? "Your passkey proves it is you; this browser's device key proves it is still your primary."
    : "This browser proves it is your linked device with its own key. No passkey needed.";
  submit.textContent = self.isPrimary ? "Sign in with fingerprint or face" : "Sign in on this device";
  submit.addEventListener("click", async () => {
    submit.disabled = true;
    say(message, "info", self.isPrimary ? "Waiting for your fingerprint or face…" : "Signing in…");
    try {
      if (self.isPrimary) await primarySignIn(self);
      else await deviceSignIn(self);
      location.assign("/devices");
    } catch (error) {
      submit.disabled = false;
      if (error instanceof ApiError && error.code === "device_revoked") {
        await deviceRevoked();
        return;
      }
      const text =
        error instanceof ApiError || error instanceof PasskeyCancelled
          ? error.message
          : `Something went wrong: ${error?.message ?? error}`;
      say(message, "error", text);
    }
  });
}

main();
