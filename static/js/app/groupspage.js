// /groups: the groups this device holds, a new group, one group's conversation and its
// members (add, remove, rename, leave). What is shown comes from IndexedDB (groups.js) and
// is re-read when a group changes; every change goes through the group machine under the
// state lock. User text only ever via textContent.

import { encoding, ready } from "../protocol/index.js";
import { Change, changes } from "./events.js";
import { attachFiles, forgetShownFiles, renderFile, sendGroupFile } from "./files.js";
import { GroupRefused, changeGroup, changeText, createGroup, groupLines, groupRead, groupRecords } from "./groups.js";
import { displayNames } from "./names.js";
import { ringLeader, sendGroupText } from "./outbox.js";
import { SendRefused, settings } from "./self.js";
import { withStateLock } from "./statelock.js";
import { syncMutate } from "./sync.js";
import * as store from "./store.js";
import { setTitle } from "./title.js";
import { byId, formReady, formatDate, formatTime, h, say } from "./ui.js";

const root = byId("groups");
const list = byId("group-list");
const messageList = byId("group-message-list");
const composer = /** @type {HTMLFormElement} */ (byId("group-composer"));
const composerText = /** @type {HTMLTextAreaElement} */ (byId("group-composer-text"));
const composerSend = /** @type {HTMLButtonElement} */ (byId("group-composer-send"));
const composerMessage = byId("group-composer-message");
const membersPanel = byId("group-members");
const membersButton = byId("group-members-button");
const membersMessage = byId("group-members-message");
const newGroup = /** @type {HTMLFormElement} */ (byId("new-group-form"));

/** @type {string | null} the group shown */
let current = null;
/** @type {any} */
let me = null;

const STATUS_TEXT = { sending: "Sending…", sent: "Sent", failed: "Not sent" };

/** @param {string} path */
function parse(path) {
  const match = /^\/groups\/([A-Za-z0-9_-]{22})\/?$/.exec(path);
  return match ? match[1] : null;
}

/** @param {string} path */
function navigate(path) {
  history.pushState(null, "", path);
  show();
}

/** @param {number} timestamp */
function when(timestamp) {
  const date = new Date(timestamp);
  return date.toDateString() === new Date().toDateString() ? formatTime(date) : formatDate(date);
}

/** @param {Map<string, string>} names @param {string} account */
const nameIn = (names, account) => (account === me.accountId ? "You" : (names.get(account) ?? account));

/** The records with their last line, newest first. */
async function groupsWithLast() {
  const records = (await groupRecords()).filter((r) => r.chain);
  const out = [];
  for (const record of records) {
    const id = encodingId(record);
    const lines = await groupLines(id);
    const unread = lines.filter((l) => l.kind !== "notice" && !l.outgoing && !l.readAt).length;
    out.push({ record, id, last: lines[lines.length - 1] ?? null, unread });
  }
  return out.sort((a, b) => (b.last?.timestamp ?? 0) - (a.last?.timestamp ?? 0));
}

/** @param {any} record */
const encodingId = (record) => encoding.b64uEncode(record.groupId);

async function renderList() {
  const all = await groupsWithLast();
  const names = await displayNames();
  byId("group-empty").hidden = all.length > 0;
  list.replaceChildren(
    ...all.map(({ record, id, last, unread }) => {
      const member = record.chain.members.has(me.accountId);
      const preview = !member
        ? "You are no longer a member"
        : last?.kind === "text" || last?.kind === "attachment"
          ? `${nameIn(names, last.author)}: ${last.text}`
          : last?.change
            ? changeText(last.change, me.accountId, names)
            : (last?.text ?? `${record.chain.members.size} members`);
      const link = h(
        "a",
        { class: "conversation-link", attrs: { href: `/groups/${id}`, "data-nav": "" } },
        h("span", { class: "conversation-name" }, h("span", { class: "person-name", text: record.chain.name })),
        last
          ? h("time", { class: "conversation-time", text: when(last.timestamp), attrs: { datetime: new Date(last.timestamp).toISOString() } })
          : null,
        h("span", { class: "conversation-preview", text: preview }),
        unread ? h("span", { class: "unread", text: String(unread), attrs: { "aria-label": `${unread} unread` } }) : null,
      );
      if (id === current) link.setAttribute("aria-current", "page");
      const classes = unread ? "conversation-item has-unread" : "conversation-item";
      return h("li", { class: classes, attrs: { "data-group": id } }, link);
    }),
  );
}

