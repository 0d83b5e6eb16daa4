// /chats: the conversation list, a conversation with its composer, and a contact's safety
// number. Everything shown comes from IndexedDB (records.js) and is re-read when the
// engine announces a change. User text only ever via textContent.

import {
  encoding,
  formatSafetyNumber,
  ready,
  safetyNumber,
  safetyQrPayload,
} from "../protocol/index.js";
import { addContact, confirmSecurityCode, contact as readContact } from "./contacts.js";
import { Change, changes } from "./events.js";
import { markRead } from "./inbox.js";
import { startMessenger } from "./messenger.js";
import { MAX_NAME, displayNames, fillMissingDisplayNames, nameOf, ownDeviceName, setNickname } from "./names.js";
import { notificationState, requestNotifications } from "./notifications.js";
import { retryMessage, sendText } from "./outbox.js";
import { conversations, messages } from "./records.js";
import { SendRefused, saveSettings, settings } from "./self.js";
import { historyState } from "./history.js";
import { drawQr } from "./qr.js";
import { getAcceptedList, getSelf } from "./store.js";
import { setTitle } from "./title.js";
import { byId, formReady, formatDate, formatTime, h, say } from "./ui.js";

const { b64uDecode } = encoding;

const root = byId("chats");
const list = byId("conversation-list");
const messageList = byId("message-list");
const composer = /** @type {HTMLFormElement} */ (byId("composer"));
const composerText = /** @type {HTMLTextAreaElement} */ (byId("composer-text"));
const composerMessage = byId("composer-message");

/** @type {{view: "list" | "conversation" | "contact", peer: string | null}} */
let route = { view: "list", peer: null };
/** @type {any} */
let me = null;
/** Contacts whose display name was asked of the server on this page (once each). */
const askedNames = new Set();

const STATUS_TEXT = {
  sending: "Sending…",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Not sent",
};

/** @param {string} path */
function parse(path) {
  const match = /^\/chats(?:\/([^/]+)(\/contact)?)?\/?$/.exec(path);
  if (!match || !match[1]) return { view: /** @type {const} */ ("list"), peer: null };
  const peer = decodeURIComponent(match[1]);
  return { view: match[2] ? /** @type {const} */ ("contact") : /** @type {const} */ ("conversation"), peer };
}

/** @param {string} path */
function navigate(path) {
  history.pushState(null, "", path);
  show();
}

// ------------------------------------------------------------------ conversation list

/**
 * A person's name with their username as secondary text ("Bob Marley @bob"); the username
 * alone when they have no other name.
 * @param {string} name @param {string} username @param {string} className
 */
function personName(name, username, className) {
  return h(
    "span",
    { class: className },
    h("span", { class: "person-name", text: name }),
    name !== username ? " " : null,
    name !== username ? h("span", { class: "person-username", text: `@${username}` }) : null,
  );
}

async function renderList() {
  const all = await conversations();
  const names = await displayNames();
  fillMissingDisplayNames(askedNames).catch((error) => console.warn("Parley: no display name", error));
  byId("conversation-empty").hidden = all.length > 0;
  list.replaceChildren(
    ...all.map((c) => {
      const current = route.peer === c.peer;
      const preview = c.lastText ? `${c.lastOutgoing ? "You: " : ""}${c.lastText}` : "No messages yet";
      const link = h(
        "a",
        {
          class: "conversation-link",
          attrs: { href: `/chats/${encodeURIComponent(c.peer)}`, "data-nav": "" },
        },
        personName(names.get(c.peer) ?? c.peer, c.peer, "conversation-name"),
        c.lastTimestamp
          ? h("time", {
              class: "conversation-time",
              text: when(c.lastTimestamp),
              attrs: { datetime: new Date(c.lastTimestamp).toISOString() },
            })
          : null,
        h("span", { class: "conversation-preview", text: preview }),
        c.unread
          ? h("span", {
              class: "unread",
              text: String(c.unread),
              attrs: { "aria-label": `${c.unread} unread` },
            })
          : null,
      );
      if (current) link.setAttribute("aria-current", "page");
      return h("li", { class: `conversation-item${c.unread ? " has-unread" : ""}`, attrs: { "data-peer": c.peer } }, link);
    }),
  );
}

