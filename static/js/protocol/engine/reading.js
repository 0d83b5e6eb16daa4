// What a conversation's read position means on a device (docs/protocol.md section 22.8);
// mirror of protocol/engine/reading.py: the synced `conversations [peer] {read_up_to}` is the
// timestamp up to which the person read the conversation on any own device. Pure functions
// both adapters call with the conversation's messages (`{id, kind, outgoing, timestamp,
// read}`, `read`: already read on this device) and the synced value (null, or an object;
// anything else is no position).

/** @typedef {{id: string, kind: string, outgoing?: boolean, timestamp: number, read?: boolean}} ReadMessage */

/** What is read and counted unread: texts and files (section 26). */
const READ_KINDS = ["text", "attachment"];

/** @param {unknown} value @returns {value is number} */
const isUint = (value) => Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;

/** @param {unknown} value @returns {value is Record<string, any>} */
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * The synced position: `read_up_to` of the value when it is a timestamp, else null.
 * @param {unknown} value @returns {number | null}
 */
export function readUpTo(value) {
  if (!isObject(value)) return null;
  const position = value.read_up_to;
  return isUint(position) ? position : null;
}

/** @param {Iterable<ReadMessage>} messages */
const incoming = (messages) => [...messages].filter((m) => READ_KINDS.includes(m.kind) && m.outgoing !== true);

/**
 * Of the incoming texts not yet read on this device, the ids the synced position covers
 * (`read`: read on another own device, so no read receipt from here) and those after it
 * (`unread`: the unread count), each in the order given.
 * @param {Iterable<ReadMessage>} messages @param {unknown} value
 * @returns {{read: string[], unread: string[]}}
 */
export function readState(messages, value) {
  const position = readUpTo(value);
  /** @type {string[]} */
  const read = [];
  /** @type {string[]} */
  const unread = [];
  for (const m of incoming(messages)) {
    if (m.read === true) continue;
    const covered = position !== null && m.timestamp <= position;
    (covered ? read : unread).push(m.id);
  }
  return { read, unread };
}

/**
 * The person read the whole conversation: the value to write, the synced one with
 * `read_up_to` at the newest incoming text, or null when that would not move it forward (a
 * position never moves back). Only the peer's texts count: an own message carries this
 * account's clock, which may run ahead of the peer's, and would cover a reply sent after it.
 * @param {Iterable<ReadMessage>} messages @param {unknown} value
 * @returns {Record<string, any> | null}
 */
export function readPosition(messages, value) {
  const stamps = incoming(messages).map((m) => m.timestamp);
  if (!stamps.length) return null;
  const newest = Math.max(...stamps);
  const position = readUpTo(value);
  if (position !== null && newest <= position) return null;
  return { ...(isObject(value) ? value : {}), read_up_to: newest };
}
