// /signup: this browser becomes the primary device of a new account (passkey, keys, list v1).

import { ApiError, request } from "./api.js";
import {
  createDeviceKeys,
  describePlatform,
  firstDeviceList,
  prekeysUpload,
  b64uEncode,
} from "./device.js";
import { PasskeyCancelled, createPasskey } from "./passkey.js";
import { getSelf, putAcceptedList, putSelf } from "./store.js";
import { byId, formReady, h, say } from "./ui.js";

const form = /** @type {HTMLFormElement} */ (byId("signup-form"));
const message = byId("signup-message");
const submit = /** @type {HTMLButtonElement} */ (byId("signup-submit"));
const username = /** @type {HTMLInputElement} */ (byId("username"));
const displayName = /** @type {HTMLInputElement} */ (byId("display-name"));

async function checkExisting() {
  const self = await getSelf();
  if (!self) return;
  const notice = byId("signup-existing");
  notice.replaceChildren(
    "This browser is already a device of ",
    h("strong", { text: self.displayName || self.accountId }),
    ". ",
    h("a", { text: "Open your devices", attrs: { href: "/devices" } }),
    ".",
  );
  notice.hidden = false;
  form.hidden = true;
}

username.addEventListener("input", () => {
  const lower = username.value.toLowerCase();
  if (lower !== username.value) username.value = lower;
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  say(message, "info", "");
  if (!form.checkValidity()) {
    const invalid = username.validity.valid ? displayName : username;
    say(
      message,
      "error",
      invalid === username
        ? "Choose a username of 3 to 32 lowercase letters, digits, _ or ."
        : "Enter a display name.",
    );
    invalid.focus();
    return;
  }
  submit.disabled = true;
  const account = { username: username.value.trim(), display_name: displayName.value.trim() };
  try {
    say(message, "info", "Waiting for your fingerprint or face…");
    const { challenge_id, options } = await request("/api/accounts/register/options", {
      method: "POST",
      body: account,
    });
    const credential = await createPasskey(options);
    say(message, "info", "Creating your keys…");
    const { deviceId, keys, nextPrekeyId, nextKemPrekeyId } = await createDeviceKeys();
    const name = describePlatform();
    const list = firstDeviceList({ accountId: account.username, deviceId, keys });
    await request("/api/accounts/register", {
      method: "POST",
      body: {
        challenge_id,
        credential,
        device: {
          device_id: deviceId,
          identity_key: b64uEncode(keys.identity.public),
          name,
          platform: name,
        },
        ...prekeysUpload(keys),
        device_list: list.toJSON(),
      },
    });
    await putSelf({
      deviceId,
      keys: keys.toJSON(),
      nextPrekeyId,
      nextKemPrekeyId,
      accountId: account.username,
      displayName: account.display_name,
      isPrimary: true,
      name,
    });
    await putAcceptedList(account.username, {
      version: list.version,
      hash: b64uEncode(list.hash),
      accountKey: b64uEncode(list.accountKey),
      knownDevices: { [deviceId]: b64uEncode(keys.identity.public) },
      list: list.toJSON(),
      checkedAt: Date.now(),
    });
    say(message, "ok", "Account created.");
    location.assign("/devices");
  } catch (error) {
    submit.disabled = false;
    if (error instanceof ApiError || error instanceof PasskeyCancelled) {
      say(message, "error", error.message);
      if (error instanceof ApiError && error.code === "username_taken") username.focus();
    } else {
      say(message, "error", `Something went wrong: ${error?.message ?? error}`);
    }
  }
});
formReady(form);

checkExisting();
