"""Scenarios of what a device does with each content it decrypted (section 22.6)."""

from __future__ import annotations

from typing import Any

from protocol.content import ContentType, encode_content, new_content
from protocol.rng import TestRng
from tests.vectors.scenarios.builders import ALICE_V2, OWN, T0, b64, scenario, seed, state

RNG = TestRng(seed("scenario receiving"))
M1, M2, M3, M4 = (b64(RNG(16)) for _ in range(4))
T1 = T0 + 1000


def receiving_state(**more: Any) -> dict[str, Any]:
    """Alice's phone, bob a contact, carol not (yet)."""
    return {**state(dict(OWN)), "contacts": ["bob"], "read_receipts": False, **more}


def decrypted(
    sender: str, device: str, kind: int, message_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "content_decrypted",
        "sender": sender,
        "sender_device": device,
        "content_type": kind,
        "message_id": message_id,
        "timestamp": T0,
        "body": body,
        "now": T1,
    }


def incoming(author: str, device: str, message_id: str, kind: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "store_message",
        "record": {
            "kind": kind,
            "author": author,
            "author_device": device,
            "conversation": author,
            "id": message_id,
            "outgoing": False,
            "timestamp": T0,
            **more,
        },
    }


def receipt(recipient: str, kind: str, ids: list[str]) -> dict[str, Any]:
    return {
        "type": "send_content",
        "recipient": recipient,
        "content_type": int(ContentType.RECEIPT),
        "body": {"kind": kind, "message_ids": ids},
    }


def refused(sender: str, device: str, reason: str) -> dict[str, Any]:
    return {
        "type": "content_verdict",
        "sender": sender,
        "sender_device": device,
        "verdict": "refuse",
        "reason": reason,
    }


def transcript(
    recipient: str, kind: ContentType, body: dict[str, Any], rng: TestRng
) -> tuple[dict[str, Any], str]:
    inner = new_content(
        kind,
        body,
        timestamp=T0 - 5,
        sender_list_version=ALICE_V2.version,
        sender_list_hash=ALICE_V2.hash,
        rng=rng,
    )
    return {"recipient": recipient, "content": b64(encode_content(inner))}, b64(inner.message_id)


def receipts_sent() -> dict[str, Any]:
    text = int(ContentType.TEXT)
    return scenario(
        "A text from a contact is stored and answered with a delivery receipt; a text from someone not (yet) a contact gets none. A read receipt goes only when the read-receipts setting is on and the person read the messages.",
        receiving_state(),
        [
            (
                "a text from bob, a contact: stored, delivery receipt",
                decrypted("bob", "bob-phone", text, M1, {"text": "hi"}),
                [
                    incoming("bob", "bob-phone", M1, "text", text="hi", status="received"),
                    receipt("bob", "delivered", [M1]),
                ],
            ),
            (
                "a text from carol, not a contact: stored, no receipt",
                decrypted("carol", "carol-phone", text, M2, {"text": "hello?"}),
                [incoming("carol", "carol-phone", M2, "text", text="hello?", status="received")],
            ),
            (
                "alice reads bob's text with read receipts off: nothing sent",
                {"type": "messages_read", "peer": "bob", "message_ids": [M1], "now": T1},
                [],
            ),
            (
                "a receipt from bob for alice's messages: applied",
                decrypted(
                    "bob",
                    "bob-phone",
                    int(ContentType.RECEIPT),
                    M3,
                    {"kind": "read", "message_ids": [M4]},
                ),
                [{"type": "apply_receipt", "peer": "bob", "receipt": "read", "message_ids": [M4]}],
            ),
        ],
    )


def read_receipt_sent() -> dict[str, Any]:
    return scenario(
        "With the read-receipts setting on, reading a conversation sends the contact a read receipt for what was read (never for nothing read, never to someone not a contact or whose new security code is not confirmed).",
        receiving_state(read_receipts=True),
        [
            (
                "alice reads two of bob's texts: one read receipt",
                {"type": "messages_read", "peer": "bob", "message_ids": [M1, M2], "now": T1},
                [receipt("bob", "read", [M1, M2])],
            ),
            (
                "nothing unread: nothing sent",
                {"type": "messages_read", "peer": "bob", "message_ids": [], "now": T1},
                [],
            ),
            (
                "alice reads carol's text (carol is not in her contacts): nothing sent",
                {"type": "messages_read", "peer": "carol", "message_ids": [M3], "now": T1},
                [],
            ),
        ],
    )