async function renderMemberPicker() {
  const contacts = (await store.readAll("contacts")).sort((a, b) => (a.username < b.username ? -1 : 1));
  const box = byId("new-group-members");
  const checked = new Set([...box.querySelectorAll("input:checked")].map((i) => /** @type {HTMLInputElement} */ (i).value));
  box.replaceChildren(
    ...contacts.map((c) => {
      const id = `member-${c.username}`;
      const input = h("input", { attrs: { type: "checkbox", id, name: "members", value: c.username } });
      /** @type {HTMLInputElement} */ (input).checked = checked.has(c.username);
      const label = c.displayName || c.nickname ? `${c.nickname || c.displayName} (${c.username})` : c.username;
      return h("div", { class: "checkbox" }, input, h("label", { text: label, attrs: { for: id } }));
    }),
  );
  byId("new-group-no-contacts").hidden = contacts.length > 0;
}

/** @param {string} groupId */
async function renderGroup(groupId) {
  const record = (await groupRecords()).find((r) => encodingId(r) === groupId);
  const names = await displayNames();
  if (!record?.chain) {
    byId("group-title").textContent = "Group";
    setTitle("Group · Parley");
    messageList.replaceChildren(h("li", { class: "message-empty hint", text: "This device is still reading this group's membership, or holds no such group." }));
    composer.hidden = true;
    membersButton.hidden = true;
    membersPanel.hidden = true;
    return;
  }
  const chain = record.chain;
  byId("group-title").textContent = chain.name;
  setTitle(`${chain.name} · Parley`);
  const member = chain.members.has(me.accountId);
  const admin = chain.admins.has(me.accountId);
  membersButton.hidden = false;
  membersButton.textContent = `Members (${chain.members.size})`;
  renderMembers(groupId, chain, names, admin, member);
  const banner = byId("group-banner");
  const problem = record.conflict
    ? "The server showed members of this group different versions of its membership. Nothing more is sent to this group; start a new one to go on."
    : record.withheld
      ? "The server is keeping back a change of this group's membership. Nothing is sent to the group until this device has it."
      : !member
        ? "You are no longer a member of this group: you get nothing sent to it from now on."
        : "";
  banner.replaceChildren(...(problem ? [h("div", { class: `notice warn`, attrs: { role: "status" } }, h("p", { text: problem }))] : []));
  composer.hidden = !member;
  const blocked = Boolean(record.conflict || record.withheld);
  composerText.disabled = blocked;
  composerSend.disabled = blocked;
  const lines = await groupLines(groupId);
  const atBottom = messageList.scrollHeight - messageList.scrollTop - messageList.clientHeight < 40;
  autoPictures = (await settings()).downloadPictures;
  forgetShownFiles(); // the lines drawn before are gone
  messageList.replaceChildren(...lines.map((line) => renderLine(line, names)));
  if (!lines.length) messageList.append(h("li", { class: "message-empty hint", text: "No messages in this group yet." }));
  if (atBottom || messageList.dataset.group !== groupId) messageList.scrollTop = messageList.scrollHeight;
  messageList.dataset.group = groupId;
  if (member && lines.some((l) => l.kind !== "notice" && !l.outgoing && !l.readAt)) markRead(groupId);
}

/**
 * @param {string} groupId @param {any} chain @param {Map<string, string>} names
 * @param {boolean} admin @param {boolean} member
 */
function renderMembers(groupId, chain, names, admin, member) {
  const accounts = [...chain.members].sort((a, b) => (a === me.accountId ? -1 : b === me.accountId ? 1 : a < b ? -1 : 1));
  byId("group-member-list").replaceChildren(
    ...accounts.map((account) => {
      const row = h(
        "li",
        { class: "member", attrs: { "data-member": account } },
        h("span", { class: "member-name", text: account === me.accountId ? "You" : (names.get(account) ?? account) }),
        h("span", { class: "hint", text: `@${account}` }),
        chain.admins.has(account) ? h("span", { class: "member-role", text: "Admin" }) : null,
      );
      if (admin && account !== me.accountId) {
        const remove = h("button", { class: "secondary small", text: "Remove", attrs: { type: "button", "aria-label": `Remove ${names.get(account) ?? account} from the group` } });
        remove.addEventListener("click", () => act(groupId, "remove", [account], "", `${names.get(account) ?? account} was removed.`));
        row.append(remove);
      }
      return row;
    }),
  );
  const addForm = byId("group-add-form");
  addForm.hidden = !admin;
  if (admin) {
    const select = /** @type {HTMLSelectElement} */ (byId("group-add"));
    const addable = [...names.keys()].filter((a) => !chain.members.has(a)).sort();
    const chosen = select.value; // a render while the person picks keeps their pick
    select.replaceChildren(...addable.map((a) => h("option", { text: `${names.get(a)} (${a})`, attrs: { value: a } })));
    if (addable.includes(chosen)) select.value = chosen;
    select.disabled = !addable.length;
    /** @type {HTMLButtonElement} */ (byId("group-add-submit")).disabled = !addable.length;
    if (!addable.length) select.append(h("option", { text: "Every contact is a member" }));
  }
  const renameForm = byId("group-rename-form");
  renameForm.hidden = !admin;
  const rename = /** @type {HTMLInputElement} */ (byId("group-rename"));
  if (document.activeElement !== rename) rename.value = chain.name;
  byId("group-leave").hidden = !member;
}

