// Small DOM helpers shared by the pages. User-supplied text only ever goes in via textContent.

/**
 * Build an element: h("p", {class: "hint", text: name}, child...).
 * @param {string} tag
 * @param {{class?: string, text?: string, attrs?: Record<string, string>, hidden?: boolean}} [props]
 * @param {...(Node | string | null | false | undefined)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.hidden) node.hidden = true;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** @param {string} id @returns {HTMLElement} */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node;
}

/**
 * Show (or clear, with text "") a message in a notice element.
 * @param {HTMLElement} node
 * @param {"error"|"warn"|"ok"|"info"} kind
 * @param {string} text
 */
export function say(node, kind, text) {
  node.className = `notice ${kind === "info" ? "" : kind}`.trim();
  node.textContent = text;
  node.hidden = !text;
  if (text && kind === "error") node.setAttribute("role", "alert");
  else node.removeAttribute("role");
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const STEPS = /** @type {const} */ ([
  ["year", 365 * 86400],
  ["month", 30 * 86400],
  ["week", 7 * 86400],
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
]);

/** "5 minutes ago", "yesterday", "just now". @param {Date} when @param {Date} [now] */
export function timeAgo(when, now = new Date()) {
  const seconds = Math.round((when.getTime() - now.getTime()) / 1000);
  for (const [unit, size] of STEPS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

const dateFormat = new Intl.DateTimeFormat("en", { day: "numeric", month: "short", year: "numeric" });
const timeFormat = new Intl.DateTimeFormat("en", { hour: "2-digit", minute: "2-digit" });

/** @param {Date} when */
export function formatDate(when) {
  return dateFormat.format(when);
}

/** @param {Date} when */
export function formatTime(when) {
  return timeFormat.format(when);
}

/** "123 456" @param {string} digits */
export function formatCheckCode(digits) {
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

/** The live region at the top of the page that holds account notices. */
export function noticesRegion() {
  let region = document.getElementById("notices");
  if (!region) {
    region = h("div", { class: "notices", attrs: { id: "notices", "aria-live": "polite" } });
    document.getElementById("main")?.prepend(region);
  }
  return region;
}

/** Replace the page with the logged-out state (local data is already wiped). */
export function showLoggedOut() {
  const main = document.getElementById("main");
  if (!main || main.dataset.loggedOut) return;
  main.dataset.loggedOut = "1";
  const heading = h("h1", { text: "This device was logged out", attrs: { tabindex: "-1" } });
  main.replaceChildren(
    h(
      "section",
      { class: "card stack logged-out", attrs: { "aria-labelledby": "logged-out-title" } },
      heading,
      h("p", {
        class: "lede",
        text: "Its keys and account data were deleted from this browser. Messages can no longer reach it.",
      }),
      h(
        "div",
        { class: "row" },
        h("a", { class: "button", text: "Link this browser again", attrs: { href: "/link" } }),
        h("a", { class: "button secondary", text: "Create an account", attrs: { href: "/signup" } }),
      ),
    ),
  );
  heading.id = "logged-out-title";
  heading.focus();
  for (const link of document.querySelectorAll("[data-signed-in-only]")) {
    /** @type {HTMLElement} */ (link).hidden = true;
  }
}

/**
 * A confirmation in the page's <dialog id="confirm">; resolves true when confirmed.
 * With `typed`, the person must type that text first (for irreversible actions).
 * @param {{title: string, body: string, confirm: string, typed?: string}} options
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, body, confirm, typed }) {
  const dialog = /** @type {HTMLDialogElement} */ (byId("confirm"));
  const input = /** @type {HTMLInputElement} */ (byId("confirm-typed"));
  const ok = /** @type {HTMLButtonElement} */ (byId("confirm-ok"));
  byId("confirm-title").textContent = title;
  byId("confirm-body").textContent = body;
  ok.textContent = confirm;
  const typedRow = byId("confirm-typed-row");
  typedRow.hidden = !typed;
  byId("confirm-typed-label").textContent = typed ? `Type ${typed} to confirm` : "";
  input.value = "";
  ok.disabled = Boolean(typed);
  input.oninput = () => {
    ok.disabled = input.value.trim() !== typed;
  };
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), {
      once: true,
    });
    dialog.showModal();
    (typed ? input : byId("confirm-cancel")).focus();
  });
}

/**
 * The page's script now handles `form`'s submit: enable the submit buttons the page ships
 * disabled (`data-wait-for-script`) and hide its "Loading…" hint. Before this a click does
 * nothing, and the CSP (`form-action 'none'`) refuses any native submission.
 * @param {HTMLFormElement} form
 */
export function formReady(form) {
  for (const button of form.querySelectorAll("button[data-wait-for-script]")) {
    /** @type {HTMLButtonElement} */ (button).disabled = false;
  }
  for (const hint of form.querySelectorAll(".form-loading")) /** @type {HTMLElement} */ (hint).hidden = true;
  form.dataset.ready = "1";
}
