// The records pages show (static/js/app/records.js), built in one place.
import assert from "node:assert/strict";
import { test } from "node:test";

import { emptyConversation, noticeRecord, textRecord, withMessage } from "../../static/js/app/records.js";

const text = (fields) =>
  textRecord({
    author: "alice",
    id: "m1",
    conversation: "bob",
    authorDevice: "phone",
    outgoing: true,
    text: "hi",
    timestamp: 10,
    status: "sending",
    readSent: true,
    receivedAt: 11,
    ...fields,
  });

test("a text is keyed by its author and message id, a notice by its own id", () => {
  assert.equal(text({}).key, "alice:m1");
  assert.equal(text({}).kind, "text");
  const notice = noticeRecord({ id: "n1", conversation: "bob", text: "careful", tone: "warn", at: 5 });
  assert.deepEqual(
    [notice.key, notice.kind, notice.author, notice.status, notice.readSent, notice.timestamp],
    ["notice:n1", "notice", null, "notice", true, 5],
  );
});

test("a conversation shows its newest line, whatever order messages arrive in", () => {
  let conversation = emptyConversation("bob");
  conversation = withMessage(conversation, text({ text: "second", timestamp: 20 }), 1);
  conversation = withMessage(conversation, text({ text: "first", timestamp: 10, outgoing: false }), 2);
  assert.deepEqual(conversation, {
    peer: "bob",
    unread: 2,
    lastText: "second",
    lastTimestamp: 20,
    lastOutgoing: true,
  });
});