/** @param {number} timestamp */
function when(timestamp) {
  const date = new Date(timestamp);
  return date.toDateString() === new Date().toDateString() ? formatTime(date) : formatDate(date);
}

// ------------------------------------------------------------------ one conversation

/** @param {string} name @param {string} peer */
function showHeading(name, peer) {
  const heading = byId(route.view === "contact" ? "contact-title" : "conversation-title");
  heading.replaceChildren(personName(name, peer, "chat-title-name"));
  setTitle(`${name} · Parley`);
}

/** @param {string} peer */
async function renderConversation(peer) {
  const contact = await readContact(peer);
  const name = nameOf(peer, contact);
  showHeading(name, peer);
  byId("conversation").dataset.peer = peer;
  byId("contact-link").setAttribute("href", `/chats/${encodeURIComponent(peer)}/contact`);
  byId("contact-link").setAttribute("aria-label", `Contact: safety number and nickname of ${name}`);
  const banner = byId("conversation-banner");
  banner.replaceChildren();
  composerText.disabled = false;
  /** @type {HTMLButtonElement} */ (byId("composer-send")).disabled = false;
  if (!contact) {
    const add = h("button", { class: "small", text: `Add ${name} to contacts`, attrs: { type: "button" } });
    add.addEventListener("click", async () => {
      add.disabled = true;
      try {
        await addContact(peer);
        await refresh();
      } catch (error) {
        say(composerMessage, "error", /** @type {any} */ (error).message);
        add.disabled = false;
      }
    });
    banner.append(
      h(
        "div",
        { class: "notice warn" },
        h("p", { text: `${name} is not in your contacts. They get no delivery or read receipts from you until you add them.` }),
        add,
      ),
    );
    composerText.disabled = true;
    /** @type {HTMLButtonElement} */ (byId("composer-send")).disabled = true;
  } else if (contact.keyChanged) {
    banner.append(
      h(
        "div",
        { class: "notice warn security-changed", attrs: { role: "alert" } },
        h("strong", { text: "Security code changed. " }),
        `Nothing is sent to ${name} until you check and confirm the new safety number. `,
        h("a", {
          text: "Check the safety number",
          attrs: { href: `/chats/${encodeURIComponent(peer)}/contact`, "data-nav": "" },
        }),
      ),
    );
    composerText.disabled = true;
    /** @type {HTMLButtonElement} */ (byId("composer-send")).disabled = true;
  }
  const all = await messages(peer);
  const atBottom = messageList.scrollHeight - messageList.scrollTop - messageList.clientHeight < 40;
  messageList.replaceChildren(...all.map(renderMessage));
  if (!all.length) {
    messageList.append(h("li", { class: "message-empty hint", text: `No messages with ${name} yet. Say hello.` }));
  }
  if (atBottom || messageList.dataset.peer !== peer) messageList.scrollTop = messageList.scrollHeight;
  messageList.dataset.peer = peer;
  readIfVisible();
}

/** @param {any} m */
function renderMessage(m) {
  if (m.kind === "notice") {
    return h(
      "li",
      { class: `message-notice ${m.tone ?? "info"}`, attrs: { "data-key": m.key } },
      h("span", { text: m.text }),
      " ",
      h("time", { class: "message-time", text: formatTime(new Date(m.timestamp)) }),
    );
  }
  const status = m.outgoing
    ? h("span", {
        class: "message-status",
        text: STATUS_TEXT[m.status] ?? m.status,
        attrs: { "data-status": m.status, ...(m.reason ? { title: m.reason } : {}) },
      })
    : null;
  const item = h(
    "li",
    {
      class: `message ${m.outgoing ? "out" : "in"}${m.kind === "unsupported" ? " unsupported" : ""}`,
      attrs: { "data-key": m.key, "data-id": m.id, "data-kind": m.kind },
    },
    h("p", { class: "message-text", text: m.text }),
    h(
      "p",
      { class: "message-meta" },
      h("time", {
        class: "message-time",
        text: when(m.timestamp),
        attrs: { datetime: new Date(m.timestamp).toISOString() },
      }),
      status,
    ),
  );
  if (m.status === "failed") {
    const reason = h("p", { class: "message-reason", text: m.reason || "The server did not accept it." });
    const retry = h("button", { class: "link-button", text: "Try again", attrs: { type: "button" } });
    retry.addEventListener("click", () => retryMessage(m.key));
    item.append(reason, retry);
  }
  return item;
}

