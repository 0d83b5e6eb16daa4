// A group in the device engine (docs/protocol.md section 25.8), mirror of
// protocol/engine/group.py: a sans-I/O machine of its own, `handle(GroupRecord, event) ->
// [GroupRecord, effects]`, one record per group a device holds.
//
// It reads the membership log and verifies it against the lists the adapter verified, takes
// sender-key distributions and group messages only from listed devices of members, holds what
// arrives before its chain or key, and plans each send: the targets, the key's rotation or
// distribution (section 25.4) and the message. Randomness is the event's `seed`, expanded
// with the TestRng stream, so a scenario replays exactly.

import { b64uDecode, b64uEncode, bytesEqual, toHex } from "../encoding.js";
import { GroupChainForked, MalformedMessage, ProtocolError } from "../exceptions.js";
import {
  compareHead,
  decodeEntry,
  entryBytes,
  entryHash,
  EntryKind,
  GroupEntry,
  verifyChain,
  ZERO_HASH,
} from "../groups.js";
import { TestRng } from "../rng.js";
import {
  decodeGroupMessage,
  decryptGroup,
  distributionBody,
  encryptGroup,
  newSenderKey,
  prepareSend,
  receivingKey,
  SenderKey,
} from "../senderkeys.js";
import { ContentType, decodeContent, MAX_RECEIPT_IDS } from "../content.js";
import { GroupContent, GroupListsWanted, GroupNotice, GroupReceipt, GroupSend, GroupSign, HttpRequest, SendContent } from "./effects.js";
import {
  GroupAnswered,
  GroupChangeWanted,
  GroupFetchWanted,
  GroupKeyReceived,
  GroupListsKnown,
  GroupMessageReceived,
  GroupMessagesRead,
  GroupReceiptReceived,
  GroupSendAnswered,
  GroupSendWanted,
  GroupSigned,
} from "./events.js";
import { Held, MAX_HELD, MAX_WRITE_ATTEMPTS, Outgoing, RECEIVING_CHAINS, WaitingSend, Writing } from "./groupstate.js";
import { MAX_MISMATCH_RETRIES } from "./sending.js";

/** @typedef {import("./groupstate.js").GroupRecord} GroupRecord */
/** @typedef {import("./groupstate.js").Lists} Lists */
/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {import("./events.js").GroupEvent} GroupEvent */
/** @typedef {import("../rng.js").Rng} Rng */
/** @typedef {import("../senderkeys.js").ReceivingKey} ReceivingKey */
/** @typedef {import("../groups.js").GroupState} GroupState */

export const GROUPS_PATH = "/api/groups";

/** @type {Record<string, number>} */
export const KINDS = Object.fromEntries(Object.entries(EntryKind).map(([name, value]) => [name.toLowerCase(), value]));
const KIND_NAMES = Object.fromEntries(Object.entries(KINDS).map(([name, value]) => [value, name]));
const isUint = (/** @type {any} */ v) => Number.isSafeInteger(v) && v >= 0;

/** What one event asks for besides its effects: a fetch, and lists. */
class Turn {
  constructor() {
    /** @type {Effect[]} */
    this.effects = [];
    this.fetch = false;
    /** @type {Set<string>} */
    this.missing = new Set();
  }
  /** @param {string} what @param {Record<string, any>} data */
  notice(what, data) {
    this.effects.push(new GroupNotice(what, data));
  }
}

/**
 * @param {GroupRecord} record
 * @param {GroupEvent} event
 * @returns {[GroupRecord, Effect[]]}
 */
