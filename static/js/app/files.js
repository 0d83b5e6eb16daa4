// Files in the web app (docs/protocol.md 19.5 and 26). A file picked, dropped or pasted is
// sealed here (protocol/attachments.js, a 64 KiB chunk at a time, yielding between pieces so
// typing never waits) and uploaded in pieces with its progress; after a dropped connection it
// goes on from the server's last stored piece, sealed again under the same key. Then its
// pointer is sent as a content of type 12 through the outbox. A file that came is fetched
// when the person asks, with its progress, checked against its pointer, and kept (a Blob of
// this page) only once it opened: an altered one leaves nothing.
//
// Transfers live in this page (a Map by message key); the message record says what is
// stored: an own file `uploading`, then `sending` like a text.

import { attachments, ContentType, encoding, ProtocolError, ready, systemRng } from "../protocol/index.js";
import { ApiError, api } from "./api.js";
import { Change, notify } from "./events.js";
import { groupRecord } from "./groups.js";
import { ringLeader } from "./outbox.js";
import { emptyConversation, fileSize, outboxItem, sentIn } from "./records.js";
import { SendRefused, self } from "./self.js";
import * as store from "./store.js";
import { h } from "./ui.js";

const { AttachmentOpener, AttachmentPointer, AttachmentSealer, blobSize } = attachments;
const { b64uEncode } = encoding;

/** The largest file, as the server says (a data attribute of the page's composer), 25 MB by default. */
export function maxFileBytes() {
  const said = Number(/** @type {HTMLElement | null} */ (document.querySelector("[data-max-file-bytes]"))?.dataset.maxFileBytes);
  return Number.isSafeInteger(said) && said > 0 ? said : 25_000_000;
}

const RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const THUMB_SIDE = 240;
const THUMB_BYTES = 16384;

/** @typedef {{done: number, total: number, controller: AbortController, state: string, error?: string}} Upload */
/** @typedef {{done: number, total: number, state: "fetching" | "done" | "failed", url?: string, error?: string}} Download */

/** @type {Map<string, Upload>} */
const uploads = new Map();
/** @type {Map<string, Download>} */
const downloads = new Map();

/** What this page knows of a message's transfer (for its line). @param {string} key */
export function transfer(key) {
  return uploads.get(key) ?? downloads.get(key) ?? null;
}

/** A line shows the progress: told at most every 250 ms per message. */
const told = new Map();
/** @param {Record<string, any>} change what changed (a chat, a group) @param {string} key @param {boolean} [now] */
function tell(change, key, now = false) {
  const last = told.get(key) ?? 0;
  if (!now && Date.now() - last < 250) return;
  told.set(key, Date.now());
  notify(/** @type {any} */ (change));
}

// ------------------------------------------------------------------ sending

/**
 * A small JPEG of an image, made on a canvas, and the image's own size; null for anything the
 * browser cannot draw.
 * @param {File} file
 * @returns {Promise<{thumbnail: InstanceType<typeof attachments.Thumbnail>, width: number, height: number} | null>}
 */
async function thumbnailOf(file) {
  if (!file.type.startsWith("image/")) return null;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return null;
  }
  const { width, height } = bitmap;
  const scale = Math.min(1, THUMB_SIDE / Math.max(width, height));
  const canvas = new OffscreenCanvas(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)));
  canvas.getContext("2d")?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  for (const quality of [0.7, 0.5, 0.3]) {
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality });
    if (blob.size <= THUMB_BYTES) {
      const data = new Uint8Array(await blob.arrayBuffer());
      const thumbnail = new attachments.Thumbnail({ type: "image/jpeg", data, width: canvas.width, height: canvas.height });
      return width <= 65535 && height <= 65535 ? { thumbnail, width, height } : { thumbnail, width: 0, height: 0 };
    }
  }
  return null;
}

/** @param {number} ms @param {AbortSignal} signal */
const pause = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = window.setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      window.clearTimeout(timer);
      reject(signal.reason);
    });
  });

/**
 * The blob of `file` in upload pieces of `pieceBytes`, sealed as it is read.
 * @param {File} file @param {InstanceType<typeof AttachmentSealer>} sealer @param {number} pieceBytes
 */
