"""Conversations in this client (docs/protocol.md section 22.8): the messages this device
received and sent, how many are unread, and reading one. What counts as read and the position
a read writes are the engine's (`read_state`, `read_position`); the position follows the
account as `conversations [peer] {read_up_to}`, and a read receipt goes out only when the
engine says so (the read-receipts setting on, the peer a contact)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.contacts import AccountSync
from client.events import Event, ReceiptOwed
from client.outgoing import OutgoingMessage
from protocol.content import ContentType
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import MessagesRead, SendContent, read_position, read_state


@dataclass(frozen=True)
class ConversationSummary:
    peer: str
    unread: int
    last: dict[str, Any]  # the newest message


class Conversations(AccountSync):
    def read_value(self, peer: str) -> dict[str, Any] | None:
        """The conversation's synced value (`{read_up_to}`), as this device last read it."""
        return self.sync.state.account.get("conversations", (peer,))

    def unread(self, peer: str) -> list[str]:
        """Ids of the conversation's incoming texts neither read here nor covered by the
        account's read position (written by any own device)."""
        return read_state(self.store.messages(peer), self.read_value(peer))["unread"]

    def conversation_list(self) -> list[ConversationSummary]:
        """Every conversation, the most recent first, with its unread count."""
        summaries = []
        for peer in self.store.conversations():
            messages = self.store.messages(peer)
            unread = read_state(messages, self.read_value(peer))["unread"]
            summaries.append(ConversationSummary(peer, len(unread), messages[-1]))
        return summaries

    def read_conversation(self, peer: str) -> list[Event]:
        """The person read the conversation with `peer` (every message of it was shown): its
        texts are read here, the account's read position moves forward to them (on every own
        device), and the read receipts the engine decides on are returned to send."""
        messages = self.store.messages(peer)
        value = self.read_value(peer)
        state = read_state(messages, value)
        self.store.mark_read(peer, state["read"] + state["unread"])
        events: list[Event] = []
        written = read_position(messages, value)
        if written is not None:
            events += self.synced_events(self.sync.mutate(("conversations", (peer,), written)))
        effects = self.engine.run(MessagesRead(peer, tuple(state["unread"]), self.clock()), peer)
        for effect in effects:
            if isinstance(effect, SendContent):
                ids = tuple(b64u_decode(m, length=16) for m in effect.body["message_ids"])
                events.append(ReceiptOwed(effect.recipient, effect.body["kind"], ids))
        return events

    def keep_sent(self, sent: OutgoingMessage) -> None:
        """A text or file this device sent (the server accepted it), kept in its conversation."""
        if sent.content_type is ContentType.TEXT:
            shown: dict[str, Any] = {"kind": "text", "text": sent.body["text"]}
        elif sent.content_type is ContentType.ATTACHMENT:
            shown = {"kind": "attachment", "attachment": sent.body}
        else:
            return
        record = {
            "author": self.account_id,
            "author_device": self.device.device_id,
            "conversation": sent.recipient,
            "id": b64u_encode(sent.message_id),
            "outgoing": True,
            "timestamp": sent.timestamp,
            **shown,
        }
        self.store.save_message(record, read=True)
