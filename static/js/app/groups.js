// This browser as an adapter of the group machine (static/js/protocol/engine/group.js,
// docs/protocol.md 25.8 and 25.9): one record per group in IndexedDB "groups", fed with
// what comes in (a group's doorbell, its deliveries, the sender keys the device engine
// accepted) and what the person does (a send, a change of the log). It performs what the
// machine asks: HTTP, a signature with this device's identity key, the members' verified
// device lists (lists.js), the distributions over the pairwise sessions (fanout.js); and it
// keeps the group conversation. No group rule lives here. Call the exported functions but
// `groupLines`, `groupRecords` and the page's helpers under the state lock.
//
//   groups         b64u group id → GroupRecord.toJSON()
//   groupMessages  {key, group, kind: "text" | "attachment" | "notice", timestamp, author?,
//                   authorDevice?, attachment? (a file's pointer, 26.2),
//                   id?, text, outgoing?, status? (own: sending, sent, failed), reason?,
//                   tone? (notice: info, warn), to? (own: the other members when sent),
//                   deliveredTo?, readBy? (own: members whose receipts came, 25.10),
//                   readAt? (another's: when the person saw it)}

import {
  Content,
  ContentType,
  decodeContent,
  encodeContent,
  encoding,
  engine,
  frames,
  groups,
  ProtocolError,
  senderkeys,
  systemRng,
} from "../protocol/index.js";
import { ApiError, api } from "./api.js";
import { loadKeys } from "./device.js";
import { Change, notify } from "./events.js";
import { encryptDistributions } from "./fanout.js";
import { currentList, suspended } from "./lists.js";
import { displayName } from "./names.js";
import { outboxItem } from "./records.js";
import { SendRefused, self, settings } from "./self.js";
import * as store from "./store.js";
import { onSynced, syncedValue } from "./sync.js";

const { b64uDecode, b64uEncode } = encoding;
const ENTRY_PREFIX = encoding.label(groups.ENTRY_LABEL);

/** The group machine's refusal of what the person asked, with its reason as `code`. */
export class GroupRefused extends Error {
  /** @param {string} message @param {string} code */
  constructor(message, code) {
    super(message);
    this.name = "GroupRefused";
    this.code = code;
  }
}

/** @param {string} groupId b64u @returns {Promise<engine.GroupRecord | null>} */
export async function groupRecord(groupId) {
  const stored = await store.read("groups", groupId);
  return stored ? engine.GroupRecord.fromJSON(stored) : null;
}

/** Every group this device holds a record of (a page reads them without the lock). */
export async function groupRecords() {
  return (await store.readAll("groups")).map((data) => engine.GroupRecord.fromJSON(data));
}

/** The lines of one group conversation, oldest first. @param {string} groupId */
export function groupLines(groupId) {
  return store.readIndex("groupMessages", "byGroup", IDBKeyRange.bound([groupId, 0], [groupId, Infinity]));
}

/** @param {Uint8Array} groupId @returns {Promise<engine.GroupRecord>} */
async function recordOrNew(groupId) {
  const found = await groupRecord(b64uEncode(groupId));
  if (found) return found;
  const me = await self();
  return new engine.GroupRecord({ accountId: me.accountId, deviceId: me.deviceId, groupId });
}

/** @param {string} groupId @returns {Promise<engine.GroupRecord>} */
async function heldRecord(groupId) {
  const record = await groupRecord(groupId);
  if (!record) throw new GroupRefused("This device holds no such group.", "no_such_group");
  return record;
}

/**
 * The active devices of the verified lists of `accounts` and of the own account: only what
 * the event needs; a list that cannot be had is left out (the machine waits for it).
 * @param {Iterable<string>} accounts @param {{refresh?: boolean}} [options]
 * @returns {Promise<Map<string, Map<string, Uint8Array>>>}
 */
async function listsOf(accounts, { refresh = false } = {}) {
  const me = await self();
  const lists = new Map();
  for (const account of [...new Set([me.accountId, ...accounts])].sort()) {
    let list;
    try {
      list = await currentList(account, { refresh });
    } catch (error) {
      console.warn(`Parley: no verified device list of ${account} for a group`, error);
      continue;
    }
    const out = suspended.get(account) ?? new Set();
    lists.set(account, new Map(list.devices.filter((d) => !out.has(d.deviceId)).map((d) => [d.deviceId, d.identityKey])));
  }
  return lists;
}