async function* pieces(file, sealer, pieceBytes) {
  let buffer = sealer.header;
  const take = () => {
    const piece = buffer.slice(0, pieceBytes);
    buffer = buffer.subarray(pieceBytes);
    return piece;
  };
  if (file.size === 0) buffer = encoding.concatBytes(buffer, sealer.push(new Uint8Array(0)));
  for (let offset = 0; offset < file.size; offset += pieceBytes) {
    const plain = new Uint8Array(await file.slice(offset, offset + pieceBytes).arrayBuffer());
    buffer = encoding.concatBytes(buffer, sealer.push(plain));
    while (buffer.length >= pieceBytes) yield take();
  }
  if (buffer.length) yield take();
}

/**
 * Upload the sealed file from piece `from` on; the number of pieces the server holds.
 * @param {File} file @param {InstanceType<typeof AttachmentSealer>} sealer
 * @param {{blob_id: string, piece_bytes: number}} opened @param {number} from
 * @param {Upload} upload @param {() => void} progressed
 */
async function uploadFrom(file, sealer, opened, from, upload, progressed) {
  let index = 0;
  let stored = from;
  for await (const piece of pieces(file, sealer, opened.piece_bytes)) {
    if (index >= from) {
      const answer = await api(`/api/attachments/${opened.blob_id}/pieces/${index}`, {
        method: "PUT",
        body: piece,
        signal: upload.controller.signal,
      });
      stored = answer.stored;
      upload.done = Math.min(upload.total, stored * opened.piece_bytes);
      progressed();
    }
    index += 1;
  }
  return stored;
}

/** @param {unknown} error */
const dropped = (error) => error instanceof ApiError && (error.status === 0 || error.status >= 500);

/**
 * Where a file goes: a chat (the message in "messages", its outbox item to the contact) or a
 * group (the line in "groupMessages", its outbox item a group send, groups.js).
 * @typedef {{store: "messages" | "groupMessages", key: (author: string, id: string) => string,
 *   fields: Record<string, any>, item: (item: any) => any, touch: (s: Record<string, IDBObjectStore>, line: any) => void,
 *   change: Record<string, any>}} Place
 */

/**
 * The chat with the contact `peer`. @param {string} peer @returns {Promise<Place>}
 */
async function chatPlace(peer) {
  const contact = await store.read("contacts", peer);
  if (!contact) throw new SendRefused(`Add ${peer} as a contact first.`, "not_a_contact");
  const conversation = (await store.read("conversations", peer)) ?? emptyConversation(peer);
  return {
    store: "messages",
    key: (author, id) => `${author}:${id}`, // messageKey(author, id)
    fields: { conversation: peer, readSent: true },
    item: (item) => item,
    touch: (s, line) => s.conversations.put(sentIn(conversation, line)),
    change: { kind: Change.MESSAGES, peer },
  };
}

/**
 * The group `groupId`: to its other members, as they are now. @param {string} groupId
 * @returns {Promise<Place>}
 */
async function groupPlace(groupId) {
  const me = await self();
  const record = await groupRecord(groupId);
  const to = [...(record?.chain?.members ?? [])].filter((a) => a !== me.accountId);
  return {
    store: "groupMessages",
    key: (author, id) => `${groupId}:${author}:${id}`,
    fields: { group: groupId, to },
    item: (item) => ({ ...item, group: groupId }),
    touch: () => {},
    change: { kind: Change.GROUPS, group: groupId },
  };
}

/**
 * Send `file` to the contact `peer`: kept at once as an own message that shows its upload,
 * uploaded, then sent as its pointer. Refused before anything is uploaded when it is over
 * the limit. @param {string} peer @param {File} file
 */
export async function sendFile(peer, file) {
  return sendIn(await chatPlace(peer), file);
}

/** The same to a group (docs/protocol.md 25.9): one group send. @param {string} groupId @param {File} file */
export async function sendGroupFile(groupId, file) {
  return sendIn(await groupPlace(groupId), file);
}

