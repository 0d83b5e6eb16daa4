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
import { retryMessage, sendText } from "./outbox.js";
import { conversations, messages } from "./records.js";
import { SendRefused, saveSettings, settings } from "./self.js";
import { historyState } from "./history.js";
import { drawQr } from "./qr.js";
import { getAcceptedList, getSelf } from "./store.js";
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

async function renderList() {
  const all = await conversations();
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
        h("span", { class: "conversation-name", text: c.peer }),
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

/** @param {string} peer */
async function renderConversation(peer) {
  byId("conversation-title").textContent = peer;
  byId("contact-link").setAttribute("href", `/chats/${encodeURIComponent(peer)}/contact`);
  const contact = await readContact(peer);
  const banner = byId("conversation-banner");
  banner.replaceChildren();
  composerText.disabled = false;
  /** @type {HTMLButtonElement} */ (byId("composer-send")).disabled = false;
  if (!contact) {
    const add = h("button", { class: "small", text: `Add ${peer} to contacts`, attrs: { type: "button" } });
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
        h("p", { text: `${peer} is not in your contacts. They get no delivery or read receipts from you until you add them.` }),
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
        `Nothing is sent to ${peer} until you check and confirm the new safety number. `,
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
    messageList.append(h("li", { class: "message-empty hint", text: `No messages with ${peer} yet. Say hello.` }));
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
  byId("contact-title").textContent = peer;
  byId("safety-peer").textContent = peer;
  byId("contact-back").setAttribute("href", `/chats/${encodeURIComponent(peer)}`);
  const contact = await readContact(peer);
  const number = byId("safety-number");
  const own = await getAcceptedList(me.accountId);
  const changed = byId("contact-changed");
  changed.hidden = !contact?.keyChanged;
  if (contact?.keyChanged) {
    byId("contact-changed-text").textContent = `${peer}'s security code changed. The number below is the one you had; after you accept, it changes to the new one. Compare the new number with ${peer} before you accept.`;
  }
  if (!contact || !own) {
    number.replaceChildren(h("span", { class: "hint", text: `Add ${peer} as a contact to see a safety number.` }));
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
  document.title = route.peer ? `${route.peer} · Parley` : "Chats · Parley";
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
  receipts.checked = (await settings()).readReceipts;
  await startMessenger();
  await show();
}

start().catch((error) => {
  say(composerMessage, "error", `Something went wrong: ${error?.message ?? error}`);
});
