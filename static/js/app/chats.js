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
import { FLAGS, blockedAccounts, setBlocked, setConversationFlag } from "./flags.js";
import { markRead } from "./inbox.js";
import { startMessenger } from "./messenger.js";
import { MAX_NAME, displayNames, fillMissingDisplayNames, nameOf, ownDeviceName, setNickname } from "./names.js";
import { notificationState, requestNotifications } from "./notifications.js";
import { attachFiles, forgetShownFiles, renderFile, sendFile } from "./files.js";
import { retryMessage, sendText } from "./outbox.js";
import { conversation as readConversation, conversations, messages } from "./records.js";
import { askAgain, retryKey, retryLines } from "./retries.js";
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
const archived = /** @type {HTMLDetailsElement} */ (byId("archived"));
const archivedList = byId("archived-list");
const chatMenu = byId("chat-menu");

/** @type {{view: "list" | "conversation" | "contact", peer: string | null}} */
let route = { view: "list", peer: null };
/** @type {any} */
let me = null;
/** Pictures are fetched when shown (the person's setting). */
let autoPictures = true;
/** Contacts whose display name was asked of the server on this page (once each). */
const askedNames = new Set();

const STATUS_TEXT = {
  uploading: "Uploading…",
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

/** The marks of a conversation, as small icons with words for screen readers. */
const MARKS = /** @type {const} */ ([
  ["blocked", "Blocked"],
  ["pinned", "Pinned"],
  ["muted", "Muted"],
]);

/** SVG paths of the marks (16 × 16), drawn in the text colour. */
const ICONS = {
  pinned: [["fill", "M5 1h6v1.5l-1 .6V7l2.5 2.5V11H8.75v4h-1.5v-4H3.5V9.5L6 7V3.1l-1-.6z"]],
  muted: [
    ["fill", "M8 1.5c.55 0 1 .45 1 1v.63A4.5 4.5 0 0 1 12.5 7.5v3l1.5 1.5v.5H2v-.5l1.5-1.5v-3A4.5 4.5 0 0 1 7 3.13V2.5c0-.55.45-1 1-1zM6.5 14h3a1.5 1.5 0 0 1-3 0z"],
    ["stroke", "M2 2l12 12"],
  ],
  blocked: [["stroke", "M8 2a6 6 0 1 0 0 12A6 6 0 0 0 8 2zM3.8 3.8l8.4 8.4"]],
};

const SVG = "http://www.w3.org/2000/svg";

/** @param {keyof typeof ICONS} name @param {string} label */
function mark(name, label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "mark-icon");
  for (const [paint, d] of ICONS[name]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("class", paint);
    svg.append(path);
  }
  return h("span", { class: `mark mark-${name}`, attrs: { title: label } }, svg, h("span", { class: "sr-only", text: label }));
}

/** @param {any} c a conversation @param {Set<string>} blocked */
function marksOf(c, blocked) {
  const on = { blocked: blocked.has(c.peer), pinned: Boolean(c.pinned), muted: Boolean(c.muted) };
  return MARKS.filter(([name]) => on[name]).map(([name, label]) => mark(name, label));
}

/** @param {any} c @param {Map<string, string>} names @param {Set<string>} blocked */
function conversationItem(c, names, blocked) {
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
    h(
      "span",
      { class: "conversation-badges" },
      ...marksOf(c, blocked),
      c.unread
        ? h("span", {
            class: "unread",
            text: String(c.unread),
            attrs: { "aria-label": `${c.unread} unread` },
          })
        : null,
    ),
  );
  if (current) link.setAttribute("aria-current", "page");
  const classes = ["conversation-item", c.unread ? "has-unread" : "", c.muted ? "is-muted" : "", c.pinned ? "is-pinned" : ""];
  return h("li", { class: classes.filter(Boolean).join(" "), attrs: { "data-peer": c.peer } }, link);
}

async function renderList() {
  const all = await conversations();
  const names = await displayNames();
  const blocked = await blockedAccounts();
  fillMissingDisplayNames(askedNames).catch((error) => console.warn("Parley: no display name", error));
  byId("conversation-empty").hidden = all.length > 0;
  // Pinned first, then by the last message (conversations() is newest first); archived apart.
  const main = all.filter((c) => !c.archived);
  const pinned = main.filter((c) => c.pinned);
  list.replaceChildren(...[...pinned, ...main.filter((c) => !c.pinned)].map((c) => conversationItem(c, names, blocked)));
  const away = all.filter((c) => c.archived);
  archived.hidden = !away.length;
  byId("archived-summary").textContent = `Archived (${away.length})`;
  const unread = away.filter((c) => c.unread).length;
  byId("archived-unread").textContent = unread ? `· ${unread} unread` : "";
  archivedList.replaceChildren(...away.map((c) => conversationItem(c, names, blocked)));
}

/** @param {number} timestamp */
function when(timestamp) {
  const date = new Date(timestamp);
  return date.toDateString() === new Date().toDateString() ? formatTime(date) : formatDate(date);
}

// ------------------------------------------------------------------ one conversation