def duplicate_dropped() -> dict[str, Any]:
    text = int(ContentType.TEXT)
    return scenario(
        "A content is applied once per (sender device, message id inside the ciphertext): the same id again from that device is acked and dropped, with no second receipt; the same id from another device is a different content.",
        receiving_state(),
        [
            (
                "bob's text: stored, receipt",
                decrypted("bob", "bob-phone", text, M1, {"text": "once"}),
                [
                    incoming("bob", "bob-phone", M1, "text", text="once", status="received"),
                    receipt("bob", "delivered", [M1]),
                ],
            ),
            (
                "the same id from the same device again: drop as duplicate",
                decrypted("bob", "bob-phone", text, M1, {"text": "once"}),
                [
                    {
                        "type": "drop_duplicate",
                        "sender": "bob",
                        "sender_device": "bob-phone",
                        "message_id": M1,
                    }
                ],
            ),
            (
                "the same id from bob's laptop: its own content",
                decrypted("bob", "bob-laptop", text, M1, {"text": "laptop"}),
                [
                    incoming("bob", "bob-laptop", M1, "text", text="laptop", status="received"),
                    receipt("bob", "delivered", [M1]),
                ],
            ),
        ],
    )


def sent_transcript_applied() -> dict[str, Any]:
    kind = int(ContentType.SENT_TRANSCRIPT)
    rng = TestRng(seed("scenario transcripts"))  # per call: two builds give the same file
    sent, sent_id = transcript("bob", ContentType.TEXT, {"text": "from my laptop"}, rng)
    read, _ = transcript("bob", ContentType.RECEIPT, {"kind": "read", "message_ids": [M1]}, rng)
    return scenario(
        "A sent transcript is accepted only from an own device in the current own list: its text becomes an own outgoing message in the conversation with the recipient, its read receipt marks that conversation read here; from a contact, or from an own device id not in the list, it is refused.",
        receiving_state(),
        [
            (
                "alice's laptop sent bob a text: stored as alice's outgoing message",
                decrypted("alice", "alice-laptop", kind, M2, sent),
                [
                    {
                        "type": "store_message",
                        "record": {
                            "kind": "text",
                            "author": "alice",
                            "author_device": "alice-laptop",
                            "conversation": "bob",
                            "id": sent_id,
                            "outgoing": True,
                            "status": "sent",
                            "text": "from my laptop",
                            "timestamp": T0 - 5,
                        },
                    }
                ],
            ),
            (
                "alice's laptop read bob's text: marked read here",
                decrypted("alice", "alice-laptop", kind, M3, read),
                [{"type": "mark_read", "peer": "bob", "message_ids": [M1]}],
            ),
            (
                "a transcript from bob's device: refused",
                decrypted("bob", "bob-phone", kind, M4, sent),
                [refused("bob", "bob-phone", "own_devices_only")],
            ),
            (
                "a transcript from an alice device id not in her list: refused",
                decrypted("alice", "alice-tablet", kind, M4, sent),
                [refused("alice", "alice-tablet", "own_devices_only")],
            ),
        ],
    )