/** @param {Place} place @param {File} file */
async function sendIn(place, file) {
  await ready();
  const limit = maxFileBytes();
  if (file.size > limit) {
    throw new SendRefused(`Files can be at most ${fileSize(limit)}; ${file.name} is ${fileSize(file.size)}.`, "attachment_too_large");
  }
  const me = await self();
  const timestamp = Date.now();
  const id = b64uEncode(systemRng(16));
  const key = place.key(me.accountId, id);
  const picture = await thumbnailOf(file);
  const shown = { name: attachments.fileName(file.name), size: file.size, type: attachments.mediaType(file.type), ...(picture ? { thumbnail: picture.thumbnail } : {}) };
  const line = {
    ...place.fields,
    key,
    id,
    author: me.accountId,
    authorDevice: me.deviceId,
    outgoing: true,
    kind: "attachment",
    attachment: { name: shown.name, size: shown.size, type: shown.type, thumbnail: picture ? thumbnailJSON(picture.thumbnail) : undefined },
    text: `File: ${shown.name}`,
    timestamp,
    receivedAt: timestamp,
    status: "uploading",
  };
  const kept = place.store === "messages" ? ["messages", "conversations"] : ["groupMessages"];
  await store.transact(kept, (s) => {
    s[place.store].put(line);
    place.touch(s, line);
  });
  const upload = { done: 0, total: blobSize(file.size), controller: new AbortController(), state: "uploading" };
  uploads.set(key, upload);
  downloads.set(key, { done: 0, total: 0, state: "done", url: URL.createObjectURL(file) }); // this device has it
  tell(place.change, key, true);
  try {
    const sealed = await uploadFile(file, upload, () => tell(place.change, key));
    const size = picture?.width ? { width: picture.width, height: picture.height } : {};
    const body = new AttachmentPointer({ ...sealed, type: shown.type, name: shown.name, thumbnail: shown.thumbnail ?? null, ...size }).toBody();
    const recipient = place.store === "messages" ? line.conversation : me.accountId;
    const item = place.item(outboxItem(recipient, ContentType.ATTACHMENT, body, { messageId: id, timestamp, messageKey: key }));
    await store.transact([place.store, "outbox"], (s) => {
      s[place.store].put({ ...line, attachment: body, status: "sending" });
      s.outbox.add(item);
    });
    uploads.delete(key);
    ringLeader();
  } catch (error) {
    uploads.delete(key);
    if (upload.controller.signal.aborted) {
      await store.transact([place.store], (s) => s[place.store].delete(key)); // cancelled: gone
    } else {
      const reason = error instanceof ApiError || error instanceof SendRefused ? error.message : String(error);
      await store.transact([place.store], (s) => s[place.store].put({ ...line, status: "failed", reason }));
    }
  }
  tell(place.change, key, true);
  return line;
}

/**
 * Seal and upload `file`, going on after a dropped connection from the server's last piece.
 * @param {File} file @param {Upload} upload @param {() => void} progressed
 */
async function uploadFile(file, upload, progressed) {
  const opened = await api("/api/attachments", { method: "POST", body: { size: blobSize(file.size) } });
  let sealer = new AttachmentSealer(file.size, systemRng);
  const first = { key: sealer.key, header: sealer.header };
  let from = 0;
  for (let attempt = 0; ; attempt += 1) {
    try {
      await uploadFrom(file, sealer, opened, from, upload, progressed);
      break;
    } catch (error) {
      if (!dropped(error) || attempt >= RETRY_MS.length) throw error;
      upload.state = "waiting";
      progressed();
      await pause(RETRY_MS[attempt], upload.controller.signal);
      try {
        from = (await api(`/api/attachments/${opened.blob_id}/upload`)).stored;
      } catch (again) {
        if (!dropped(again)) throw again;
      }
      upload.state = "uploading";
      sealer = AttachmentSealer.keyed(file.size, first.key, first.header); // the same blob again
    }
  }
  const sealed = sealer.finish();
  return { blobId: opened.blob_id, key: sealed.key, digest: sealed.digest, plaintextHash: sealed.plaintextHash, size: file.size };
}

/** @param {InstanceType<typeof attachments.Thumbnail>} t */
function thumbnailJSON(t) {
  return { type: t.type, data: b64uEncode(t.data), width: t.width, height: t.height };
}

/** The person cancels an upload: nothing more is sent, the message goes. @param {string} key */
export function cancelUpload(key) {
  uploads.get(key)?.controller.abort(new DOMException("Cancelled", "AbortError"));
}

