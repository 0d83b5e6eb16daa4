// What the device engine tells about device lists (lists.js), as lines in conversations: a
// contact's devices changed, a security code changed, a withheld or forked list, a newer list
// that could not be verified (docs/protocol.md section 10.1). Importing this module installs it.

import { securityCodeChanged } from "./contacts.js";
import { onListNotice, refusalOf } from "./lists.js";
import { addNotice } from "./notices.js";
import * as store from "./store.js";

const LIST_REFUSALS = new Set(["list_refused", "list_unavailable", "security_code_changed"]);

/** @param {import("../protocol/index.js").engine.Notice} notice */
async function listNotice(notice) {
  const me = await store.getSelf();
  const account = notice.accountId;
  const { data } = notice;
  if (!me) return;
  if (notice.code === "devices_changed" && account !== me.accountId) {
    const count = (await store.getAcceptedList(account))?.list.devices.length ?? 0;
    const { added, removed } = data;
    const what =
      added.length && !removed.length
        ? `${account} linked a new device`
        : removed.length && !added.length
          ? `${account} removed a device`
          : `${account}'s devices changed`;
    await addNotice(
      account,
      `${what}. Messages now go to ${count} device${count === 1 ? "" : "s"} (device list version ${data.version}).`,
      "info",
    );
  } else if (notice.code === "security_code_changed" && account !== me.accountId) {
    await securityCodeChanged(account, data.account_key);
  } else if (notice.code === "list_forked") {
    await addNotice(
      account,
      `${account}'s device signed with a different device list of the same version (a forked list). Be careful.`,
      "warn",
    );
  } else if (notice.code === "list_withheld") {
    await addNotice(
      account,
      `${account}'s device uses device list version ${data.claimed}, but the server serves version ${data.served}. It may be withholding a change.`,
      "warn",
    );
  } else if (data.reason === "freeze" && LIST_REFUSALS.has(notice.code)) {
    const error = refusalOf(notice, new Map());
    await addNotice(account, `${account}'s newer device list could not be verified: ${error?.message}`, "warn");
  }
}

onListNotice(listNotice);
