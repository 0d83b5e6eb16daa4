// /devices: every active device of the account, log-out buttons, "link a new device" (or
// "your account is full"), "New device … Not you? Remove it" while a new device may still be
// vetoed, and the primary's automatic re-signing after server-side suspensions (DESIGN §5).

import * as frames from "../protocol/frames.js";
import { renameAccount } from "./account.js";
import { ApiError, api, deviceRevoked } from "./api.js";
import { ListRefused, acceptDeviceList, loadKeys, nextDeviceList, refillPrekeys } from "./device.js";
import { setRemover, showNewDevices } from "./newdevices.js";
import { onDeviceFrame, startDeviceSocket, stopDeviceSocket } from "./socket.js";
import { Change, changes } from "./events.js";
import { getSelf } from "./store.js";
import { lastUses, syncDevicesListed } from "./sync.js";
import { byId, confirmDialog, formatDate, formatTime, formReady, h, say, showLoggedOut, timeAgo } from "./ui.js";

const message = byId("devices-message");
/** @type {import("./store.js").SelfRecord} */
let self;
/** @type {any} */
let index = null;
/** Each own device's exact last use, as it wrote it into the synced state (ms). */
/** @type {Map<string, number>} */
let used = new Map();
let refreshing = false;
/** The device being renamed on this page, and what the person typed so far. */
/** @type {{deviceId: string, value: string} | null} */
let editing = null;
/** Devices this page removed or renamed itself (its own message says so already). */
const doneHere = new Set();

/** @param {unknown} error */
function report(error) {
  if (error instanceof ApiError && error.code === "device_revoked") return;
  const text =
    error instanceof ApiError || error instanceof ListRefused
      ? error.message
      : `Something went wrong: ${/** @type {any} */ (error)?.message ?? error}`;
  say(message, "error", text);
}

/**
 * The account's current list, verified against what this device accepted before; the sync
 * machine is told, so it re-keys when a device left (a removal here, or elsewhere). After a
 * removal the caller waits for the machine (`removed`): the person may leave the page at
 * once, and the re-key must not depend on a run the page's unloading cut short.
 * @param {any} document @param {{removed?: boolean}} [options]
 */
async function verifiedList(document, { removed = false } = {}) {
  const keys = self.isPrimary ? await loadKeys(self) : null;
  const list = await acceptDeviceList(document, {
    accountId: self.accountId,
    accountKey: keys ? keys.identity.public : undefined,
  });
  const listed = list.devices.map((/** @type {any} */ d) => d.deviceId);
  const told = syncDevicesListed(listed, (index?.suspended ?? []).filter((/** @type {string} */ id) => listed.includes(id)));
  if (removed) await told;
  return list;
}

/** “Laptop” (a device's name in a sentence). @param {string} name */
const quoted = (name) => `“${name}”`;

/** @param {any} device */
function renameButton(device) {
  const button = h("button", {
    class: "secondary",
    text: "Rename",
    attrs: { type: "button", "aria-label": `Rename ${device.name || "this device"}` },
  });
  button.addEventListener("click", () => {
    editing = { deviceId: device.device_id, value: device.name };
    render();
    const input = /** @type {HTMLInputElement | null} */ (document.getElementById(`rename-${device.device_id}`));
    input?.focus();
    input?.select();
  });
  return button;
}