def attachment_kept() -> dict[str, Any]:
    kind = int(ContentType.ATTACHMENT)
    rng = TestRng(seed("scenario attachments"))  # per call: two builds give the same file
    pointer = {
        "blob_id": b64(rng(16)),
        "key": b64(rng(32)),
        "digest": b64(rng(32)),
        "plaintext_hash": b64(rng(32)),
        "size": 120000,
        "type": "image/jpeg",
        "name": "beach.jpg",
        "thumbnail": {"type": "image/jpeg", "data": b64(rng(40)), "width": 64, "height": 48},
        "width": 4032,
        "height": 3024,
    }
    m5, m6 = (b64(rng(16)) for _ in range(2))
    sent, sent_id = transcript("bob", ContentType.ATTACHMENT, pointer, rng)
    return scenario(
        "A file (an attachment pointer, type 12, section 26) is kept as a message the way a text is: from a contact it is answered with a delivery receipt, from someone not a contact it is kept without one; an own device's transcript of a file it sent is an own outgoing message; and a file counts as unread until read.",
        receiving_state(read_receipts=True),
        [
            (
                "a picture from bob, a contact: kept with its pointer, delivery receipt",
                decrypted("bob", "bob-phone", kind, M1, pointer),
                [
                    incoming(
                        "bob", "bob-phone", M1, "attachment", attachment=pointer, status="received"
                    ),
                    receipt("bob", "delivered", [M1]),
                ],
            ),
            (
                "the same file from carol, not a contact: kept, no receipt",
                decrypted("carol", "carol-phone", kind, m5, pointer),
                [
                    incoming(
                        "carol",
                        "carol-phone",
                        m5,
                        "attachment",
                        attachment=pointer,
                        status="received",
                    )
                ],
            ),
            (
                "alice's laptop sent bob a file: an own outgoing message here",
                decrypted("alice", "alice-laptop", int(ContentType.SENT_TRANSCRIPT), m6, sent),
                [
                    {
                        "type": "store_message",
                        "record": {
                            "kind": "attachment",
                            "attachment": pointer,
                            "author": "alice",
                            "author_device": "alice-laptop",
                            "conversation": "bob",
                            "id": sent_id,
                            "outgoing": True,
                            "status": "sent",
                            "timestamp": T0 - 5,
                        },
                    }
                ],
            ),
            (
                "alice sees bob's picture: a read receipt, as for a text",
                {"type": "messages_read", "peer": "bob", "message_ids": [M1], "now": T1},
                [receipt("bob", "read", [M1])],
            ),
        ],
    )


def history_key_once() -> dict[str, Any]:
    kind = int(ContentType.HISTORY_BUNDLE_KEY)
    body = {
        "blob_id": "b1",
        "key": b64(bytes(32)),
        "hash": b64(bytes(32)),
        "length": 64,
        "count": 1,
    }
    return scenario(
        "The history bundle key (type 5) is accepted only from the device that approved this one, and only once.",
        {**receiving_state(history_from="alice-laptop"), "device_id": "alice-phone"},
        [
            (
                "from another own device than the approver: refused",
                decrypted("alice", "alice-phone", kind, M1, body),
                [refused("alice", "alice-phone", "not_approver")],
            ),
            (
                "from a contact: refused",
                decrypted("bob", "bob-phone", kind, M2, body),
                [refused("bob", "bob-phone", "own_devices_only")],
            ),
            (
                "from the approving device: accepted",
                decrypted("alice", "alice-laptop", kind, M3, body),
                [{"type": "accept_history_key", "sender_device": "alice-laptop", "body": body}],
            ),
            (
                "a second key from the approver: refused (once)",
                decrypted("alice", "alice-laptop", kind, M4, body),
                [refused("alice", "alice-laptop", "no_history_expected")],
            ),
        ],
    )


def sync_key_from_own_device() -> dict[str, Any]:
    kind = int(ContentType.ACCOUNT_SYNC_KEY)
    body = {
        "key_id": b64(bytes(16)),
        "key": b64(bytes(32)),
        "since_version": 1,
        "version": 1,
        "chain": b64(bytes(32)),
    }
    return scenario(
        "The account sync key (type 7) from an own listed device goes to the sync machine (section 22.8); from anyone else it is refused.",
        receiving_state(),
        [
            (
                "from alice-laptop (listed): to the sync machine",
                decrypted("alice", "alice-laptop", kind, M1, body),
                [{"type": "accept_sync_key", "sender_device": "alice-laptop", "body": body}],
            ),
            (
                "from a contact: refused",
                decrypted("bob", "bob-phone", kind, M2, body),
                [refused("bob", "bob-phone", "own_devices_only")],
            ),
            (
                "from an own device no list names: refused",
                decrypted("alice", "alice-tablet", kind, M3, body),
                [refused("alice", "alice-tablet", "own_devices_only")],
            ),
        ],
    )