/** @param {any} line @param {Map<string, string>} names */
function renderLine(line, names) {
  const time = h("time", { class: "message-time", text: when(line.timestamp), attrs: { datetime: new Date(line.timestamp).toISOString() } });
  if (line.kind === "notice") {
    const text = line.change ? changeText(line.change, me.accountId, names) : line.text;
    return h("li", { class: `message-notice ${line.tone ?? "info"}`, attrs: { "data-key": line.key } }, h("span", { text }), " ", time);
  }
  const item = h(
    "li",
    { class: `message ${line.outgoing ? "out" : "in"}`, attrs: { "data-key": line.key, "data-id": line.id } },
    line.outgoing ? null : h("p", { class: "message-author", text: nameIn(names, line.author) }),
    line.kind === "attachment" ? renderFile(line, { autoFetch: autoPictures }) : h("p", { class: "message-text", text: line.text }),
    h(
      "p",
      { class: "message-meta" },
      time,
      line.outgoing && line.status
        ? h("span", { class: "message-status", text: STATUS_TEXT[/** @type {keyof typeof STATUS_TEXT} */ (line.status)] ?? line.status, attrs: { "data-status": line.status } })
        : null,
    ),
  );
  if (line.outgoing && line.status === "sent" && line.to?.length) item.append(receiptsLine(line, names));
  if (line.status === "failed") item.append(h("p", { class: "message-reason", text: line.reason || "The server did not accept it." }));
  return item;
}

/**
 * "Delivered to 12 of 14 · Read by 9" under an own text: people, not devices (25.10); the
 * names are its title.
 * @param {any} line @param {Map<string, string>} names
 */
function receiptsLine(line, names) {
  const delivered = line.deliveredTo ?? [];
  const read = line.readBy ?? [];
  const who = (/** @type {string[]} */ accounts) => accounts.map((a) => nameIn(names, a)).join(", ");
  const text = `Delivered to ${delivered.length} of ${line.to.length}${read.length ? ` · Read by ${read.length}` : ""}`;
  const title = [delivered.length ? `Delivered to ${who(delivered)}` : "", read.length ? `Read by ${who(read)}` : ""].filter(Boolean).join(". ");
  return h("p", {
    class: "message-receipts",
    text,
    attrs: { "data-delivered": String(delivered.length), "data-read": String(read.length), ...(title ? { title } : {}) },
  });
}

/** The person sees the group: its new texts are read, and their senders told (25.10). @param {string} groupId */
async function markRead(groupId) {
  if (document.visibilityState !== "visible") return;
  try {
    const { receipts, position } = await withStateLock(() => groupRead(groupId));
    if (receipts) ringLeader();
    if (position) await syncMutate([["groups", [groupId], position]]); // the other own devices see it read
  } catch (error) {
    console.warn("Parley: read receipts for a group were not queued", error);
  }
}

/**
 * A change of the log, under the state lock, told in the members panel.
 * @param {string} groupId @param {string} kind @param {string[]} accounts @param {string} name @param {string} done
 */
async function act(groupId, kind, accounts, name, done) {
  say(membersMessage, "info", "Signing and checking the change…");
  for (const button of membersPanel.querySelectorAll("button")) /** @type {HTMLButtonElement} */ (button).disabled = true;
  try {
    await withStateLock(() => changeGroup(groupId, kind, accounts, name));
    say(membersMessage, "ok", done);
  } catch (error) {
    say(membersMessage, "error", error instanceof GroupRefused ? error.message : `Not changed: ${/** @type {any} */ (error).message}`);
  } finally {
    for (const button of membersPanel.querySelectorAll("button")) /** @type {HTMLButtonElement} */ (button).disabled = false;
    await refresh();
  }
}