function readIfVisible() {
  if (route.view === "conversation" && route.peer && document.visibilityState === "visible") {
    markRead(route.peer).catch((error) => console.warn("Parley: marking read failed", error));
  }
}

composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = composerText.value.trim();
  if (!text || !route.peer) return;
  say(composerMessage, "info", "");
  try {
    await sendText(route.peer, text);
    composerText.value = "";
    composerText.focus();
  } catch (error) {
    say(composerMessage, "error", error instanceof SendRefused ? error.message : `Not sent: ${/** @type {any} */ (error).message}`);
  }
});

composerText.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

// ------------------------------------------------------------------ contact page

/** @param {string} peer */
async function renderContact(peer) {
  const contact = await readContact(peer);
  const name = nameOf(peer, contact);
  showHeading(name, peer);
  byId("safety-peer").textContent = name;
  byId("contact-back").setAttribute("href", `/chats/${encodeURIComponent(peer)}`);
  renderNames(peer, contact);
  const number = byId("safety-number");
  const own = await getAcceptedList(me.accountId);
  const changed = byId("contact-changed");
  changed.hidden = !contact?.keyChanged;
  if (contact?.keyChanged) {
    byId("contact-changed-text").textContent = `${name}'s security code changed. The number below is the one you had; after you accept, it changes to the new one. Compare the new number with ${name} before you accept.`;
  }
  if (!contact || !own) {
    number.replaceChildren(h("span", { class: "hint", text: `Add ${name} as a contact to see a safety number.` }));
    return;
  }
  await ready();
  const digits = safetyNumber(
    me.accountId,
    b64uDecode(own.accountKey, { length: 32 }),
    peer,
    b64uDecode(contact.accountKey, { length: 32 }),
  );
  number.replaceChildren(
    ...formatSafetyNumber(digits)
      .split(" ")
      .map((group) => h("span", { class: "safety-group", text: group })),
  );
  number.dataset.digits = digits;
  drawQr(/** @type {HTMLCanvasElement} */ (byId("safety-qr")), safetyQrPayload(digits), { cell: 5 });
}

const nicknameForm = /** @type {HTMLFormElement} */ (byId("nickname-form"));
const nicknameInput = /** @type {HTMLInputElement} */ (byId("nickname"));
nicknameInput.maxLength = MAX_NAME;

/** The contact's own name and the person's nickname for them. @param {string} peer @param {any} contact */
function renderNames(peer, contact) {
  byId("contact-names").hidden = !contact;
  byId("contact-username").textContent = `@${peer}`;
  byId("contact-display-name").textContent = contact?.displayName || "None given";
  // Re-rendering (any change in any tab) must not take what the person is typing.
  if (document.activeElement !== nicknameInput) nicknameInput.value = contact?.nickname ?? "";
}

nicknameForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!route.peer) return;
  const message = byId("nickname-message");
  try {
    await setNickname(route.peer, nicknameInput.value);
    nicknameInput.blur();
    say(message, "ok", nicknameInput.value.trim() ? "Nickname saved. Only your devices see it." : "Nickname removed.");
  } catch (error) {
    say(message, "error", `The nickname was not saved: ${/** @type {any} */ (error).message}`);
  }
  await refresh();
});

byId("contact-confirm").addEventListener("click", async () => {
  if (!route.peer) return;
  try {
    await confirmSecurityCode(route.peer);
  } catch (error) {
    byId("contact-changed-text").textContent = `The new code could not be accepted: ${/** @type {any} */ (error).message}`;
    return;
  }
  await refresh();
});

// ------------------------------------------------------------------ page

async function show() {
  route = parse(location.pathname);
  root.dataset.view = route.view;
  byId("chat-placeholder").hidden = route.view !== "list";
  byId("conversation").hidden = route.view !== "conversation";
  byId("contact-page").hidden = route.view !== "contact";
  if (!route.peer) setTitle("Chats · Parley");
  if (route.view !== "contact") say(byId("nickname-message"), "info", "");
  await refresh();
  if (route.view === "conversation" && window.matchMedia("(min-width: 800px)").matches) {
    composerText.focus();
  }
}

let pending = false;
async function refresh() {
  if (pending) return;
  pending = true;
  await Promise.resolve();
  pending = false;
  await renderList();
  if (route.view === "conversation" && route.peer) await renderConversation(route.peer);
  if (route.view === "contact" && route.peer) await renderContact(route.peer);
  await renderHistoryState();
}