// ------------------------------------------------------------------ receiving

/**
 * Fetch, check and keep the file of a message (another's, or an own one sent from another
 * device): its progress while it comes, then a Blob URL, or why nothing was kept.
 * @param {{key: string, conversation?: string, group?: string, attachment: Record<string, any>}} message
 */
export async function fetchFile(message) {
  const { key } = message;
  const peer = message.group ? { kind: Change.GROUPS, group: message.group } : { kind: Change.MESSAGES, peer: message.conversation };
  if (downloads.get(key)?.state === "fetching" || downloads.get(key)?.state === "done") return;
  await ready();
  const pointer = AttachmentPointer.fromBody(message.attachment);
  const download = /** @type {Download} */ ({ done: 0, total: pointer.blobSize, state: "fetching" });
  downloads.set(key, download);
  tell(peer, key, true);
  const opener = new AttachmentOpener(pointer);
  const parts = [];
  try {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const headers = download.done ? { Range: `bytes=${download.done}-` } : undefined;
        const response = await fetch(`/api/attachments/${pointer.blobId}`, { credentials: "same-origin", headers });
        if (!response.ok || !response.body) {
          const answer = await response.json().catch(() => ({}));
          throw new ApiError({ status: response.status, code: answer?.error?.code ?? "http_error", message: answer?.error?.message ?? `The server answered ${response.status}.` });
        }
        if (download.done && response.status !== 206) throw new Error("The server sent the whole file again.");
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parts.push(opener.pull(value));
          download.done += value.length;
          tell(peer, key);
        }
        break;
      } catch (error) {
        // a dropped connection is tried again from the byte that came; a refusal is final
        if (error instanceof ProtocolError || error instanceof ApiError || attempt >= 3) throw error;
        await new Promise((resolve) => window.setTimeout(resolve, 1000 * (attempt + 1)));
      }
    }
    opener.finish();
    download.url = URL.createObjectURL(new Blob(parts, { type: pointer.type }));
    download.state = "done";
    // kept: the server may delete its copy once every device it went to has said so (19.5)
    api(`/api/attachments/${pointer.blobId}/fetched`, { method: "POST", body: {} }).catch((error) =>
      console.warn("Parley: the server was not told a file was fetched", error),
    );
  } catch (error) {
    parts.length = 0;
    download.state = "failed";
    download.error =
      error instanceof ProtocolError
        ? "This file was altered on the way; nothing was kept."
        : error instanceof ApiError && error.status === 404
          ? "The server has no such file for this device (it may have expired)."
          : `The file could not be fetched: ${/** @type {Error} */ (error).message}`;
  }
  tell(peer, key, true);
}

// ------------------------------------------------------------------ showing and picking

/** A thumbnail's b64u data as a data: URL. @param {{type: string, data: string}} t */
function thumbnailUrl(t) {
  const base64 = t.data.replace(/-/g, "+").replace(/_/g, "/");
  return `data:${t.type};base64,${base64}${"=".repeat((4 - (base64.length % 4)) % 4)}`;
}

/**
 * A picture another device sent is fetched once its line is on screen, when the person's
 * setting says so (the file is checked as any other; a large one still shows its progress).
 */
const picturesInView = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    picturesInView.unobserve(entry.target);
    const m = shownFiles.get(/** @type {HTMLElement} */ (entry.target).dataset.key ?? "");
    if (m) fetchFile(m);
  }
});
/** @type {Map<string, any>} the file messages on screen, by key */
const shownFiles = new Map();

/** The lines drawn before are gone: nothing of them is fetched when shown. */
export function forgetShownFiles() {
  picturesInView.disconnect();
  shownFiles.clear();
}

/**
 * A file in a conversation (a chat's message or a group's line): its picture (the thumbnail
 * until the file is here), its name and size, and what can be done: cancel its upload,
 * download it, save or open it.
 * @param {any} m @param {{autoFetch: boolean}} options
 */