export function handle(record, event) {
  const turn = new Turn();
  if (event instanceof GroupFetchWanted) {
    turn.fetch = true;
  } else if (event instanceof GroupAnswered) {
    record = answered(record, turn, event);
  } else if (event instanceof GroupListsKnown) {
    const rng = TestRng(event.seed);
    if (record.page.length > 0) record = verifyPage(record, turn, record.page, record.pageMore, event.lists);
    record = resume(record, turn, event.lists);
    const { sends } = record;
    record = record.with({ sends: [] });
    for (const send of sends) record = planSend(record, turn, send.sendId, send.plaintext, event.lists, rng);
  } else if (event instanceof GroupKeyReceived) {
    const item = new Held("key", { sender: event.sender, senderDevice: event.senderDevice, body: { ...event.body } });
    record = takeKey(record, turn, item, event.lists, true);
    record = resume(record, turn, event.lists);
  } else if (event instanceof GroupMessageReceived) {
    record = takeMessage(record, turn, event.message, event.lists, true);
  } else if (event instanceof GroupSendWanted) {
    record = planSend(record, turn, event.sendId, event.plaintext, event.lists, TestRng(event.seed));
  } else if (event instanceof GroupChangeWanted) {
    record = changeWanted(record, turn, event);
  } else if (event instanceof GroupSigned) {
    record = signed(record, turn, event);
  } else if (event instanceof GroupSendAnswered) {
    record = sendAnswered(record, turn, event);
  } else if (event instanceof GroupReceiptReceived) {
    receiptReceived(record, turn, event);
  } else if (event instanceof GroupMessagesRead) {
    messagesRead(record, turn, event);
  } else {
    throw new TypeError(`not a group event: ${String(event)}`);
  }
  const { effects } = turn;
  if (turn.fetch) {
    let asked;
    [record, asked] = fetch(record);
    effects.push(...asked);
  }
  if (turn.missing.size > 0) effects.push(new GroupListsWanted([...turn.missing].sort()));
  return [record, effects];
}

/**
 * One fetch in flight; a second want is asked when the first is answered.
 * @param {GroupRecord} record @returns {[GroupRecord, Effect[]]}
 */
function fetch(record) {
  if (record.request !== null) return [record.with({ fetchAgain: true }), []];
  const requestId = `g${record.nextRequest}`;
  const path = `${entriesPath(record)}?after=${seqOf(record)}`;
  record = record.with({ request: requestId, nextRequest: record.nextRequest + 1 });
  return [record, [new HttpRequest(requestId, "GET", path)]];
}

/** @param {GroupRecord} record */
const entriesPath = (record) => `${GROUPS_PATH}/${b64uEncode(record.groupId)}/entries`;

/** @param {GroupRecord} record */
const seqOf = (record) => (record.chain !== null ? record.chain.seq : -1);

// ---------------------------------------------------------------- the log

/** @param {GroupRecord} record @param {Turn} turn @param {GroupAnswered} event */
function answered(record, turn, event) {
  const { writing } = record;
  if (writing !== null && event.requestId === writing.request) return written(record, turn, event, writing);
  if (event.requestId !== record.request) return record; // an answer to nothing this machine asked: ignored
  turn.fetch = record.fetchAgain;
  record = record.with({ request: null, fetchAgain: false });
  if (event.status !== 200) {
    turn.notice("group_unavailable", { status: event.status, code: codeOf(event) });
    return fetchFailed(record, turn);
  }
  let entries;
  let more;
  try {
    [entries, more] = parsePage(record, event.body);
  } catch (error) {
    if (!(error instanceof MalformedMessage)) throw error;
    turn.notice("group_refused", { error: "MalformedMessage", seq: seqOf(record) });
    return fetchFailed(record, turn);
  }
  return verifyPage(record, turn, entries, more, event.lists);
}

/** @param {GroupAnswered} event @returns {string} */
function codeOf(event) {
  const error = event.body?.error;
  const code = error !== null && typeof error === "object" ? error.code : null;
  return typeof code === "string" ? code : `http_${event.status}`;
}

/** @param {GroupRecord} record @param {any} body @returns {[Uint8Array[], boolean]} */
function parsePage(record, body) {
  if (body === null || typeof body !== "object" || !Array.isArray(body.entries)) {
    throw new MalformedMessage("group page: expected {head, entries, more}");
  }
  if (typeof body.more !== "boolean") throw new MalformedMessage("group page: expected a boolean more");
  /** @type {Uint8Array[]} */
  const entries = [];
  body.entries.forEach((/** @type {any} */ item, /** @type {number} */ i) => {
    const n = seqOf(record) + 1 + i;
    if (item === null || typeof item !== "object" || item.seq !== n || !isUint(item.seq)) {
      throw new MalformedMessage(`group page: expected the entry at seq ${n}`);
    }
    entries.push(b64uDecode(item.entry, { what: "group entry" }));
  });
  return [entries, body.more && entries.length > 0];
}