/** @param {any} device */
function renameForm(device) {
  const inputId = `rename-${device.device_id}`;
  const input = /** @type {HTMLInputElement} */ (
    h("input", {
      attrs: { id: inputId, name: "name", type: "text", maxlength: "64", autocomplete: "off", spellcheck: "false", required: "" },
    })
  );
  input.value = editing?.value ?? device.name;
  input.addEventListener("input", () => {
    if (editing) editing.value = input.value;
  });
  const save = /** @type {HTMLButtonElement} */ (h("button", { text: "Save", attrs: { type: "submit" } }));
  const cancel = h("button", { class: "secondary", text: "Cancel", attrs: { type: "button" } });
  const error = h("p", { class: "notice", hidden: true });
  const form = h(
    "form",
    { class: "device-rename", attrs: { method: "post", novalidate: "" } },
    h("label", { text: device.this_device ? "Name of this device" : `New name for ${device.name}`, attrs: { for: inputId } }),
    h("div", { class: "device-rename-row" }, input, save, cancel),
    error,
  );
  const stop = () => {
    editing = null;
    render();
  };
  cancel.addEventListener("click", stop);
  form.addEventListener("keydown", (event) => {
    if (/** @type {KeyboardEvent} */ (event).key === "Escape") stop();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) {
      say(error, "error", "Give the device a name.");
      input.focus();
      return;
    }
    save.disabled = true;
    doneHere.add(device.device_id);
    try {
      const renamed = await api(`/api/devices/${encodeURIComponent(device.device_id)}/rename`, {
        method: "POST",
        body: { name },
      });
      editing = null;
      if (renamed.name !== device.name) {
        say(message, "ok", `Your device ${quoted(device.name)} is now called ${quoted(renamed.name)}.`);
      }
      await refresh();
    } catch (failure) {
      doneHere.delete(device.device_id);
      save.disabled = false;
      say(error, "error", failure instanceof ApiError ? failure.message : `Not renamed: ${/** @type {any} */ (failure)?.message ?? failure}`);
      input.focus();
    }
  });
  return form;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * When a device was last used: exactly, as the device itself wrote it into the synced state
 * (the server cannot read it); else the day the server last saw it (all the server keeps), a
 * UTC day. The day wins when it is later (a device that stopped writing, or never wrote).
 * @param {any} device
 */
function lastUse(device) {
  const exact = used.get(device.device_id);
  const day = typeof device.last_seen_on === "string" ? device.last_seen_on : null;
  if (exact !== undefined && (day === null || new Date(exact).toISOString().slice(0, 10) >= day)) {
    const when = new Date(exact);
    return h("span", {
      class: "presence",
      text: `Last used ${timeAgo(when)}`,
      attrs: { title: `${formatDate(when)}, ${formatTime(when)}`, "data-last-use": "exact" },
    });
  }
  if (day === null) return null;
  const today = new Date().toISOString().slice(0, 10);
  const yesterday = new Date(Date.now() - DAY_MS).toISOString().slice(0, 10);
  const words =
    day === today ? "today" : day === yesterday ? "yesterday" : `on ${formatDate(new Date(`${day}T12:00:00Z`))}`;
  return h("span", { class: "presence", text: `Last seen ${words}`, attrs: { "data-last-use": "day" } });
}

/** @param {any} device */
function deviceItem(device) {
  const name = device.name || "Unnamed device";
  const badges = h("span", { class: "badges" });
  if (device.this_device) badges.append(h("span", { class: "badge this", text: "This device" }));
  if (device.is_primary) badges.append(h("span", { class: "badge", text: "Primary" }));
  // This page is open on this device, so it is in use now whatever the presence row says.
  const presence = device.active_now || device.this_device
    ? h("span", { class: "presence active", text: "Active now" })
    : lastUse(device);
  const meta = h(
    "p",
    { class: "device-meta" },
    device.platform && device.platform !== device.name
      ? h("span", { text: device.platform })
      : null,
    h("span", { text: `Linked ${formatDate(new Date(device.added_at))}` }),
    presence,
  );
  const renaming = editing?.deviceId === device.device_id;
  const item = h(
    "li",
    { class: "device card", attrs: { "data-device-id": device.device_id } },
    h(
      "div",
      { class: "device-main" },
      renaming ? renameForm(device) : h("h3", { class: "device-name", text: name }),
      renaming ? null : badges,
      meta,
    ),
  );
  let button = null;
  if (device.this_device) {
    button = h("button", {
      class: "secondary danger-outline",
      text: self.isPrimary ? "Log out and reset account" : "Log out this device",
      attrs: { type: "button" },
    });
    button.addEventListener("click", () =>
      (self.isPrimary ? resetAccount() : logOutSelf()).catch(report),
    );
  } else if (self.isPrimary) {
    button = h("button", {
      class: "secondary danger-outline",
      text: "Log out",
      attrs: { type: "button", "aria-label": `Log out ${name}` },
    });
    button.addEventListener("click", () => removeCompanion(device).catch(report));
  }
  item.append(h("div", { class: "device-actions" }, renaming ? null : renameButton(device), button));
  return item;
}