export function renderFile(m, { autoFetch }) {
  const a = m.attachment ?? {};
  const t = /** @type {any} */ (transfer(m.key));
  const here = t && t.state === "done" && t.url;
  const picture = String(a.type).startsWith("image/") && here
    ? h("img", { class: "file-picture", attrs: { src: t.url, alt: a.name } })
    : a.thumbnail
      ? h("img", { class: "file-picture", attrs: { src: thumbnailUrl(a.thumbnail), alt: `Preview of ${a.name}`, width: String(a.thumbnail.width), height: String(a.thumbnail.height) } })
      : null;
  const box = h("div", { class: "file", attrs: { "data-file": a.name } }, picture, h("p", { class: "file-name" }, h("span", { text: a.name }), " ", h("span", { class: "hint", text: fileSize(a.size) })));
  const progress = (/** @type {string} */ what) =>
    h("progress", { class: "file-progress", attrs: { max: String(t.total || 1), value: String(t.done), "aria-label": `${what} ${a.name}` } });
  if (m.status === "uploading") {
    if (t && t.controller) {
      const cancel = h("button", { class: "link-button", text: "Cancel", attrs: { type: "button", "aria-label": `Cancel sending ${a.name}` } });
      cancel.addEventListener("click", () => cancelUpload(m.key));
      box.append(progress("Uploading"), h("p", { class: "hint", text: t.state === "waiting" ? "Waiting for the connection…" : `${fileSize(t.done)} of ${fileSize(t.total)}` }), cancel);
    } else {
      box.append(h("p", { class: "message-reason", text: "The upload stopped when the page was closed; send the file again." }));
    }
  } else if (t?.state === "fetching") {
    box.append(progress("Downloading"), h("p", { class: "hint", text: `${fileSize(t.done)} of ${fileSize(t.total)}` }));
  } else if (here) {
    box.append(
      h(
        "p",
        { class: "file-actions" },
        h("a", { class: "button-link", text: "Save", attrs: { href: t.url, download: a.name, "aria-label": `Save ${a.name}` } }),
        " ",
        h("a", { class: "button-link", text: "Open", attrs: { href: t.url, target: "_blank", rel: "noopener", "aria-label": `Open ${a.name}` } }),
      ),
    );
  } else if (a.blob_id) {
    if (t?.state === "failed") box.append(h("p", { class: "message-reason", text: t.error }));
    const get = h("button", { class: "secondary small", text: t?.state === "failed" ? "Try again" : "Download", attrs: { type: "button", "aria-label": `Download ${a.name}` } });
    get.addEventListener("click", () => fetchFile(m));
    box.append(get);
    if (!t && String(a.type).startsWith("image/") && autoFetch) {
      box.dataset.key = m.key;
      shownFiles.set(m.key, m);
      picturesInView.observe(box);
    }
  }
  return box;
}

/**
 * A composer takes files from its button, a paste (an image from the clipboard) or a drop on
 * its conversation; each goes as its own message.
 * @param {{button: HTMLElement, picker: HTMLInputElement, textarea: HTMLTextAreaElement,
 *   dropZone: HTMLElement, ready: () => boolean, send: (file: File) => Promise<unknown>,
 *   refused: (text: string) => void}} parts
 */
export function attachFiles({ button, picker, textarea, dropZone, ready: open, send, refused }) {
  const sendAll = async (/** @type {File[]} */ files) => {
    if (!open()) return;
    refused("");
    for (const file of files) {
      try {
        await send(file);
      } catch (error) {
        refused(error instanceof SendRefused ? error.message : `Not sent: ${/** @type {any} */ (error).message}`);
      }
    }
  };
  button.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    const picked = [...(picker.files ?? [])];
    picker.value = "";
    sendAll(picked);
  });
  textarea.addEventListener("paste", (event) => {
    const pasted = [...(event.clipboardData?.files ?? [])];
    if (!pasted.length) return;
    event.preventDefault(); // an image from the clipboard is sent as a file, not as text
    sendAll(pasted);
  });
  dropZone.addEventListener("dragover", (event) => {
    if (!open() || !event.dataTransfer?.types.includes("Files")) return;
    event.preventDefault();
    dropZone.classList.add("dropping");
  });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dropping"));
  dropZone.addEventListener("drop", (event) => {
    dropZone.classList.remove("dropping");
    if (!open() || !event.dataTransfer?.files.length) return;
    event.preventDefault();
    sendAll([...event.dataTransfer.files]);
  });
}