/**
 * Verify a page against the chain (all or nothing), once its actors' lists are known.
 * @param {GroupRecord} record @param {Turn} turn @param {Uint8Array[]} entries @param {boolean} more @param {Lists} lists
 */
function verifyPage(record, turn, entries, more, lists) {
  let decoded;
  try {
    decoded = entries.map((wire) => decodeEntry(wire));
  } catch (error) {
    if (!(error instanceof MalformedMessage)) throw error;
    turn.notice("group_refused", { error: "MalformedMessage", seq: seqOf(record) });
    return fetchFailed(record.with({ page: [], pageMore: false }), turn);
  }
  const missing = decoded.map((e) => e.actor).filter((a) => !lists.has(a));
  if (missing.length > 0) {
    for (const account of missing) turn.missing.add(account);
    return record.with({ page: entries, pageMore: more });
  }
  record = record.with({ page: [], pageMore: false });
  let chain;
  try {
    chain = verifyChain(entries, { deviceLists: deviceListsOf(lists), state: record.chain });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    turn.notice("group_refused", { error: error.name, seq: seqOf(record) });
    return fetchFailed(record, turn);
  }
  record = applied(record, turn, chain, decoded);
  if (more) {
    turn.fetch = true;
    return record;
  }
  const withheld = chain.seq < record.wanted;
  // told once, not at every fetch while it lasts
  if (withheld && !record.withheld) turn.notice("group_withheld", { wanted: record.wanted, served: chain.seq });
  record = resume(record.with({ withheld }), turn, lists);
  const { writing } = record;
  if (writing !== null && writing.stage === "waiting") record = sign(record, turn, writing);
  return record;
}

/**
 * The chain after verified entries: each told, the chains of former members dropped.
 * @param {GroupRecord} record @param {Turn} turn @param {GroupState} chain @param {GroupEntry[]} decoded
 */
function applied(record, turn, chain, decoded) {
  for (const entry of decoded) {
    turn.notice("group_changed", {
      seq: entry.seq,
      kind: KIND_NAMES[entry.kind],
      actor: entry.actor,
      accounts: [...entry.accounts],
      name: entry.name,
      timestamp: entry.timestamp,
    });
  }
  const receiving = new Map([...record.receiving].filter(([, keys]) => chain.members.has(keys[0].sender)));
  return record.with({ chain, receiving });
}

/** A change waiting for the fetch that failed is given up. @param {GroupRecord} record @param {Turn} turn */
function fetchFailed(record, turn) {
  const { writing } = record;
  if (writing !== null && writing.stage === "waiting") return changeRefused(record, turn, writing.changeId, "head_moved");
  return record;
}

/** @param {Lists} lists */
const deviceListsOf = (lists) => new Map([...lists].map(([account, devices]) => [account, [...devices.values()]]));

// ---------------------------------------------------------------- distributions and messages

/**
 * Whether an item counts (null), is held ("hold") or refused (the reason), in the order of
 * section 25.8. Only a signed item raises `wanted`; only a new one asks for a fetch.
 * @param {GroupRecord} record @param {Turn} turn @param {string} sender @param {string} device
 * @param {[number, Uint8Array]} head @param {Lists} lists @param {{signed: boolean, fresh: boolean}} how
 * @returns {[GroupRecord, string | null]}
 */
