// What the device engine tells about device lists (lists.js), as lines in conversations, in
// plain words and with the contact's name: a contact's devices changed, a security code
// changed, a withheld or forked list, a newer list that could not be verified (docs/protocol.md
// sections 10.1 and 22.3). Versions and ids stay out of the text; the console has the detail.
// Importing this module installs it.

import { securityCodeChanged } from "./contacts.js";
import { onListNotice, refusalOf } from "./lists.js";
import { displayName } from "./names.js";
import { addNotice } from "./notices.js";
import * as store from "./store.js";
import { devicesChangedText } from "./wording.js";

const LIST_REFUSALS = new Set(["list_refused", "list_unavailable", "security_code_changed"]);

/** @param {import("../protocol/index.js").engine.Notice} notice */
async function listNotice(notice) {
  const me = await store.getSelf();
  const account = notice.accountId;
  const { data } = notice;
  if (!me) return;
  const name = await displayName(account);
  if (notice.code === "devices_changed" && account !== me.accountId) {
    const count = (await store.getAcceptedList(account))?.list.devices.length ?? 0;
    await addNotice(account, devicesChangedText(name, data, count), "info");
  } else if (notice.code === "security_code_changed" && account !== me.accountId) {
    await securityCodeChanged(account, data.account_key);
  } else if (notice.code === "list_forked") {
    console.warn("Parley: a forked device list", notice);
    await addNotice(
      account,
      `${name}'s device and the server disagree about which devices ${name} has. The server may be showing you a false list. Be careful.`,
      "warn",
    );
  } else if (notice.code === "list_withheld") {
    console.warn("Parley: a withheld device list", notice);
    await addNotice(
      account,
      `${name}'s device says their devices changed, but the server has not shown you that change. It may be hiding a device from you.`,
      "warn",
    );
  } else if (data.reason === "freeze" && LIST_REFUSALS.has(notice.code)) {
    console.warn("Parley: a newer device list was refused", refusalOf(notice, new Map()));
    await addNotice(
      account,
      `${name}'s devices changed, but the change could not be verified, so it was not accepted. Be careful.`,
      "warn",
    );
  }
}

onListNotice(listNotice);
