// Every page: the device socket and the messenger engine when signed in, the progress of a
// history transfer, the account sync's refusals, new-message notifications and the unread
// count in the title, this device's last use (written to the synced state), and the
// logged-out state when the server says this device was removed.

import { REVOKED_EVENT } from "./api.js";
import { startDeviceSocket } from "./socket.js";
import { getSelf } from "./store.js";
import { showLoggedOut } from "./ui.js";

window.addEventListener(REVOKED_EVENT, () => showLoggedOut());

if (document.body.dataset.signedIn === "1") {
  startDeviceSocket();
  Promise.all([
    import("./messenger.js"),
    import("./historybar.js"),
    import("./syncnotice.js"),
    import("./notifications.js"),
    import("./title.js"),
    import("./lastuse.js"),
  ])
    .then(async ([messenger, bar, syncNotice, notifications, title, lastUse]) => {
      bar.showHistoryProgress();
      syncNotice.showSyncRefusal();
      await messenger.startMessenger();
      if (!(await getSelf())) return;
      notifications.startNotifications();
      title.startUnreadTitle();
      lastUse.startLastUse();
    })
    .catch((error) => console.warn("Parley: the messenger did not start", error));
}