function take(record, turn, sender, device, [headSeq, headHash], lists, { signed, fresh }) {
  const { chain } = record;
  if (chain === null || headSeq > chain.seq) {
    if (signed) record = record.with({ wanted: Math.max(record.wanted, headSeq) });
    turn.fetch = turn.fetch || fresh;
    return [record, "hold"];
  }
  try {
    compareHead(chain, headSeq, headHash);
  } catch (error) {
    if (!(error instanceof GroupChainForked)) throw error;
    if (record.conflict === null) {
      record = record.with({ conflict: { seq: headSeq, hash: headHash } });
      turn.notice("group_forked", { seq: headSeq });
    }
    return [record, "GroupChainForked"];
  }
  if (!chain.members.has(sender)) return [record, "not_a_member"];
  const devices = lists.get(sender);
  if (devices === undefined) {
    turn.missing.add(sender);
    return [record, "hold"];
  }
  if (!devices.has(device)) return [record, "device_unlisted"];
  return [record, null];
}

/** @param {GroupRecord} record @param {Turn} turn @param {Held} item @param {string} code @param {string} sender @param {string} device */
function hold(record, turn, item, code, sender, device) {
  if (record.held.length >= MAX_HELD) {
    turn.notice(code, { sender, sender_device: device, error: "held_full" });
    return record;
  }
  return record.with({ held: [...record.held, item] });
}

/** @param {GroupRecord} record @param {Turn} turn @param {Held} item @param {Lists} lists @param {boolean} fresh */
function takeKey(record, turn, item, lists, fresh) {
  const { sender, senderDevice: device } = item;
  const refuse = (/** @type {string} */ error) => {
    turn.notice("group_key_refused", { sender, sender_device: device, error });
    return record;
  };
  let key;
  let head;
  try {
    key = receivingKey(item.body, { sender, device });
    head = /** @type {[number, Uint8Array]} */ ([item.body.head_seq, b64uDecode(item.body.head_hash, { length: 32 })]);
  } catch (error) {
    if (!(error instanceof MalformedMessage)) throw error;
    return refuse("MalformedMessage");
  }
  if (!bytesEqual(key.groupId, record.groupId)) return refuse("another_group");
  let verdict;
  [record, verdict] = take(record, turn, sender, device, head, lists, { signed: true, fresh });
  if (verdict === "hold") return hold(record, turn, item, "group_key_refused", sender, device);
  if (verdict !== null) return refuse(verdict);
  const held = (record.receiving.get(device) ?? []).filter((k) => k.sender === sender);
  if (held.some((k) => bytesEqual(k.keyId, key.keyId))) return record; // a key it holds already changes nothing
  const receiving = new Map(record.receiving).set(device, [key, ...held].slice(0, RECEIVING_CHAINS));
  return record.with({ receiving });
}

/** @param {GroupRecord} record @param {Turn} turn @param {Uint8Array} data @param {Lists} lists @param {boolean} fresh */
function takeMessage(record, turn, data, lists, fresh) {
  let message;
  try {
    message = decodeGroupMessage(data);
  } catch (error) {
    if (!(error instanceof MalformedMessage)) throw error;
    turn.notice("group_message_refused", { error: "MalformedMessage" });
    return record;
  }
  const { sender, device } = message;
  const refuse = (/** @type {string} */ error) => {
    turn.notice("group_message_refused", { sender, sender_device: device, error });
    return record;
  };
  if (!bytesEqual(message.groupId, record.groupId)) return refuse("another_group");
  const held = record.receiving.get(device) ?? [];
  const chain = held.find((k) => k.sender === sender && bytesEqual(k.keyId, message.keyId)) ?? null;
  /** @type {[ReceivingKey, Uint8Array] | null} */
  let decrypted = null;
  if (chain !== null) {
    try {
      decrypted = decryptGroup(chain, data);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return refuse(error.name);
    }
  }
  let verdict;
  const head = /** @type {[number, Uint8Array]} */ ([message.headSeq, message.headHash]);
  [record, verdict] = take(record, turn, sender, device, head, lists, { signed: chain !== null, fresh });
  if (verdict !== null && verdict !== "hold") return refuse(verdict);
  if (verdict === "hold" || decrypted === null) {
    return hold(record, turn, new Held("message", { data }), "group_message_refused", sender, device);
  }
  const [after, plaintext] = decrypted;
  const receiving = new Map(record.receiving).set(
    device,
    held.map((k) => (k === chain ? after : k)),
  );
  turn.effects.push(new GroupContent(sender, device, plaintext, message.headSeq));
  record = record.with({ receiving });
  if (sender !== record.accountId) delivered(record, turn, sender, plaintext);
  return record;
}

