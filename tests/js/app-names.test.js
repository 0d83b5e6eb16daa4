// What a person reads about names, devices and notifications (static/js/app/wording.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  devicesChangedText,
  nameOf,
  notificationContent,
  notificationTag,
  titleWithUnread,
} from "../../static/js/app/wording.js";

test("a nickname wins over the display name, which wins over the username", () => {
  assert.equal(nameOf("bob", { nickname: "Dad", displayName: "Bob Marley" }), "Dad");
  assert.equal(nameOf("bob", { nickname: "", displayName: "Bob Marley" }), "Bob Marley");
  assert.equal(nameOf("bob", { displayName: "" }), "bob");
  assert.equal(nameOf("bob", undefined), "bob");
});

test("a contact's device change reads in plain words, without versions or ids", () => {
  assert.equal(
    devicesChangedText("Bob", { added: ["dev-1"], removed: [] }, 2),
    "Bob added a device. Your messages now go to their 2 devices.",
  );
  assert.equal(
    devicesChangedText("Bob", { added: [], removed: ["dev-1", "dev-2"] }, 1),
    "Bob removed 2 devices. Your messages now go to their 1 device.",
  );
  const both = devicesChangedText("Bob", { added: ["dev-3"], removed: ["dev-1"] }, 2);
  assert.equal(both, "Bob changed their devices. Your messages now go to their 2 devices.");
  assert.doesNotMatch(both, /dev-|version/);
});

test("a notification names the sender and, unless previews are on, not the text", () => {
  const base = { name: "Alice", text: "The secret is 4711", unread: 1 };
  assert.deepEqual(notificationContent({ ...base, previews: false }), { title: "Alice", body: "New message" });
  assert.deepEqual(notificationContent({ ...base, unread: 3, previews: false }), { title: "Alice", body: "3 new messages" });
  assert.deepEqual(notificationContent({ ...base, previews: true }), { title: "Alice", body: "The secret is 4711" });
  assert.equal(notificationTag("alice"), "chat:alice");
});

test("the title carries the unread count only when there is one", () => {
  assert.equal(titleWithUnread("Chats · Parley", 3), "(3) Chats · Parley");
  assert.equal(titleWithUnread("Chats · Parley", 0), "Chats · Parley");
});