def sync_checkpoint_from_own_device() -> dict[str, Any]:
    kind = int(ContentType.ACCOUNT_SYNC_CHECKPOINT)
    body = {"version": 4, "chain": b64(bytes(range(32)))}
    return scenario(
        "An own device's sync checkpoint (type 8, section 23.8) from an own listed device goes to the sync machine, which compares it with this device's position; from anyone else it is refused.",
        receiving_state(),
        [
            (
                "from alice-laptop (listed): to the sync machine",
                decrypted("alice", "alice-laptop", kind, M1, body),
                [{"type": "accept_sync_checkpoint", "sender_device": "alice-laptop", "body": body}],
            ),
            (
                "from a contact: refused",
                decrypted("bob", "bob-phone", kind, M2, body),
                [refused("bob", "bob-phone", "own_devices_only")],
            ),
            (
                "from an own device no list names: refused",
                decrypted("alice", "alice-tablet", kind, M3, body),
                [refused("alice", "alice-tablet", "own_devices_only")],
            ),
        ],
    )


def group_receipt_to_its_machine() -> dict[str, Any]:
    kind = int(ContentType.RECEIPT)
    body = {"kind": "read", "message_ids": [M1], "group_id": b64(bytes(range(16)))}
    return scenario(
        "A receipt naming a group (section 25.10) goes to its group's machine, which checks the member, not to a conversation; from an own device it is ignored like every receipt.",
        receiving_state(),
        [
            (
                "from bob's phone",
                decrypted("bob", "bob-phone", kind, M2, body),
                [
                    {
                        "type": "accept_group_receipt",
                        "sender": "bob",
                        "sender_device": "bob-phone",
                        "body": body,
                    }
                ],
            ),
            ("from an own device", decrypted("alice", "alice-laptop", kind, M3, body), []),
        ],
    )


def group_key_to_its_machine() -> dict[str, Any]:
    kind = int(ContentType.GROUP_SENDER_KEY)
    body = {
        "group_id": b64(bytes(range(16))),
        "key_id": b64(bytes(16)),
        "chain_key": b64(bytes(32)),
        "iteration": 0,
        "signing_key": b64(bytes(32)),
        "head_seq": 0,
        "head_hash": b64(bytes(32)),
    }
    return scenario(
        "A sender-key distribution (type 11) from any device goes to its group's machine (section 25.8), which decides whether its sender counts; nothing is stored as a message and no receipt is sent. From a blocked account it is dropped like every content.",
        receiving_state(blocked=["carol"]),
        [
            (
                "from a contact's device",
                decrypted("bob", "bob-phone", kind, M1, body),
                [
                    {
                        "type": "accept_group_key",
                        "sender": "bob",
                        "sender_device": "bob-phone",
                        "body": body,
                    }
                ],
            ),
            (
                "from an own device",
                decrypted("alice", "alice-laptop", kind, M2, body),
                [
                    {
                        "type": "accept_group_key",
                        "sender": "alice",
                        "sender_device": "alice-laptop",
                        "body": body,
                    }
                ],
            ),
            (
                "from a blocked account: dropped",
                decrypted("carol", "carol-phone", kind, M3, body),
                [
                    {
                        "type": "drop_blocked",
                        "sender": "carol",
                        "sender_device": "carol-phone",
                        "message_id": M3,
                    }
                ],
            ),
        ],
    )


def unsupported_kept() -> dict[str, Any]:
    return scenario(
        "A content type this device does not know is kept as an unsupported message from its sender (shown with the sender's name), never silently dropped; no receipt is sent for it.",
        receiving_state(),
        [
            (
                "type 42 from bob",
                decrypted("bob", "bob-phone", 42, M1, {"future": True}),
                [incoming("bob", "bob-phone", M1, "unsupported", content_type=42)],
            ),
            (
                "a typing indicator (known, nothing to keep)",
                decrypted("bob", "bob-phone", int(ContentType.TYPING), M2, {"state": "started"}),
                [],
            ),
        ],
    )


