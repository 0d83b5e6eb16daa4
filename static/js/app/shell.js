// Every page: the device socket when signed in, and the logged-out state when the server
// says this device was removed.

import { REVOKED_EVENT } from "./api.js";
import { startDeviceSocket } from "./socket.js";
import { showLoggedOut } from "./ui.js";

window.addEventListener(REVOKED_EVENT, () => showLoggedOut());

if (document.body.dataset.signedIn === "1") startDeviceSocket();