function render() {
  const list = byId("device-list");
  if (editing && !index.devices.some((/** @type {any} */ d) => d.device_id === editing?.deviceId)) editing = null;
  const focused = editing ? document.activeElement?.id : null;
  list.replaceChildren(...index.devices.map(deviceItem));
  // A refresh while the person types keeps their place.
  if (focused) document.getElementById(focused)?.focus();
  list.hidden = false;
  byId("devices-loading").hidden = true;
  showNewDevices(index.devices);
  const companions = index.devices.filter((d) => !d.is_primary).length;
  const full = companions >= index.max_companions;
  const section = byId("link-section");
  section.hidden = false;
  byId("link-address").textContent = `${location.host}/link`;
  byId("link-full").hidden = !full;
  if (self.isPrimary) {
    byId("link-section-text").textContent =
      "Each browser you link gets its own keys. You approve it here with your fingerprint or face.";
    byId("link-full").textContent =
      `Your account is full: all ${index.max_companions} linked devices are in use. Log one out above to link another.`;
    byId("link-steps").hidden = full;
    byId("scan-button").hidden = full;
    byId("link-actions").hidden = false;
    byId("link-capacity").textContent =
      `${companions} of ${index.max_companions} linked devices in use.`;
  } else {
    const primary = index.devices.find((d) => d.is_primary);
    const onPrimary = `your primary device${primary ? ` (${primary.name})` : ""}`;
    byId("link-section-text").textContent = `New devices are approved on ${onPrimary}. On the new browser, open ${location.host}/link and scan its code with your primary device.`;
    byId("link-full").textContent =
      `Your account is full: all ${index.max_companions} linked devices are in use. To link another, first log one out on ${onPrimary}.`;
  }
}

/** The primary re-signs when the server suspended devices the signed list still names. */
async function resignIfSuspended() {
  if (!self.isPrimary || !index.suspended?.length) return;
  const keys = await loadKeys(self);
  const current = await verifiedList(index.device_list);
  const next = nextDeviceList(keys, current, { remove: index.suspended });
  await api("/api/devices/list", { method: "POST", body: { device_list: next.toJSON() } });
  await verifiedList(next.toJSON(), { removed: true });
  index = await api("/api/devices");
}

async function load() {
  index = await api("/api/devices");
  used = await lastUses();
  startDeviceSocket();
  try {
    await verifiedList(index.device_list);
  } catch (error) {
    if (!(error instanceof ListRefused)) throw error;
    say(message, "warn", `${error.message} Do not trust changes to this account's devices.`);
  }
  await resignIfSuspended();
  render();
}

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    await load();
  } catch (error) {
    report(error);
  } finally {
    refreshing = false;
  }
}

/** @param {any} device */
async function removeCompanion(device) {
  const ok = await confirmDialog({
    title: `Log out ${device.name}?`,
    body: "It loses access at once: its keys stop working and it can no longer send or receive messages. You can link it again later.",
    confirm: "Log out",
  });
  if (!ok) return;
  const fresh = await api("/api/devices");
  const keys = await loadKeys(self);
  const current = await verifiedList(fresh.device_list);
  const next = nextDeviceList(keys, current, {
    remove: [device.device_id, ...(fresh.suspended ?? [])],
  });
  await api(`/api/devices/${encodeURIComponent(device.device_id)}/revoke`, {
    method: "POST",
    body: { device_list: next.toJSON() },
  });
  await verifiedList(next.toJSON(), { removed: true });
  doneHere.add(device.device_id);
  say(message, "ok", `Your device ${quoted(device.name)} was logged out.`);
  // the sync key was rotated by the sync machine just now: the list it was told lacks this
  // device (22.8)
  await refresh();
}

/**
 * A companion removes a device linked after it, in the veto window (a server-side suspension
 * that the primary confirms by re-signing the list when it is next online).
 * @param {any} device
 */
async function vetoDevice(device) {
  const ok = await confirmDialog({
    title: `Remove ${device.name}?`,
    body: "It loses access at once: its keys stop working and it can no longer send or receive messages. Your primary device confirms the removal the next time it is online.",
    confirm: "Remove",
  });
  if (!ok) return;
  await api(`/api/devices/${encodeURIComponent(device.device_id)}/revoke`, {
    method: "POST",
    body: {},
  });
  doneHere.add(device.device_id);
  say(message, "ok", `Your device ${quoted(device.name)} was removed.`);
  await refresh(); // the sync key is rotated once the own list shows it suspended (22.8)
}

async function logOutSelf() {
  const ok = await confirmDialog({
    title: "Log out this device?",
    body: "This browser's keys and account data are deleted. To use Parley here again, link it from your primary device.",
    confirm: "Log out this device",
  });
  if (!ok) return;
  await api(`/api/devices/${encodeURIComponent(self.deviceId)}/revoke`, {
    method: "POST",
    body: {},
  });
  stopDeviceSocket();
  await deviceRevoked("logged_out");
}