/**
 * The person's name, and the conversation's marks after it.
 * @param {string} name @param {string} peer @param {HTMLElement[]} [marks]
 */
function showHeading(name, peer, marks = []) {
  const heading = byId(route.view === "contact" ? "contact-title" : "conversation-title");
  const title = personName(name, peer, "chat-title-name");
  if (marks.length) title.querySelector(".person-name")?.after(h("span", { class: "chat-marks" }, ...marks));
  heading.replaceChildren(title);
  setTitle(`${name} · Parley`);
}

/** @param {string} peer */
async function renderConversation(peer) {
  const contact = await readContact(peer);
  const name = nameOf(peer, contact);
  const flags = { ...((await readConversation(peer)) ?? {}), peer };
  const blocked = (await blockedAccounts()).has(peer);
  showHeading(name, peer, marksOf(flags, blocked ? new Set([peer]) : new Set()));
  byId("conversation").dataset.peer = peer;
  byId("contact-link").setAttribute("href", `/chats/${encodeURIComponent(peer)}/contact`);
  byId("contact-link").setAttribute("aria-label", `Contact: safety number and nickname of ${name}`);
  renderMenu(name, flags, blocked);
  composer.hidden = blocked;
  byId("blocked-bar").hidden = !blocked;
  byId("blocked-text").textContent = `You blocked ${name}. Their messages are not shown, and they get nothing from you.`;
  const banner = byId("conversation-banner");
  banner.replaceChildren();
  composerText.disabled = false;
  /** @type {HTMLButtonElement} */ (byId("composer-send")).disabled = false;
  // while blocked the bar below says what to do: nothing to add or confirm
  if (!blocked && !contact) {
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
  } else if (!blocked && contact?.keyChanged) {
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
  // a message that did not decrypt stands where it was sent, until it comes (24.2)
  const lines = [
    ...all.map((m) => ({ at: m.timestamp, node: () => renderMessage(m) })),
    ...(await retryLines(peer)).map((r) => ({ at: r.sent_at, node: () => renderRetry(r, name) })),
  ].sort((a, b) => a.at - b.at);
  const atBottom = messageList.scrollHeight - messageList.scrollTop - messageList.clientHeight < 40;
  forgetShownFiles(); // the lines drawn before are gone
  messageList.replaceChildren(...lines.map((line) => line.node()));
  if (!lines.length) {
    messageList.append(h("li", { class: "message-empty hint", text: `No messages with ${name} yet. Say hello.` }));
  }
  if (atBottom || messageList.dataset.peer !== peer) messageList.scrollTop = messageList.scrollHeight;
  messageList.dataset.peer = peer;
  readIfVisible();
}

/** What the conversation's menu offers, each the opposite of its state. */
const FLAG_TEXT = {
  pinned: ["Pin chat", "Unpin chat"],
  archived: ["Archive chat", "Unarchive chat"],
  muted: ["Mute notifications", "Unmute notifications"],
};

/** @param {string} name @param {any} flags the conversation's record @param {boolean} blocked */
function renderMenu(name, flags, blocked) {
  for (const button of chatMenu.querySelectorAll("button[data-flag]")) {
    const flag = /** @type {keyof typeof FLAG_TEXT} */ (/** @type {HTMLElement} */ (button).dataset.flag);
    const on = Boolean(flags[flag]);
    button.textContent = FLAG_TEXT[flag][on ? 1 : 0];
    /** @type {HTMLElement} */ (button).dataset.on = String(on);
  }
  const block = byId("chat-block");
  block.textContent = blocked ? `Unblock ${name}` : `Block ${name}`;
  block.dataset.on = String(blocked);
}

chatMenu.addEventListener("click", async (event) => {
  const button = /** @type {HTMLElement} */ (event.target)?.closest?.("button");
  const peer = route.peer;
  if (!button || !peer) return;
  const on = button.dataset.on !== "true";
  chatMenu.hidePopover();
  try {
    if (button.id === "chat-block") await setBlocked(peer, on);
    else if (FLAGS.includes(/** @type {any} */ (button.dataset.flag))) {
      await setConversationFlag(peer, /** @type {import("./flags.js").Flag} */ (button.dataset.flag), on);
    }
  } catch (error) {
    say(composerMessage, "error", `Not changed: ${/** @type {any} */ (error).message}`);
  }
  await refresh();
});

byId("unblock").addEventListener("click", async () => {
  if (!route.peer) return;
  await setBlocked(route.peer, false);
  await refresh();
  composerText.focus();
});

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
    m.kind === "attachment" ? renderFile(m, { autoFetch: autoPictures }) : h("p", { class: "message-text", text: m.text }),
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
  if (m.status === "failed" && m.kind === "attachment") {
    item.append(h("p", { class: "message-reason", text: m.reason || "The server did not accept it." }));
  } else if (m.status === "failed") {
    const reason = h("p", { class: "message-reason", text: m.reason || "The server did not accept it." });
    const retry = h("button", { class: "link-button", text: "Try again", attrs: { type: "button" } });
    retry.addEventListener("click", () => retryMessage(m.key));
    item.append(reason, retry);
  }
  return item;
}

