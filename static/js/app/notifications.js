// System notifications of new messages (the Notification API). Only the leader tab raises
// them (several tabs are one device, socket.js), only while its page is hidden, titled with
// the sender's name and, unless the person turned previews on, without the text. One per
// conversation (its tag), replaced by the next; closed when the conversation is read, here or
// (through `closeNotification` or the unread count reaching 0) on another own device.
// Permission is asked only from the person's click (`requestNotifications`), never on load.
// A muted or archived conversation raises none (as WhatsApp's archive: it stays archived and
// silent when a message comes); a blocked account's messages are never stored, so never shown.

import { Change, changes } from "./events.js";
import { displayName } from "./names.js";
import { settings } from "./self.js";
import { onLeader } from "./socket.js";
import * as store from "./store.js";
import { notificationContent, notificationTag } from "./wording.js";

/** @typedef {"unsupported" | "default" | "granted" | "denied"} NotificationState */

/** conversation → the notification shown for it by this tab */
const shown = new Map();
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("parley-notifications");
let started = false;

/** Whether this browser shows notifications, and what the person allowed. @returns {NotificationState} */
export function notificationState() {
  if (typeof Notification === "undefined") return "unsupported";
  return Notification.permission;
}

/** Ask the browser for permission (call from a click only). @returns {Promise<NotificationState>} */
export async function requestNotifications() {
  if (typeof Notification === "undefined") return "unsupported";
  await Notification.requestPermission();
  return notificationState();
}

/**
 * Close the notification of the conversation with `peer` in whichever tab of this browser
 * shows it: the conversation was read here, or on another own device.
 * @param {string} peer
 */
export function closeNotification(peer) {
  closeHere(peer);
  channel?.postMessage({ close: peer });
}

/** @param {string} peer */
function closeHere(peer) {
  const notification = shown.get(peer);
  shown.delete(peer);
  notification?.close();
}

/** @param {string} peer */
function openConversation(peer) {
  const path = `/chats/${encodeURIComponent(peer)}`;
  if (location.pathname === "/chats" || location.pathname.startsWith("/chats/")) {
    history.pushState(null, "", path);
    window.dispatchEvent(new PopStateEvent("popstate"));
  } else {
    location.assign(path);
  }
}

/** A new message from `peer` was stored: tell the person if they are not looking. @param {string} peer */
async function incoming(peer) {
  if (document.visibilityState !== "hidden" || notificationState() !== "granted") return;
  const conversation = await store.read("conversations", peer);
  if (!conversation?.unread || conversation.muted || conversation.archived) return;
  const { notificationPreviews } = await settings();
  const { title, body } = notificationContent({
    name: await displayName(peer),
    text: conversation.lastOutgoing ? "" : conversation.lastText,
    unread: conversation.unread,
    previews: notificationPreviews,
  });
  closeHere(peer);
  const icon = /** @type {HTMLLinkElement | null} */ (document.querySelector('link[rel="icon"]'))?.href;
  const notification = new Notification(title, { body, tag: notificationTag(peer), ...(icon ? { icon } : {}) });
  shown.set(peer, notification);
  notification.addEventListener("click", () => {
    window.focus();
    closeHere(peer);
    openConversation(peer);
  });
  notification.addEventListener("close", () => {
    if (shown.get(peer) === notification) shown.delete(peer);
  });
}

/** A conversation changed: once nothing in it is unread (read in any tab or on another own device), its notification goes. @param {string} peer */
async function maybeRead(peer) {
  if (!shown.has(peer)) return;
  const conversation = await store.read("conversations", peer);
  if (!conversation?.unread) closeHere(peer);
}

/** Raise notifications from this tab once it leads (call on every signed-in page). */
export function startNotifications() {
  if (started) return;
  started = true;
  channel?.addEventListener("message", (event) => {
    if (typeof event.data?.close === "string") closeHere(event.data.close);
  });
  onLeader(() => {
    changes.addEventListener("change", (event) => {
      const detail = /** @type {CustomEvent} */ (event).detail;
      if (detail?.kind !== Change.MESSAGES || typeof detail.peer !== "string") return;
      const work = detail.incoming ? incoming(detail.peer) : maybeRead(detail.peer);
      work.catch((error) => console.warn("Parley: a notification failed", error));
    });
  });
}