/** @param {engine.GroupRecord} record */
const membersOf = (record) => [...(record.chain?.members ?? [])];

/**
 * One event and every effect it leads to; the record stored at the end.
 * @param {engine.GroupRecord} record @param {any} event
 * @returns {Promise<{sends: engine.GroupSend[], notices: engine.GroupNotice[]}>}
 */
async function run(record, event) {
  const groupId = b64uEncode(record.groupId);
  const sends = [];
  const notices = [];
  const lines = [];
  const contents = [];
  const receipts = [];
  let effects;
  [record, effects] = engine.handleGroup(record, event);
  const queue = [...effects];
  const asked = new Set();
  while (queue.length) {
    const effect = queue.shift();
    let follow = null;
    if (effect instanceof engine.HttpRequest) {
      let status;
      let body;
      try {
        const options = effect.method === "GET" ? {} : { method: effect.method, body: effect.body ?? {} };
        ({ status, data: body } = await api(effect.path, { ...options, withStatus: true }));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        status = error.status;
        body = { error: { code: error.code, message: error.message, data: error.data } };
      }
      follow = new engine.GroupAnswered(effect.requestId, status, body, await listsOf([]), Date.now());
    } else if (effect instanceof engine.GroupSign) {
      const prefix = effect.data.subarray(0, ENTRY_PREFIX.length);
      if (!encoding.bytesEqual(prefix, ENTRY_PREFIX)) {
        throw new GroupRefused("Asked to sign what is no group entry.", "not_entry");
      }
      const keys = await loadKeys(await self());
      follow = new engine.GroupSigned(effect.changeId, keys.identity.sign(effect.data), await listsOf([]), Date.now());
    } else if (effect instanceof engine.GroupListsWanted) {
      const wanted = effect.accounts.filter((a) => !asked.has(a));
      if (wanted.length) {
        // a list that cannot be had is asked for once a run
        wanted.forEach((a) => asked.add(a));
        follow = new engine.GroupListsKnown(await listsOf(effect.accounts), Date.now(), systemRng(32));
      }
    } else if (effect instanceof engine.GroupSend) {
      sends.push(effect);
    } else if (effect instanceof engine.GroupContent) {
      const line = contentLine(groupId, effect, await self());
      if (line) lines.push(line);
    } else if (effect instanceof engine.SendContent) {
      contents.push(outboxItem(effect.recipient, effect.contentType, effect.body)); // a receipt (25.10)
    } else if (effect instanceof engine.GroupReceipt) {
      receipts.push(effect);
    } else if (effect instanceof engine.GroupNotice) {
      notices.push(effect);
      const line = await noticeLine(groupId, effect);
      if (line) lines.push(line);
    }
    if (follow) {
      let more;
      [record, more] = engine.handleGroup(record, follow);
      queue.push(...more);
    }
  }
  const final = record;
  const me = await self();
  await markCovered(groupId, lines);
  await store.transact(["groups", "groupMessages", "outbox"], (s) => {
    s.groups.put(final.toJSON(), groupId);
    for (const line of lines) s.groupMessages.put(line);
    for (const item of contents) s.outbox.add(item);
    for (const receipt of receipts) {
      for (const id of receipt.messageIds) {
        const request = s.groupMessages.get(`${groupId}:${me.accountId}:${id}`);
        request.onsuccess = () => {
          if (request.result?.outgoing) s.groupMessages.put(withReceipt(request.result, receipt));
        };
      }
    }
  });
  notify({ kind: Change.GROUPS, group: groupId });
  return { sends, notices };
}

/**
 * An own line with a member's receipt counted: a member is delivered when any of their
 * devices answered; read implies delivered.
 * @param {any} line @param {engine.GroupReceipt} receipt
 */
function withReceipt(line, receipt) {
  const add = (/** @type {string[] | undefined} */ list) => [...new Set([...(list ?? []), receipt.sender])];
  const deliveredTo = add(line.deliveredTo);
  return receipt.receipt === "read" ? { ...line, deliveredTo, readBy: add(line.readBy) } : { ...line, deliveredTo };
}

/**
 * A decrypted group content as a line of the conversation (texts only, in this version).
 * @param {string} groupId @param {engine.GroupContent} effect @param {any} me
 */