/** @param {GroupRecord} record @param {string} kind @param {string[]} ids */
const receiptBody = (record, kind, ids) => ({ kind, message_ids: ids, group_id: b64uEncode(record.groupId) });

/**
 * A text from a member is answered with a delivery receipt to the sender's devices (25.10):
 * group members get receipts whether or not they are contacts.
 * @param {GroupRecord} record @param {Turn} turn @param {string} sender @param {Uint8Array} plaintext
 */
function delivered(record, turn, sender, plaintext) {
  let content;
  try {
    content = decodeContent(plaintext);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return;
  }
  if (content.type === ContentType.TEXT || content.type === ContentType.ATTACHMENT) {
    const body = receiptBody(record, "delivered", [b64uEncode(content.messageId)]);
    turn.effects.push(new SendContent(sender, ContentType.RECEIPT, body));
  }
}

/**
 * Read receipts, when the setting is on, to a sender who is still a member.
 * @param {GroupRecord} record @param {Turn} turn @param {GroupMessagesRead} event
 */
function messagesRead(record, turn, event) {
  const { chain } = record;
  if (!event.readReceipts || event.messageIds.length === 0 || event.sender === record.accountId) return;
  if (chain === null || !chain.members.has(event.sender)) return;
  for (let start = 0; start < event.messageIds.length; start += MAX_RECEIPT_IDS) {
    const body = receiptBody(record, "read", event.messageIds.slice(start, start + MAX_RECEIPT_IDS));
    turn.effects.push(new SendContent(event.sender, ContentType.RECEIPT, body));
  }
}

/**
 * A receipt counts from a listed device of a current member, for this group; anything else
 * changes nothing (a receipt is no message: it is not told).
 * @param {GroupRecord} record @param {Turn} turn @param {GroupReceiptReceived} event
 */
function receiptReceived(record, turn, event) {
  const { chain } = record;
  if (chain === null || event.body.group_id !== b64uEncode(record.groupId)) return;
  if (!chain.members.has(event.sender) || event.sender === record.accountId) return;
  if (!event.lists.get(event.sender)?.has(event.senderDevice)) return;
  turn.effects.push(new GroupReceipt(event.sender, event.body.kind, [...event.body.message_ids]));
}

/**
 * Held distributions, then held messages, tried again in order; a resume never asks for a
 * fetch (what still waits, waits for the next one).
 * @param {GroupRecord} record @param {Turn} turn @param {Lists} lists
 */
function resume(record, turn, lists) {
  const items = record.held;
  record = record.with({ held: [] });
  for (const item of [...items.filter((i) => i.kind === "key"), ...items.filter((i) => i.kind !== "key")]) {
    record =
      item.kind === "key" ? takeKey(record, turn, item, lists, false) : takeMessage(record, turn, item.data, lists, false);
  }
  return record;
}

// ---------------------------------------------------------------- sending

/**
 * @param {GroupRecord} record @param {Turn} turn @param {string} sendId @param {Uint8Array} plaintext
 * @param {Lists} lists @param {Rng} rng @param {number} [attempt]
 */
