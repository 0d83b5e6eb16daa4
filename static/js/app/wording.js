// What the pages, notices and notifications say, as pure functions (no DOM, no storage), so
// the same words are checked without a browser (tests/js/app-names.test.js).

/**
 * The name to show for `username` from its contact record: the person's nickname for them,
 * else the display name they chose, else the username.
 * @param {string} username @param {{nickname?: string, displayName?: string} | null | undefined} contact
 */
export function nameOf(username, contact) {
  return contact?.nickname || contact?.displayName || username;
}

/**
 * "Bob added a device. Your messages now go to their 2 devices." No versions, no ids.
 * @param {string} name @param {{added: string[], removed: string[]}} change @param {number} count
 */
export function devicesChangedText(name, { added, removed }, count) {
  const devices = (/** @type {number} */ n) => (n === 1 ? "a device" : `${n} devices`);
  const what =
    added.length && !removed.length
      ? `${name} added ${devices(added.length)}.`
      : removed.length && !added.length
        ? `${name} removed ${devices(removed.length)}.`
        : `${name} changed their devices.`;
  return `${what} Your messages now go to their ${count === 1 ? "1 device" : `${count} devices`}.`;
}

/**
 * What a notification of new messages says: the sender's name; "New message" (or "3 new
 * messages") unless previews are on, then the text.
 * @param {{name: string, text: string, unread: number, previews: boolean}} fields
 */
export function notificationContent({ name, text, unread, previews }) {
  const body = previews && text ? text : unread > 1 ? `${unread} new messages` : "New message";
  return { title: name, body };
}

/** The tag of a conversation's notification (a newer one replaces it). @param {string} peer */
export function notificationTag(peer) {
  return `chat:${peer}`;
}

/** "(3) Parley", or the title alone when nothing is unread. @param {string} title @param {number} count */
export function titleWithUnread(title, count) {
  return count > 0 ? `(${count}) ${title}` : title;
}
