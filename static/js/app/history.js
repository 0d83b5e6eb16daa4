// Message history for a newly linked device (DESIGN section 7, docs/protocol.md section 12).
// The approving primary builds the last 90 days as JSON, seals it as one secretstream,
// uploads the blob and sends {blob_id, key, hash, length, count} through the pairwise session. The
// new device accepts that key only from the approving device (its account's primary), once,
// downloads the blob, refuses it unless it opens whole, and imports it.
//
// What goes into the bundle and what comes out of it is the device engine's
// (historyBundle / historyRecords, docs/protocol.md section 22.7); this module seals,
// moves and stores it, with progress.

import { encoding, engine, openHistory, ready, sealHistory, strictjson, systemRng } from "../protocol/index.js";
import { api } from "./api.js";
import { Change, notify } from "./events.js";
import { sendHistoryKey } from "./outbox.js";
import { attachmentRecord, contactRecord, emptyConversation, textRecord, withMessage } from "./records.js";
import { withStateLock } from "./statelock.js";
import * as store from "./store.js";
import { transferProgress } from "./transfer.js";

const { b64uDecode, b64uEncode } = encoding;


/**
 * @typedef {object} HistoryProgress
 * @property {"send" | "receive"} role
 * @property {"building" | "uploading" | "sending" | "downloading" | "importing" | "done" | "failed"} state
 * @property {number} percent 0..100
 * @property {string} text what a person reads
 */

/** @param {HistoryProgress} progress */
function report(progress) {
  notify({ kind: Change.HISTORY, ...progress });
}

/** "Receiving your message history: 12 of 33 messages", or just "…" without numbers. @param {string} what @param {{text: string}} progress */
function progressText(what, progress) {
  return progress.text ? `${what}: ${progress.text}` : `${what}…`;
}

/** The history bundle of this device (the engine chooses what goes in; section 22.7). */
export async function buildHistory(now = Date.now()) {
  const contacts = (await store.readAll("contacts")).map((c) => ({ username: c.username, account_key: c.accountKey }));
  const messages = (await store.readAll("messages")).map((m) => ({ ...m, author_device: m.authorDevice }));
  const groupMessages = (await store.readAll("groupMessages")).map((l) => ({ ...l, group_id: l.group }));
  return engine.historyBundle(messages, contacts, now, groupMessages);
}

/**
 * Upload with progress (fetch has none for request bodies).
 * @param {string} deviceId @param {Uint8Array} blob @param {(fraction: number) => void} onProgress
 * @returns {Promise<{blob_id: string, length: number}>}
 */
function upload(deviceId, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/history?to=${encodeURIComponent(deviceId)}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    if (csrf) xhr.setRequestHeader("X-CSRFToken", decodeURIComponent(csrf.slice(10)));
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let data;
      try {
        data = strictjson.parseJson(xhr.responseText, { maxBytes: 1024 * 1024 });
      } catch {
        data = null; // an answer the decoder refuses is reported by its status alone
      }
      if (xhr.status >= 200 && xhr.status < 300 && data?.blob_id) resolve(data);
      else reject(new Error(data?.error?.message ?? `The server answered ${xhr.status}.`));
    });
    xhr.addEventListener("error", () => reject(new Error("The server cannot be reached.")));
    xhr.send(blob);
  });
}

/**
 * The files the history points at, granted to the new device, which no send named (19.5).
 * @param {string} deviceId @param {any} bundle
 */
async function shareFiles(deviceId, bundle) {
  const blobIds = bundle.conversations.flatMap((/** @type {any} */ c) =>
    c.messages.filter((/** @type {any} */ m) => m.attachment).map((/** @type {any} */ m) => m.attachment.blob_id),
  );
  const unique = [...new Set(blobIds)];
  for (let i = 0; i < unique.length; i += 1000) {
    await api("/api/attachments/grants", { method: "POST", body: { device_id: deviceId, blob_ids: unique.slice(i, i + 1000) } });
  }
}