function contentLine(groupId, effect, me) {
  let content;
  try {
    content = decodeContent(effect.plaintext);
  } catch (error) {
    console.warn("Parley: a group content did not decode", error);
    return null;
  }
  if (content.type !== ContentType.TEXT && content.type !== ContentType.ATTACHMENT) return null;
  const id = b64uEncode(content.messageId);
  const file = content.type === ContentType.ATTACHMENT;
  return {
    key: `${groupId}:${effect.sender}:${id}`,
    group: groupId,
    kind: file ? "attachment" : "text",
    ...(file ? { attachment: content.body } : {}),
    timestamp: content.timestamp,
    author: effect.sender,
    authorDevice: effect.senderDevice,
    id,
    text: file ? `File: ${content.body.name}` : String(content.body.text),
    outgoing: effect.sender === me.accountId,
    status: effect.sender === me.accountId ? "sent" : undefined,
    receivedAt: Date.now(),
  };
}

/** What each change of the log says, after who made it. */
const CHANGES = {
  create: () => "created the group",
  add: (/** @type {string} */ who) => `added ${who}`,
  remove: (/** @type {string} */ who) => `removed ${who}`,
  leave: () => "left",
  promote: (/** @type {string} */ who) => `made ${who} an admin`,
  demote: (/** @type {string} */ who) => `made ${who} no longer an admin`,
  rename: (/** @type {string} */ _who, /** @type {string} */ name) => `renamed the group to “${name}”`,
};

/** Why the device refused what the server brought (the machine's codes), in plain words. */
const REASONS = {
  MalformedMessage: "it was damaged",
  another_group: "it belongs to another group",
  not_a_member: "its sender is not a member of the group",
  device_unlisted: "it came from a device that is not one of its sender's",
  ReplayDetected: "it is a copy of a message this device already read",
  SenderKeyUnknown: "it is under a key this device was never given",
  InvalidSignature: "its signature does not check",
  DecryptionFailed: "it does not decrypt",
  GroupChainForked: "it follows another version of the group's membership",
  GroupChainBroken: "a change in it does not follow on from the group's history",
  GroupSignerUnlisted: "a change in it is signed by a key that is none of its author's devices",
  GroupEntryForged: "a change in it is forged",
  GroupNotAdmin: "a change in it was made by someone who is not an admin",
  GroupRuleBroken: "a change in it breaks the group's rules",
  GroupTooLarge: `it would make the group larger than ${groups.MAX_GROUP_MEMBERS} members`,
  held_full: "too many messages are already waiting for this group's membership",
};

/** @param {unknown} code */
const reasonOf = (code) => REASONS[/** @type {keyof typeof REASONS} */ (String(code))] ?? `refused as ${code}`;

/**
 * A change of the log in plain words, with the names known now (a page renders it again
 * when a contact's name arrives later).
 * @param {{actor: string, kind: string, accounts: string[], name: string}} change
 * @param {string} me @param {Map<string, string>} names
 */
export function changeText(change, me, names) {
  const shown = (/** @type {string} */ a) => names.get(a) ?? a;
  const who = change.actor === me ? "You" : shown(change.actor);
  const accounts = change.accounts.map((a) => (a === me ? "you" : shown(a)));
  const words = CHANGES[/** @type {keyof typeof CHANGES} */ (change.kind)] ?? (() => "changed the group");
  return `${who} ${words(listed(accounts), change.name)}.`;
}