function planSend(record, turn, sendId, plaintext, lists, rng, attempt = 1) {
  const { chain, accountId: account, deviceId } = record;
  const refuse = (/** @type {string} */ reason) => {
    turn.notice("group_send_refused", { send_id: sendId, reason });
    return record;
  };
  if (chain === null || !chain.members.has(account)) return refuse("not_a_member");
  if (record.conflict !== null) return refuse("forked");
  if (record.withheld) return refuse("withheld");
  const own = lists.get(account);
  if (own !== undefined && !own.has(deviceId)) return refuse("device_removed");
  const missing = [...chain.members].filter((m) => !lists.has(m));
  if (missing.length > 0) {
    for (const account of missing) turn.missing.add(account);
    if (record.sends.length >= MAX_HELD) return refuse("held_full");
    return record.with({ sends: [...record.sends, new WaitingSend(sendId, plaintext)] });
  }
  /** @type {[string, string, Uint8Array][]} */
  const targets = [];
  for (const member of [...chain.members].sort()) {
    const devices = /** @type {Map<string, Uint8Array>} */ (lists.get(member));
    for (const device of [...devices.keys()].sort()) {
      if (member === account && device === deviceId) continue;
      targets.push([member, device, /** @type {Uint8Array} */ (devices.get(device))]);
    }
  }
  const key = record.sending ?? newSenderKey(rng, { groupId: record.groupId, sender: account, device: deviceId });
  const plan = prepareSend(
    key,
    targets.map(([, , identity]) => identity),
    rng,
  );
  const head = { headSeq: chain.seq, headHash: chain.head };
  let body;
  let after;
  let message;
  try {
    body = distributionBody(plan.key, head);
    [after, message] = encryptGroup(plan.key, plaintext, { ...head, rng });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return refuse(error.name);
  }
  const wanted = new Set(plan.distributeTo.map((k) => toHex(k)));
  turn.effects.push(
    new GroupSend(
      sendId,
      message,
      targets.map(([member, device]) => [member, device]),
      targets.filter(([, , identity]) => wanted.has(toHex(identity))).map(([member, device]) => [member, device, body]),
      plan.rotated,
    ),
  );
  const outgoing = [...record.outgoing, new Outgoing(sendId, plaintext, wanted, attempt)].slice(-MAX_HELD);
  return record.with({ sending: after, outgoing });
}

/**
 * `accepted`: done. `mismatched_devices`: the devices the send was the first to give the key
 * get it again, and the same plaintext is planned again on the lists passed, at most
 * MAX_MISMATCH_RETRIES times. Another refusal is told.
 * @param {GroupRecord} record @param {Turn} turn @param {GroupSendAnswered} event
 */
function sendAnswered(record, turn, event) {
  const { frame } = event;
  const ref = frame.type === "accepted" ? frame.id : frame.ref;
  const out = record.outgoing.find((o) => o.sendId === ref);
  if (out === undefined) return record; // an answer to nothing this machine sent: ignored
  record = record.with({ outgoing: record.outgoing.filter((o) => o !== out) });
  if (frame.type === "accepted") return record;
  const reason = typeof frame.code === "string" ? frame.code : "refused";
  if (reason !== "mismatched_devices" || out.attempt > MAX_MISMATCH_RETRIES) {
    turn.notice("group_send_refused", { send_id: out.sendId, reason });
    return record;
  }
  if (record.sending !== null) {
    const takenBack = new Set([...record.sending.distributed].filter((k) => !out.distributed.has(k)));
    record = record.with({ sending: new SenderKey({ ...record.sending, distributed: takenBack }) });
  }
  return planSend(record, turn, out.sendId, out.plaintext, event.lists, TestRng(event.seed), out.attempt + 1);
}

// ---------------------------------------------------------------- writing the log

/** @param {GroupRecord} record @param {Turn} turn @param {GroupChangeWanted} event */
function changeWanted(record, turn, event) {
  const kind = Object.hasOwn(KINDS, event.change) ? KINDS[event.change] : null;
  const { chain } = record;
  let reason = null;
  if (record.writing !== null) reason = "busy";
  else if (kind === null) reason = "MalformedMessage";
  else if (kind === EntryKind.CREATE) reason = chain !== null ? "exists" : null;
  else if (chain === null || !chain.members.has(record.accountId)) reason = "not_a_member";
  else if (record.conflict !== null) reason = "forked";
  else if (record.withheld) reason = "withheld";
  if (reason !== null) {
    turn.notice("group_change_refused", { change_id: event.changeId, reason });
    return record;
  }
  const writing = new Writing({
    changeId: event.changeId,
    kind: event.change,
    accounts: [...new Set(event.accounts)].sort(), // a name given twice counts once
    name: event.name,
    actorKey: event.identityKey,
    timestamp: event.now,
    stage: "signing",
    seq: seqOf(record) + 1,
  });
  return sign(record, turn, writing);
}

