// /signin: the primary signs in with its passkey plus a device-key signature over the same
// challenge; a companion signs in with its device key alone.

import { ApiError, deviceRevoked, deviceSignIn, request } from "./api.js";
import {
  b64uDecode,
  b64uEncode,
  createDeviceKeys,
  describePlatform,
  firstDeviceList,
  loadKeys,
  prekeysUpload,
} from "./device.js";
import { PasskeyCancelled, getAssertion } from "./passkey.js";
import { signIn } from "../protocol/index.js";
import { getSelf, putAcceptedList, putSelf } from "./store.js";
import { byId, formReady, say } from "./ui.js";

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

/**
 * This browser becomes the account's new primary (the old one is lost): the passkey proves
 * the person and names the account (nobody types a username, so the server tells nobody
 * which accounts exist), fresh keys become the new account key, and list v+1 names only
 * this device.
 * @param {(account: {username: string, display_name: string}) => void} onVerified
 */
async function reregister(onVerified) {
  const { challenge_id, options } = await request("/api/accounts/reregister/options", {
    method: "POST",
    body: {},
  });
  const credential = await getAssertion(options, "Fingerprint or face not verified — nothing changed.");
  const { reregister_id, account, device_list_version } = await request("/api/accounts/reregister/verify", {
    method: "POST",
    body: { challenge_id, credential },
  });
  onVerified(account);
  const username = account.username;
  const { deviceId, keys, nextPrekeyId, nextKemPrekeyId } = await createDeviceKeys();
  const name = describePlatform();
  const list = firstDeviceList({ accountId: username, deviceId, keys, version: device_list_version + 1 });
  const answer = await request("/api/accounts/reregister", {
    method: "POST",
    body: {
      reregister_id,
      device: { device_id: deviceId, identity_key: b64uEncode(keys.identity.public), name, platform: name },
      ...prekeysUpload(keys),
      device_list: list.toJSON(),
    },
  });
  await putSelf({
    deviceId,
    keys: keys.toJSON(),
    nextPrekeyId,
    nextKemPrekeyId,
    accountId: username,
    displayName: answer.account.display_name,
    isPrimary: true,
    name,
  });
  await putAcceptedList(username, {
    version: list.version,
    hash: b64uEncode(list.hash),
    accountKey: b64uEncode(list.accountKey),
    knownDevices: { [deviceId]: b64uEncode(keys.identity.public) },
    list: list.toJSON(),
    checkedAt: Date.now(),
  });
}

function offerReregistration() {
  const form = /** @type {HTMLFormElement} */ (byId("reregister-form"));
  const button = /** @type {HTMLButtonElement} */ (byId("reregister-submit"));
  const note = byId("reregister-message");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    say(note, "info", "Choose your passkey, then confirm with your fingerprint or face…");
    try {
      await reregister((account) =>
        say(note, "info", `Making this browser the primary of ${account.display_name || account.username}…`),
      );
      location.assign("/devices");
    } catch (error) {
      button.disabled = false;
      const text =
        error instanceof ApiError || error instanceof PasskeyCancelled
          ? error.message
          : `Something went wrong: ${error?.message ?? error}`;
      say(note, "error", text);
    }
  });
  form.hidden = false;
  formReady(form);
}

async function main() {
  const self = await getSelf();
  byId("signin-loading").hidden = true;
  if (!self) {
    byId("signin-none").hidden = false;
    offerReregistration();
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