async function resetAccount() {
  const ok = await confirmDialog({
    title: "Log out your primary device?",
    body: "This is your primary device: logging it out resets your account. Every linked device is logged out too, and your contacts will see that your security code changed.",
    confirm: "Reset account",
    typed: self.accountId,
  });
  if (!ok) return;
  await api(`/api/devices/${encodeURIComponent(self.deviceId)}/revoke`, {
    method: "POST",
    body: {},
  });
  stopDeviceSocket();
  await deviceRevoked("account_reset");
}

/** What another own device did, in plain words. @param {any} frame a devices_changed frame */
function tellChange(frame) {
  const before = index?.devices.find((/** @type {any} */ d) => d.device_id === frame.device_id);
  const name = typeof frame.device_name === "string" ? frame.device_name : before?.name;
  if (!name || doneHere.delete(frame.device_id)) return;
  if (frame.device_id === self.deviceId) {
    if (frame.reason === "renamed" && before?.name !== name) say(message, "info", `This device is now called ${quoted(name)}.`);
  } else if (frame.reason === "revoked") {
    say(message, "info", `Your device ${quoted(name)} was logged out.`);
  } else if (frame.reason === "renamed" && before && before.name !== name) {
    say(message, "info", `Your device ${quoted(before.name)} is now called ${quoted(name)}.`);
  }
}

function showAccount() {
  byId("devices-account").textContent = `${self.displayName} (@${self.accountId})`;
}

/** "Your name": the account's display name, set from any own device. */
function startAccountName() {
  const form = /** @type {HTMLFormElement} */ (byId("account-name-form"));
  const input = /** @type {HTMLInputElement} */ (byId("account-name-input"));
  const save = /** @type {HTMLButtonElement} */ (byId("account-name-save"));
  const note = byId("account-name-message");
  input.value = self.displayName;
  byId("account-name").hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const wanted = input.value.trim();
    if (!wanted) {
      say(note, "error", "Type the name your contacts should see.");
      input.focus();
      return;
    }
    save.disabled = true;
    try {
      const stored = await renameAccount(wanted);
      self = { ...self, displayName: stored };
      input.value = stored;
      showAccount();
      say(note, "ok", `Your contacts now see you as ${quoted(stored)}.`);
    } catch (failure) {
      say(note, "error", failure instanceof ApiError ? failure.message : `Not saved: ${/** @type {any} */ (failure)?.message ?? failure}`);
      input.focus();
    } finally {
      save.disabled = false;
    }
  });
  formReady(form);
  // set on another own device (account_renamed, account.js)
  changes.addEventListener("change", async (event) => {
    if (/** @type {CustomEvent} */ (event).detail?.kind !== Change.ACCOUNT) return;
    const found = await getSelf();
    if (!found) return;
    const typing = document.activeElement === input && input.value !== self.displayName;
    self = { ...self, displayName: found.displayName };
    showAccount();
    if (!typing) input.value = found.displayName;
  });
}

async function main() {
  const found = await getSelf();
  if (!found) {
    byId("devices-loading").hidden = true;
    say(message, "warn", "This browser holds no Parley keys.");
    message.append(
      " ",
      h("a", { text: "Sign in", attrs: { href: "/signin" } }),
      ", ",
      h("a", { text: "create an account", attrs: { href: "/signup" } }),
      " or ",
      h("a", { text: "link this browser", attrs: { href: "/link" } }),
      ".",
    );
    return;
  }
  self = found;
  showAccount();
  startAccountName();
  setRemover((device) => (self.isPrimary ? removeCompanion(device) : vetoDevice(device)).catch(report));
  onDeviceFrame((frame) => {
    if (frame.type !== frames.DEVICES_CHANGED) return;
    tellChange(frame);
    refresh();
  });
  try {
    await load();
  } catch (error) {
    if (error instanceof ApiError && error.code === "device_revoked") {
      showLoggedOut();
      return;
    }
    byId("devices-loading").hidden = true;
    report(error);
    return;
  }
  window.setInterval(() => refresh(), 30_000);
  // another own device's last use arrived through the synced state
  changes.addEventListener("change", async (event) => {
    if (/** @type {CustomEvent} */ (event).detail?.kind !== Change.SYNC || !index || editing) return;
    used = await lastUses();
    render();
  });
  try {
    const updated = await refillPrekeys(api);
    if (updated) self = updated;
  } catch {
    // a prekey top-up can wait for the next visit
  }
}

main();