/**
 * The line of a message from `name` that did not decrypt: waiting while this device asks for
 * it again, failed (with "Ask again") when the sender could not help or never answered.
 * @param {any} r a retry record (retries.js) @param {string} name
 */
function renderRetry(r, name) {
  const waiting = r.state === "waiting";
  const item = h(
    "li",
    {
      class: `message-retry ${waiting ? "waiting" : "failed"}`,
      attrs: { "data-retry": retryKey(r.sender_device, r.envelope_id), "data-state": r.state },
    },
    h("p", {
      class: "retry-text",
      text: waiting ? `Waiting for this message from ${name}` : `This message from ${name} could not be decrypted`,
    }),
    h("p", {
      class: "retry-hint hint",
      text: waiting
        ? "Your device asked for it again. It shows here when it comes."
        : `${name}'s device could not send it again. You can ask once more.`,
    }),
    h("time", {
      class: "message-time",
      text: when(r.sent_at),
      attrs: { datetime: new Date(r.sent_at).toISOString() },
    }),
  );
  if (!waiting) item.append(askAgainButton(r, `Ask ${name} again for this message`, messageList));
  return item;
}

/**
 * "Ask again" on a failed line; the line turns waiting and the button goes, so the keyboard
 * stays at `place`.
 * @param {any} r a failed retry record @param {string} label @param {HTMLElement} place
 */
function askAgainButton(r, label, place) {
  const button = h("button", { class: "small secondary", text: "Ask again", attrs: { type: "button", "aria-label": label } });
  button.addEventListener("click", async () => {
    /** @type {HTMLButtonElement} */ (button).disabled = true;
    place.focus();
    try {
      await askAgain(r.sender_device, r.envelope_id);
    } catch (error) {
      say(composerMessage, "error", `Not asked: ${/** @type {any} */ (error).message}`);
      /** @type {HTMLButtonElement} */ (button).disabled = false;
    }
  });
  return button;
}

/** Messages from the own devices that did not decrypt have no conversation: a notice in the list. */
async function renderOwnRetries() {
  const node = byId("own-retries");
  const own = me ? await retryLines(me.accountId) : [];
  node.hidden = !own.length;
  node.replaceChildren(
    ...own.map((r) => {
      const waiting = r.state === "waiting";
      return h(
        "div",
        { class: `notice ${waiting ? "" : "warn"}`.trim(), attrs: { "data-retry": retryKey(r.sender_device, r.envelope_id), "data-state": r.state } },
        h("p", {
          text: waiting
            ? `Waiting for a message from one of your other devices (sent ${when(r.sent_at)}).`
            : `A message from one of your other devices (sent ${when(r.sent_at)}) could not be decrypted.`,
        }),
        waiting ? null : askAgainButton(r, "Ask your other device again for this message", node),
      );
    }),
  );
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

/** Files picked, dropped or pasted go to the open conversation, each as its own message. */
attachFiles({
  button: byId("composer-attach"),
  picker: /** @type {HTMLInputElement} */ (byId("composer-file")),
  textarea: composerText,
  dropZone: /** @type {HTMLElement} */ (messageList.parentElement),
  ready: () => Boolean(route.peer),
  send: (file) => sendFile(/** @type {string} */ (route.peer), file),
  refused: (text) => say(composerMessage, "error", text),
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
  await renderOwnRetries();
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
const pictures = /** @type {HTMLInputElement} */ (byId("download-pictures"));
pictures.addEventListener("change", () => saveSettings({ downloadPictures: pictures.checked }));

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

/** This device's name as the server has it (ownDeviceName), once known. */
let deviceName = "";

/** "Alice · Laptop" at the top of the list. @param {{displayName?: string, accountId: string}} me @param {string} device */
function showAccount(me, device) {
  byId("chats-account").textContent = `${me.displayName || me.accountId} · ${device || "this device"}`;
}

changes.addEventListener("change", (event) => {
  const detail = /** @type {CustomEvent} */ (event).detail;
  if (detail?.kind === Change.ACCOUNT) {
    getSelf().then((me) => me && showAccount(me, deviceName || me.name));
  }
  if (detail?.kind === Change.SETTINGS) {
    settings().then((s) => {
      // changed on another own device
      receipts.checked = s.readReceipts;
      previews.checked = s.notificationPreviews;
      pictures.checked = s.downloadPictures;
      autoPictures = s.downloadPictures;
    });
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
  showAccount(me, me.name);
  ownDeviceName()
    .then((device) => {
      deviceName = device || me.name;
      showAccount(me, deviceName);
    })
    .catch(() => {});
  const current = await settings();
  receipts.checked = current.readReceipts;
  previews.checked = current.notificationPreviews;
  pictures.checked = current.downloadPictures;
  autoPictures = current.downloadPictures;
  renderNotificationState();
  await startMessenger();
  await show();
}

start().catch((error) => {
  say(composerMessage, "error", `Something went wrong: ${error?.message ?? error}`);
});