/** Ask for the signature of the change on the chain's head. @param {GroupRecord} record @param {Turn} turn @param {Writing} writing */
function sign(record, turn, writing) {
  const { chain } = record;
  const entry = new GroupEntry({
    groupId: record.groupId,
    seq: seqOf(record) + 1,
    previous: chain !== null ? chain.head : ZERO_HASH,
    kind: KINDS[writing.kind],
    actor: record.accountId,
    actorKey: writing.actorKey,
    timestamp: writing.timestamp,
    accounts: writing.accounts,
    name: writing.name,
    signature: new Uint8Array(0),
  });
  let data;
  try {
    data = entryBytes(entry);
  } catch (error) {
    if (!(error instanceof MalformedMessage)) throw error;
    return changeRefused(record, turn, writing.changeId, "MalformedMessage");
  }
  turn.effects.push(new GroupSign(writing.changeId, data));
  return record.with({ writing: writing.with({ stage: "signing", seq: entry.seq, data, request: null }) });
}

/** Check the signed entry as every device will, then write it at head + 1. @param {GroupRecord} record @param {Turn} turn @param {GroupSigned} event */
function signed(record, turn, event) {
  const { writing } = record;
  if (writing === null || writing.changeId !== event.changeId || writing.stage !== "signing") return record; // a signature for nothing this machine asked: ignored
  if (seqOf(record) + 1 !== writing.seq) {
    // a fetch moved the head meanwhile: sign again
    if (writing.attempts >= MAX_WRITE_ATTEMPTS) return changeRefused(record, turn, writing.changeId, "head_moved");
    return sign(record, turn, writing.with({ attempts: writing.attempts + 1 }));
  }
  const wire = new Uint8Array([...writing.data, ...event.signature]);
  try {
    verifyChain([wire], { deviceLists: deviceListsOf(event.lists), state: record.chain });
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return changeRefused(record, turn, writing.changeId, error.name);
  }
  const requestId = `g${record.nextRequest}`;
  const body = { seq: writing.seq, entry: b64uEncode(wire) };
  turn.effects.push(new HttpRequest(requestId, "POST", entriesPath(record), body));
  return record.with({
    writing: writing.with({ stage: "posting", entry: wire, request: requestId }),
    nextRequest: record.nextRequest + 1,
  });
}

/** @param {GroupRecord} record @param {Turn} turn @param {GroupAnswered} event @param {Writing} writing */
function written(record, turn, event, writing) {
  const { chain } = record;
  if (event.status === 201) {
    record = record.with({ writing: null });
    if (chain !== null && chain.seq >= writing.seq) {
      if (!bytesEqual(chain.hashes[writing.seq], entryHash(writing.entry))) {
        turn.notice("group_change_refused", { change_id: writing.changeId, reason: "forked" });
        return record;
      }
    } else {
      // not yet read back by a fetch
      let after;
      try {
        after = verifyChain([writing.entry], { deviceLists: deviceListsOf(event.lists), state: chain });
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        turn.notice("group_change_refused", { change_id: writing.changeId, reason: error.name });
        return record;
      }
      record = applied(record, turn, after, [decodeEntry(writing.entry)]);
    }
    turn.notice("group_written", { change_id: writing.changeId, seq: writing.seq });
    return record;
  }
  if (event.status === 409 && codeOf(event) === "group_head_moved") {
    if (writing.attempts >= MAX_WRITE_ATTEMPTS) return changeRefused(record, turn, writing.changeId, "head_moved");
    turn.fetch = true;
    return record.with({ writing: writing.with({ stage: "waiting", request: null, attempts: writing.attempts + 1 }) });
  }
  return changeRefused(record, turn, writing.changeId, codeOf(event));
}

/** @param {GroupRecord} record @param {Turn} turn @param {string} changeId @param {string} reason */
function changeRefused(record, turn, changeId, reason) {
  turn.notice("group_change_refused", { change_id: changeId, reason });
  return record.with({ writing: null });
}
