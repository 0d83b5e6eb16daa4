"""Sending and receiving end-to-end-encrypted messages (DESIGN §3 and §7, docs/protocol.md
sections 7, 9 and 10), over the store and a transport for the key directory.

`Messenger` turns a text into a `send` frame (client.sending) and a delivered envelope into
events (client.receiving, client.events); it opens no socket (client.connection does). Every
list it encrypts to passed the checks of section 4.3 in the device engine, every prekey bundle
is checked against the key in that signed list, and a contact's account key is pinned at
first use. The contacts and read positions follow the account through its synced state
(client.contacts, client.conversations, section 22.8).
"""

from __future__ import annotations

from client.contacts import ContactRefused
from client.conversations import Conversations, ConversationSummary
from client.driver import SecurityCodeChanged
from client.events import (
    ContactChanged,
    DevicesChanged,
    Duplicate,
    Event,
    ListWarning,
    ReadElsewhere,
    ReceiptOwed,
    ReceiptReceived,
    Refused,
    SentTranscript,
    SyncCheckpointOwed,
    SyncKeyOwed,
    SyncWarning,
    TextMessage,
    describe,
    format_time,
)
from client.outgoing import OutgoingMessage
from client.receiving import Receiver
from client.sending import SendRefused
from protocol.engine import LIST_MAX_AGE_MS, MAX_MISMATCH_RETRIES

__all__ = [
    "LIST_MAX_AGE_MS",  # re-exported: the rules live in the engine
    "MAX_MISMATCH_RETRIES",  # re-exported too
    "ContactChanged",
    "ContactRefused",
    "ConversationSummary",
    "DevicesChanged",
    "Duplicate",
    "Event",
    "ListWarning",
    "Messenger",
    "OutgoingMessage",
    "ReadElsewhere",
    "ReceiptOwed",
    "ReceiptReceived",
    "Refused",
    "SecurityCodeChanged",
    "SendRefused",
    "SentTranscript",
    "SyncCheckpointOwed",
    "SyncKeyOwed",
    "SyncWarning",
    "TextMessage",
    "describe",
    "format_time",
]


class Messenger(Conversations, Receiver):
    """One device that sends and receives: its lists and prekeys (client.device), the send
    path (client.sending), the receive path (client.receiving), the account's synced
    contacts (client.contacts) and its conversations with their read state
    (client.conversations)."""