/**
 * On the approving primary, after the new device is in the signed list: seal, upload, send
 * the key. Reports progress as "history" changes with role "send".
 * @param {string} deviceId the new device
 */
export async function sendHistory(deviceId) {
  await ready();
  try {
    report({ role: "send", state: "building", percent: 0, text: "Preparing your message history…" });
    const { bundle, count } = await buildHistory();
    const sealed = sealHistory(new TextEncoder().encode(JSON.stringify(bundle)), systemRng);
    const total = sealed.blob.length;
    const started = performance.now();
    /** @param {number} moved */
    const uploading = (moved) =>
      report({
        role: "send",
        state: "uploading",
        percent: Math.round((moved / Math.max(1, total)) * 90),
        text: progressText(
          "Sending your message history (encrypted)",
          transferProgress({ moved, total, count, elapsedMs: performance.now() - started }),
        ),
      });
    uploading(0);
    const { blob_id: blobId } = await upload(deviceId, sealed.blob, (fraction) =>
      uploading(Math.round(fraction * total)),
    );
    await shareFiles(deviceId, bundle);
    report({ role: "send", state: "sending", percent: 95, text: "Sending the key to the new device…" });
    await sendHistoryKey({
      historyFor: deviceId,
      body: {
        blob_id: blobId,
        key: b64uEncode(sealed.key),
        hash: b64uEncode(sealed.hash),
        length: sealed.length,
        count,
      },
    });
    report({
      role: "send",
      state: "done",
      percent: 100,
      text: `Your message history (${count} messages) was sent to the new device.`,
    });
  } catch (error) {
    report({
      role: "send",
      state: "failed",
      percent: 0,
      text: `The message history could not be sent: ${/** @type {any} */ (error).message ?? error}`,
    });
    throw error;
  }
}

/**
 * The history bundle key the device engine accepted (from the approving device, once).
 * @param {string} senderDevice the approving device
 * @param {{blob_id: string, key: string, hash: string, length: number, count?: number}} body
 */
export async function acceptHistoryKey(senderDevice, body) {
  const accepted = await withStateLock(async () => {
    const me = await store.getSelf();
    const state = await store.read("meta", "history");
    // The engine accepted the key (from the approving device, once; section 22.6); under
    // the lock, the first key to get here is the one kept.
    if (!me?.awaitingHistory || state) return false;
    await store.write("meta", { state: "downloading", body, from: senderDevice, at: Date.now() }, "history");
    return true;
  });
  if (!accepted) {
    console.warn("Parley: a history bundle key was refused (not expected, or not from the approving device).");
    return;
  }
  await receiveHistory(body);
}

/** A tab that reloaded while a download was pending tries again (the blob may be gone). */
export async function resumeHistory() {
  const state = await store.read("meta", "history");
  if (state?.state === "downloading") await receiveHistory(state.body);
}

/** @param {{blob_id: string, key: string, hash: string, length: number, count?: number}} body */
async function download(body) {
  const started = performance.now();
  /** @param {number} moved */
  const receiving = (moved) =>
    report({
      role: "receive",
      state: "downloading",
      percent: Math.min(90, Math.round((moved / Math.max(1, body.length)) * 90)),
      text: progressText(
        "Receiving your message history",
        transferProgress({ moved, total: body.length, count: body.count, elapsedMs: performance.now() - started }),
      ),
    });
  receiving(0);
  const response = await fetch(`/api/history/${encodeURIComponent(body.blob_id)}`, {
    credentials: "same-origin",
  });
  if (!response.ok || !response.body) {
    throw new Error(
      response.status === 404
        ? "The history bundle is no longer on the server (it can be downloaded only once)."
        : `The server answered ${response.status}.`,
    );
  }
  const reader = response.body.getReader();
  const parts = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    received += value.length;
    if (received > body.length) break;
    receiving(received);
  }
  const blob = new Uint8Array(received);
  let offset = 0;
  for (const part of parts) {
    blob.set(part.subarray(0, Math.min(part.length, received - offset)), offset);
    offset += part.length;
  }
  return blob;
}