/** @param {string[]} names */
function listed(names) {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/**
 * A notice of the machine as a line in plain words, or null for what is not worth a line
 * (a change this device wrote is told as its `group_changed`; a send's or a change's refusal
 * is told where the person acted).
 * @param {string} groupId @param {engine.GroupNotice} notice
 */
async function noticeLine(groupId, { code, data }) {
  const me = await self();
  const name = async (/** @type {string} */ a) => (a === me.accountId ? "you" : await displayName(a));
  let text;
  let tone = "warn";
  /** @type {any} */
  let change;
  if (code === "group_changed") {
    change = { actor: String(data.actor), kind: String(data.kind), accounts: [...(data.accounts ?? [])].map(String), name: data.name ?? "" };
    const names = new Map();
    for (const a of [change.actor, ...change.accounts]) names.set(a, await displayName(a));
    text = changeText(change, me.accountId, names);
    tone = "info";
  } else if (code === "group_refused") {
    text = `The server's copy of this group's membership was refused: ${reasonOf(data.error)}. Nothing of it was accepted.`;
  } else if (code === "group_forked") {
    text = "The server showed members of this group different versions of its membership. Nothing more is sent to this group; start a new one.";
  } else if (code === "group_withheld") {
    text = "The server is keeping back a change of this group's membership. Nothing is sent to the group until it comes.";
  } else if (code === "group_message_refused" && data.sender) {
    text = `A message that claimed to be from ${await name(data.sender)} was refused: ${reasonOf(data.error)}.`;
  } else if (code === "group_message_refused") {
    text = `A message for this group was refused: ${reasonOf(data.error)}.`;
  } else if (code === "group_key_refused") {
    text = `A group key from ${await name(data.sender)} was refused: ${reasonOf(data.error)}.`;
  } else {
    return null;
  }
  // a change at its entry's time (the actor's clock), so it sits among the messages it came between
  const at = code === "group_changed" && Number.isSafeInteger(data.timestamp) ? data.timestamp : Date.now();
  return { key: `${groupId}:notice:${at}:${b64uEncode(systemRng(6))}`, group: groupId, kind: "notice", timestamp: at, text, tone, change };
}

// ------------------------------------------------------------------ what comes in

/** A `group_changed` doorbell, or a listed group whose head moved: read its log. @param {string} groupId */
export async function groupFetch(groupId) {
  const record = await recordOrNew(b64uDecode(groupId, { length: 16, what: "group id" }));
  await run(record, new engine.GroupFetchWanted(Date.now()));
}

/** On (re)connect: the groups the server lists for the account (19.4), each log read when
 * its head is past the chain this device holds. Outside the lock: it takes it per group.
 * @param {(work: () => Promise<void>) => Promise<void>} locked */
export async function groupsListed(locked) {
  const answer = await api(engine.GROUPS_PATH);
  for (const item of Array.isArray(answer?.groups) ? answer.groups : []) {
    const { group_id: groupId, head } = item ?? {};
    if (typeof groupId !== "string" || !Number.isSafeInteger(head)) continue; // a hint, verified when read
    await locked(async () => {
      const record = await groupRecord(groupId);
      if (!record?.chain || record.chain.seq < head) await groupFetch(groupId);
    }).catch((error) => console.warn("Parley: a listed group could not be read", error));
  }
}

/**
 * A sender key the device engine accepted over the pairwise session (accept_group_key).
 * @param {string} sender @param {string} senderDevice @param {Record<string, any>} body
 */
export async function groupKeyReceived(sender, senderDevice, body) {
  const groupId = b64uDecode(String(body.group_id), { length: 16, what: "group id" });
  const record = await recordOrNew(groupId);
  await run(record, new engine.GroupKeyReceived(sender, senderDevice, body, await listsOf([sender]), Date.now()));
}

/**
 * A receipt for group messages the device engine accepted over the pairwise session
 * (accept_group_receipt, 25.10); the machine decides whether it counts.
 * @param {string} sender @param {string} senderDevice @param {Record<string, any>} body
 */
export async function groupReceiptReceived(sender, senderDevice, body) {
  const record = await groupRecord(String(body.group_id));
  if (!record) return;
  await run(record, new engine.GroupReceiptReceived(sender, senderDevice, body, await listsOf([sender]), Date.now()));
}

/** A group line as the engine's read rules take it (`read`: seen here). @param {any} line */
function readLine(line) {
  return { id: String(line.id), kind: line.kind, outgoing: line.outgoing, timestamp: line.timestamp, read: Boolean(line.readAt) };
}

/**
 * New texts of others that the account's synced read position of the group covers were read
 * on another own device (22.8, `groups [group id]`): seen here too, with no receipt from here.
 * @param {string} groupId @param {any[]} lines
 */
async function markCovered(groupId, lines) {
  const texts = lines.filter((l) => (l.kind === "text" || l.kind === "attachment") && !l.outgoing);
  if (!texts.length) return;
  const covered = new Set(engine.readState(texts.map(readLine), await syncedValue("groups", [groupId])).read);
  const now = Date.now();
  for (const line of texts) if (covered.has(String(line.id))) line.readAt = now;
}

/**
 * The person sees a group's conversation: its texts from others not seen before are read,
 * and the machine answers each sender with read receipts (25.10). Returns whether receipts
 * may have been queued, and the read position to write to the account's state (22.8), which
 * the caller writes after it lets go of the state lock (the sync machine takes its own).
 * @param {string} groupId
 * @returns {Promise<{receipts: boolean, position: Record<string, any> | null}>}
 */
export async function groupRead(groupId) {
  const record = await groupRecord(groupId);
  if (!record?.chain) return { receipts: false, position: null };
  const all = await groupLines(groupId);
  const unread = all.filter((l) => (l.kind === "text" || l.kind === "attachment") && !l.outgoing && !l.readAt);
  if (!unread.length) return { receipts: false, position: null };
  const position = engine.readPosition(all.map(readLine), await syncedValue("groups", [groupId]));
  const now = Date.now();
  await store.transact(["groupMessages"], (s) => {
    for (const line of unread) s.groupMessages.put({ ...line, readAt: now });
  });
  const readReceipts = Boolean((await settings()).readReceipts);
  const bySender = Map.groupBy(unread, (/** @type {any} */ l) => String(l.author));
  for (const [sender, lines] of bySender) {
    const current = /** @type {engine.GroupRecord} */ (await groupRecord(groupId));
    await run(current, new engine.GroupMessagesRead(sender, lines.map((l) => String(l.id)), readReceipts, now));
  }
  return { receipts: readReceipts, position };
}

/**
 * Another own device read the group up to a timestamp: what came until then is seen here
 * too (no receipt from here: that device sent them).
 * @param {{index: string[], value: Record<string, any> | null}} change
 */
async function applySyncedRead({ index: [groupId], value }) {
  const all = await groupLines(groupId);
  const covered = new Set(engine.readState(all.map(readLine), value).read);
  if (!covered.size) return;
  const now = Date.now();
  await store.transact(["groupMessages"], (s) => {
    for (const line of all) if (line.kind !== "notice" && covered.has(String(line.id))) s.groupMessages.put({ ...line, readAt: now });
  });
  notify({ kind: Change.GROUPS, group: groupId });
}
onSynced("groups", applySyncedRead);

/**
 * The group message of a deliver entry (its pairwise part was handled before).
 * @param {string} sender @param {string} senderDevice @param {string} encoded b64u
 * @returns {Promise<string | null>} a reason it was refused before the machine, or null
 */
export async function groupMessageReceived(sender, senderDevice, encoded) {
  let data;
  let message;
  try {
    data = b64uDecode(encoded, { what: "group message" });
    message = senderkeys.decodeGroupMessage(data);
  } catch (error) {
    if (error instanceof ProtocolError) return `not a group message: ${error.message}`;
    throw error;
  }
  if (message.sender !== sender || message.device !== senderDevice) {
    return "a group message naming another sender than the device that sent it";
  }
  const record = await recordOrNew(message.groupId);
  await run(record, new engine.GroupMessageReceived(data, await listsOf([sender]), Date.now()));
  return null;
}

// ------------------------------------------------------------------ what the person does

/**
 * Write a change to the log: create (with `accounts` as the other members), add, remove,
 * promote, demote (`accounts`), leave, rename (`name`).
 * @param {engine.GroupRecord} record @param {string} change @param {string[]} accounts @param {string} name
 */
async function change(record, change, accounts, name) {
  const me = await self();
  const keys = await loadKeys(me);
  const changeId = b64uEncode(systemRng(12));
  const event = new engine.GroupChangeWanted(changeId, change, accounts, name, keys.identity.public, await listsOf(accounts), Date.now());
  const { notices } = await run(record, event);
  const refused = notices.find((n) => n.code === "group_change_refused" && n.data.change_id === changeId);
  if (refused) throw new GroupRefused(changeRefusal(String(refused.data.reason)), String(refused.data.reason));
}

/** @param {string} reason */
function changeRefusal(reason) {
  const words = {
    busy: "Another change of this group is still being made. Try again in a moment.",
    not_a_member: "You are not a member of this group.",
    GroupNotAdmin: "Only an admin of the group can do that.",
    GroupRuleBroken: "That change is not possible in this group as it is.",
    GroupTooLarge: `A group has at most ${groups.MAX_GROUP_MEMBERS} members.`,
    head_moved: "The group kept changing while this change was made. Try again.",
    forked: "The server showed this group's members different versions of it: nothing more can be changed.",
    withheld: "The server is keeping back a change of this group: nothing can be changed until it comes.",
    MalformedMessage: "That change cannot be written (a name too long?).",
  };
  return words[/** @type {keyof typeof words} */ (reason)] ?? `The group was not changed (${reason}).`;
}

/** A new group named `name` with `members` (usernames), this account its admin. @returns the group id */
export async function createGroup(name, members) {
  const me = await self();
  const record = new engine.GroupRecord({ accountId: me.accountId, deviceId: me.deviceId, groupId: groups.newGroupId(systemRng) });
  await change(record, "create", [me.accountId, ...members], name);
  return b64uEncode(record.groupId);
}

/** @param {string} groupId @param {string} kind @param {string[]} [accounts] @param {string} [name] */
export async function changeGroup(groupId, kind, accounts = [], name = "") {
  await change(await heldRecord(groupId), kind, accounts, name);
}

/**
 * Plan a group send of the text `item` holds: the frame to send, with the distributions
 * encrypted over the pairwise sessions (and cached for a resend, 24.3).
 * @param {any} item the outbox item @returns {Promise<any>} the `group_send` frame
 */
export async function planGroupSend(item) {
  const record = await heldRecord(item.group);
  const me = await self();
  const own = await currentList(me.accountId);
  const content = encodeContent(
    new Content({
      type: item.contentType, // a text or a file (26.2)
      messageId: b64uDecode(item.messageId, { length: 16, what: "message id" }),
      timestamp: item.timestamp,
      senderListVersion: own.version,
      senderListHash: own.hash,
      body: item.body,
    }),
  );
  const event = new engine.GroupSendWanted(item.envelopeId, content, await listsOf(membersOf(record)), Date.now(), systemRng(32));
  return frameOf(item, await run(record, event));
}

/**
 * The server's answer to a group send: null when it was accepted; after
 * `mismatched_devices`, the frame of the same text planned again on the members' lists
 * fetched and verified again. A refusal throws.
 * @param {any} item @param {any} answer the `accepted` or `error` frame
 */
export async function groupSendAnswered(item, answer) {
  const record = await heldRecord(item.group);
  const replan = answer.code === "mismatched_devices";
  const lists = replan ? await listsOf(membersOf(record), { refresh: true }) : await listsOf([]);
  const outcome = await run(record, new engine.GroupSendAnswered(answer, lists, Date.now(), systemRng(32)));
  if (answer.type === frames.ACCEPTED) return null;
  return frameOf(item, outcome);
}

/**
 * @param {any} item @param {{sends: engine.GroupSend[], notices: engine.GroupNotice[]}} outcome
 */
async function frameOf(item, { sends, notices }) {
  const send = sends.find((s) => s.sendId === item.envelopeId);
  if (!send) {
    const refused = notices.find((n) => n.code === "group_send_refused" && n.data.send_id === item.envelopeId);
    const reason = String(refused?.data.reason ?? "not_planned");
    throw new SendRefused(sendRefusal(reason), reason);
  }
  const keys = await encryptDistributions(item, send.distributions);
  return {
    type: frames.GROUP_SEND,
    v: frames.PROTOCOL_VERSION,
    id: send.sendId,
    group_id: item.group,
    message: b64uEncode(send.message),
    targets: send.targets.map(([, deviceId]) => deviceId),
    keys,
    // a file's blob is granted to the devices the send names (docs/protocol.md 19.5)
    ...(item.contentType === ContentType.ATTACHMENT ? { attachments: [item.body.blob_id] } : {}),
  };
}

/** @param {string} reason */
function sendRefusal(reason) {
  const words = {
    not_a_member: "You are no longer a member of this group.",
    forked: "The server showed this group's members different versions of it: nothing more is sent to it.",
    withheld: "The server is keeping back a change of this group: nothing is sent until it comes.",
    device_removed: "This device is no longer in your account's signed device list.",
    mismatched_devices: "The server kept refusing the members' devices, even with freshly verified device lists.",
  };
  return words[/** @type {keyof typeof words} */ (reason)] ?? `Not sent to the group (${reason}).`;
}