async function renderHistoryState() {
  const state = await historyState();
  const node = byId("history-state");
  if (state?.state === "failed") say(node, "error", state.text);
  else node.hidden = true;
}

document.addEventListener("click", (event) => {
  const link = /** @type {HTMLElement} */ (event.target)?.closest?.("a[data-nav]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) return;
  const href = link.getAttribute("href");
  if (!href || !href.startsWith("/chats")) return;
  event.preventDefault();
  navigate(href);
});
window.addEventListener("popstate", () => show());
document.addEventListener("visibilitychange", readIfVisible);

byId("add-contact").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ (byId("add-contact-name"));
  const message = byId("add-contact-message");
  const submit = /** @type {HTMLButtonElement} */ (byId("add-contact-submit"));
  const name = input.value.trim();
  if (!name) {
    say(message, "error", "Enter the username of the person you want to write to.");
    input.focus();
    return;
  }
  submit.disabled = true;
  say(message, "info", `Checking ${name}'s signed device list…`);
  try {
    await addContact(name);
    input.value = "";
    say(message, "info", "");
    navigate(`/chats/${encodeURIComponent(name)}`);
  } catch (error) {
    say(message, "error", /** @type {any} */ (error).message);
  } finally {
    submit.disabled = false;
  }
});
formReady(/** @type {HTMLFormElement} */ (byId("add-contact")));

const receipts = /** @type {HTMLInputElement} */ (byId("read-receipts"));
receipts.addEventListener("change", () => saveSettings({ readReceipts: receipts.checked }));
const previews = /** @type {HTMLInputElement} */ (byId("notification-previews"));
previews.addEventListener("change", () => saveSettings({ notificationPreviews: previews.checked }));

const NOTIFICATION_TEXT = {
  unsupported: "This browser cannot show notifications.",
  default: "Notifications are off.",
  granted: "Notifications are on: new messages are shown while Parley is in the background.",
  denied: "Notifications are blocked by the browser. Allow them for this site in the browser's settings.",
};

function renderNotificationState() {
  const state = notificationState();
  const node = byId("notifications-state");
  node.textContent = NOTIFICATION_TEXT[state];
  node.dataset.state = state;
  byId("notifications-button").hidden = state !== "default";
  byId("notification-previews-row").hidden = state === "unsupported";
}

byId("notifications-button").addEventListener("click", async () => {
  const button = /** @type {HTMLButtonElement} */ (byId("notifications-button"));
  button.disabled = true;
  try {
    await requestNotifications();
  } finally {
    button.disabled = false;
    renderNotificationState();
  }
});
navigator.permissions
  ?.query({ name: "notifications" })
  .then((status) => status.addEventListener("change", renderNotificationState))
  .catch(() => {});

changes.addEventListener("change", (event) => {
  const detail = /** @type {CustomEvent} */ (event).detail;
  if (detail?.kind === Change.SETTINGS) {
    settings().then((s) => (receipts.checked = s.readReceipts)); // changed on another own device
  }
  if (Object.values(Change).includes(detail?.kind)) refresh();
});

async function start() {
  me = await getSelf();
  if (!me) {
    root.replaceChildren(
      h(
        "section",
        { class: "card stack narrow" },
        h("h1", { text: "Chats" }),
        h("p", { class: "lede", text: "This browser holds no Parley device yet." }),
        h(
          "div",
          { class: "row" },
          h("a", { class: "button", text: "Sign in", attrs: { href: "/signin" } }),
          h("a", { class: "button secondary", text: "Link this browser", attrs: { href: "/link" } }),
        ),
      ),
    );
    return;
  }
  byId("chats-account").textContent = `${me.displayName || me.accountId} · ${me.name || "this device"}`;
  ownDeviceName()
    .then((device) => {
      byId("chats-account").textContent = `${me.displayName || me.accountId} · ${device || "this device"}`;
    })
    .catch(() => {});
  const current = await settings();
  receipts.checked = current.readReceipts;
  previews.checked = current.notificationPreviews;
  renderNotificationState();
  await startMessenger();
  await show();
}

start().catch((error) => {
  say(composerMessage, "error", `Something went wrong: ${error?.message ?? error}`);
});
