// Lines in a conversation that are not messages: what the device tells the person about a
// contact (a refused message, a changed security code, a new device).

import { encoding } from "../protocol/index.js";
import { Change, notify } from "./events.js";
import { emptyConversation, noticeRecord } from "./records.js";
import * as store from "./store.js";

/**
 * Add a notice to the conversation with `peer` (the conversation is created if need be).
 * @param {string} peer @param {string} text @param {"info" | "warn" | "error"} tone
 */
export async function addNotice(peer, text, tone) {
  const id = encoding.b64uEncode(crypto.getRandomValues(new Uint8Array(12)));
  const notice = noticeRecord({ id, conversation: peer, text, tone, at: Date.now() });
  await store.transact(["messages", "conversations"], (s) => {
    s.messages.put(notice);
    const request = s.conversations.get(peer);
    request.onsuccess = () => {
      if (!request.result) s.conversations.put(emptyConversation(peer));
    };
  });
  notify({ kind: Change.MESSAGES, peer });
}