/** @param {{blob_id: string, key: string, hash: string, length: number, count?: number}} body */
async function receiveHistory(body) {
  await ready();
  let imported;
  try {
    const blob = await download(body);
    const plaintext = openHistory(blob, {
      key: b64uDecode(body.key, { length: 32, what: "history key" }),
      expectedHash: b64uDecode(body.hash, { length: 32, what: "history hash" }),
      expectedLength: body.length,
    });
    const me = await store.getSelf();
    const contacts = (await store.readAll("contacts")).map((c) => c.username);
    imported = engine.historyRecords(strictjson.parseJson(plaintext, { maxBytes: plaintext.length }), {
      accountId: me?.accountId ?? "",
      contacts,
    });
  } catch (error) {
    const text = `Your message history was refused: ${/** @type {any} */ (error).message ?? error}. Nothing from it was imported.`;
    await store.write("meta", { state: "failed", text, at: Date.now() }, "history");
    report({ role: "receive", state: "failed", percent: 0, text });
    return;
  }
  report({ role: "receive", state: "importing", percent: 95, text: "Importing your message history…" });
  const count = await importHistory(imported);
  const text = `Your message history arrived: ${count} message${count === 1 ? "" : "s"}.`;
  await store.write("meta", { state: "done", text, count, at: Date.now() }, "history");
  report({ role: "receive", state: "done", percent: 100, text });
}

/**
 * Store what the engine chose to import, without overwriting what this device already has.
 * A group's texts show once this device reads the group's log (its listing on connect).
 * @param {{contacts: {username: string, account_key: string}[], messages: any[], group_messages: any[]}} imported
 */
async function importHistory({ contacts, messages, group_messages: groupMessages }) {
  const existingMessages = new Set((await store.readAll("messages")).map((m) => m.key));
  const existingLines = new Set((await store.readAll("groupMessages")).map((l) => l.key));
  const conversations = new Map((await store.readAll("conversations")).map((c) => [c.peer, c]));
  const now = Date.now();
  let count = 0;
  await store.transact(["contacts", "messages", "conversations", "groupMessages"], (s) => {
    for (const g of groupMessages) {
      const key = `${g.group_id}:${g.author}:${g.id}`;
      if (existingLines.has(key)) continue;
      existingLines.add(key);
      const status = g.outgoing ? { status: "sent" } : { readAt: now };
      s.groupMessages.put({ key, group: g.group_id, kind: "text", timestamp: g.timestamp, author: g.author, id: g.id, text: g.text, outgoing: g.outgoing, receivedAt: now, ...status });
      count += 1;
    }
    for (const c of contacts) s.contacts.put(contactRecord(c.username, c.account_key));
    const touched = new Map();
    for (const m of messages) {
      const fields = { ...m, authorDevice: m.author_device, readSent: true };
      const message = m.kind === "attachment" ? attachmentRecord({ ...fields, pointer: m.attachment }) : textRecord(fields);
      if (existingMessages.has(message.key)) continue;
      existingMessages.add(message.key);
      s.messages.put(message);
      count += 1;
      const summary = touched.get(m.conversation) ?? conversations.get(m.conversation) ?? emptyConversation(m.conversation);
      touched.set(m.conversation, withMessage(summary, message, summary.unread));
    }
    for (const summary of touched.values()) s.conversations.put(summary);
  });
  notify({ kind: Change.MESSAGES });
  notify({ kind: Change.CONTACTS });
  notify({ kind: Change.GROUPS });
  return count;
}

/** The last state of a history transfer to this device, for a page that opens later. */
export function historyState() {
  return store.read("meta", "history");
}
