// Every page: the device socket and the messenger engine when signed in, the progress of a
// history transfer, the account sync's refusals, and the logged-out state when the server says this device was removed.

import { REVOKED_EVENT } from "./api.js";
import { startDeviceSocket } from "./socket.js";
import { showLoggedOut } from "./ui.js";

window.addEventListener(REVOKED_EVENT, () => showLoggedOut());

if (document.body.dataset.signedIn === "1") {
  startDeviceSocket();
  Promise.all([import("./messenger.js"), import("./historybar.js"), import("./syncnotice.js")])
    .then(([messenger, bar, syncNotice]) => {
      bar.showHistoryProgress();
      syncNotice.showSyncRefusal();
      return messenger.startMessenger();
    })
    .catch((error) => console.warn("Parley: the messenger did not start", error));
}