async function show() {
  current = parse(location.pathname);
  root.dataset.view = current ? "conversation" : "list";
  byId("group-placeholder").hidden = Boolean(current);
  byId("group-conversation").hidden = !current;
  if (!current) setTitle("Groups · Parley");
  say(composerMessage, "info", "");
  await refresh();
  if (current && window.matchMedia("(min-width: 800px)").matches) composerText.focus();
}

/** @type {Promise<void> | null} */
let refreshing = null;
let again = false;
/**
 * Render what IndexedDB holds now. One render at a time: a change told while one runs makes
 * one more run after it, so an older read never paints over a newer one.
 */
function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      await renderList();
      await renderMemberPicker();
      if (current) await renderGroup(current);
    } while (again);
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

document.addEventListener("click", (event) => {
  const link = /** @type {HTMLElement} */ (event.target)?.closest?.("a[data-nav]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) return;
  const href = link.getAttribute("href");
  if (!href?.startsWith("/groups")) return;
  event.preventDefault();
  navigate(href);
});
window.addEventListener("popstate", () => show());
document.addEventListener("visibilitychange", () => {
  if (current && document.visibilityState === "visible") refresh();
});

membersButton.addEventListener("click", () => {
  membersPanel.hidden = !membersPanel.hidden;
  membersButton.setAttribute("aria-expanded", String(!membersPanel.hidden));
});

newGroup.addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = byId("new-group-message");
  const name = /** @type {HTMLInputElement} */ (byId("new-group-name")).value.trim();
  const members = [...newGroup.querySelectorAll("input[name=members]:checked")].map((i) => /** @type {HTMLInputElement} */ (i).value);
  if (!name) return say(message, "error", "Give the group a name.");
  if (!members.length) return say(message, "error", "Pick at least one contact to be in the group.");
  const submit = /** @type {HTMLButtonElement} */ (byId("new-group-submit"));
  submit.disabled = true;
  say(message, "info", "Creating the group…");
  try {
    const id = await withStateLock(() => createGroup(name, members));
    newGroup.reset();
    say(message, "info", "");
    /** @type {HTMLDetailsElement} */ (byId("new-group")).open = false;
    navigate(`/groups/${id}`);
  } catch (error) {
    say(message, "error", error instanceof GroupRefused ? error.message : `Not created: ${/** @type {any} */ (error).message}`);
  } finally {
    submit.disabled = false;
  }
});

byId("group-add-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const account = /** @type {HTMLSelectElement} */ (byId("group-add")).value;
  if (current && account) act(current, "add", [account], "", `${account} was added.`);
});

byId("group-rename-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ (byId("group-rename")).value.trim();
  if (current && name) act(current, "rename", [], name, "The group was renamed.");
});

byId("group-leave").addEventListener("click", () => {
  if (current && window.confirm("Leave this group? You get nothing sent to it from now on.")) {
    act(current, "leave", [], "", "You left the group.");
  }
});

composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = composerText.value.trim();
  if (!text || !current) return;
  say(composerMessage, "info", "");
  try {
    await sendGroupText(current, text);
    composerText.value = "";
    composerText.focus();
  } catch (error) {
    say(composerMessage, "error", error instanceof SendRefused ? error.message : `Not sent: ${/** @type {any} */ (error).message}`);
  }
});

/** Pictures are fetched when shown (the person's setting, read at each render). */
let autoPictures = true;

/** Files picked, dropped or pasted go to the open group, each as its own message. */
attachFiles({
  button: byId("group-composer-attach"),
  picker: /** @type {HTMLInputElement} */ (byId("group-composer-file")),
  textarea: composerText,
  dropZone: /** @type {HTMLElement} */ (messageList.parentElement),
  ready: () => Boolean(current) && !composer.hidden && !composerText.disabled,
  send: (file) => sendGroupFile(/** @type {string} */ (current), file),
  refused: (text) => say(composerMessage, text ? "error" : "info", text),
});

composerText.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

changes.addEventListener("change", (event) => {
  const kind = /** @type {CustomEvent} */ (event).detail?.kind;
  if (kind === Change.GROUPS || kind === Change.CONTACTS) refresh();
});

async function start() {
  await ready();
  me = await store.getSelf();
  if (!me) {
    root.replaceChildren(
      h(
        "section",
        { class: "card stack narrow" },
        h("h1", { text: "Groups" }),
        h("p", { class: "lede", text: "This browser holds no Parley device yet." }),
        h("a", { class: "button", text: "Sign in", attrs: { href: "/signin" } }),
      ),
    );
    return;
  }
  formReady(newGroup);
  await show();
}

start().catch((error) => say(composerMessage, "error", `Something went wrong: ${error?.message ?? error}`));