def blocked_dropped() -> dict[str, Any]:
    text = int(ContentType.TEXT)
    rng = TestRng(seed("scenario blocked"))  # per call: two builds give the same file
    m5, m6, m7, m8 = (b64(rng(16)) for _ in range(4))
    sent, sent_id = transcript("bob", ContentType.TEXT, {"text": "sent before"}, rng)
    drop = {"type": "drop_blocked", "sender": "bob", "sender_device": "bob-phone"}
    return scenario(
        "Content from an account the person blocked (the synced `blocked` collection, section 22.8) is dropped: no record, no delivery or read receipt, nothing sent to it, not even its list fetched; a contact not blocked is answered as before, and the own account is never blocked.",
        receiving_state(contacts=["bob", "carol"], read_receipts=True, blocked=["alice", "bob"]),
        [
            (
                "a text from bob, a blocked contact: dropped, no record, no receipt",
                decrypted("bob", "bob-phone", text, M1, {"text": "let me in"}),
                [{**drop, "message_id": M1}],
            ),
            (
                "the same text again: a duplicate, as any repeat",
                decrypted("bob", "bob-phone", text, M1, {"text": "let me in"}),
                [
                    {
                        "type": "drop_duplicate",
                        "sender": "bob",
                        "sender_device": "bob-phone",
                        "message_id": M1,
                    }
                ],
            ),
            (
                "a receipt from bob: dropped (not applied)",
                decrypted(
                    "bob",
                    "bob-phone",
                    int(ContentType.RECEIPT),
                    M2,
                    {"kind": "read", "message_ids": [M4]},
                ),
                [{**drop, "message_id": M2}],
            ),
            (
                "a content type this device does not know, from bob: dropped, not kept",
                decrypted("bob", "bob-phone", 42, M3, {"future": True}),
                [{**drop, "message_id": M3}],
            ),
            (
                "alice reads bob's older texts with read receipts on: nothing sent to bob",
                {"type": "messages_read", "peer": "bob", "message_ids": [m5], "now": T1},
                [],
            ),
            (
                "a send to bob (a queued text or receipt): refused, nothing fetched",
                {"type": "send_wanted", "envelope_id": "e1", "recipient": "bob", "now": T1},
                [
                    {
                        "type": "notice",
                        "account_id": "bob",
                        "code": "send_refused",
                        "data": {"envelope_id": "e1", "reason": "blocked"},
                    }
                ],
            ),
            (
                "a text from carol, not blocked: stored, delivery receipt",
                decrypted("carol", "carol-phone", text, m6, {"text": "hi"}),
                [
                    incoming("carol", "carol-phone", m6, "text", text="hi", status="received"),
                    receipt("carol", "delivered", [m6]),
                ],
            ),
            (
                "alice reads carol's text: a read receipt to carol",
                {"type": "messages_read", "peer": "carol", "message_ids": [m6], "now": T1},
                [receipt("carol", "read", [m6])],
            ),
            (
                "alice's laptop's transcript (the own account in `blocked` is ignored): stored",
                decrypted("alice", "alice-laptop", int(ContentType.SENT_TRANSCRIPT), m7, sent),
                [
                    {
                        "type": "store_message",
                        "record": {
                            "kind": "text",
                            "author": "alice",
                            "author_device": "alice-laptop",
                            "conversation": "bob",
                            "id": sent_id,
                            "outgoing": True,
                            "status": "sent",
                            "text": "sent before",
                            "timestamp": T0 - 5,
                        },
                    }
                ],
            ),
            (
                "a typing indicator from bob: dropped too",
                decrypted("bob", "bob-phone", int(ContentType.TYPING), m8, {"state": "started"}),
                [{**drop, "message_id": m8}],
            ),
        ],
    )


SCENARIOS = {
    "receive_receipts.json": receipts_sent,
    "receive_read_receipt.json": read_receipt_sent,
    "receive_duplicate_dropped.json": duplicate_dropped,
    "receive_sent_transcript.json": sent_transcript_applied,
    "receive_history_key_once.json": history_key_once,
    "receive_unsupported_kept.json": unsupported_kept,
    "receive_attachment.json": attachment_kept,
    "receive_group_key.json": group_key_to_its_machine,
    "receive_group_receipt.json": group_receipt_to_its_machine,
    "receive_sync_key.json": sync_key_from_own_device,
    "receive_blocked_dropped.json": blocked_dropped,
    "receive_sync_checkpoint.json": sync_checkpoint_from_own_device,
}
