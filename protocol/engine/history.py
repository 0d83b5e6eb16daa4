"""What a history bundle holds (docs/protocol.md section 22.7): the approving device's choice
of what to send a newly linked device, and the new device's choice of what to import. The
sealing, upload and download are the adapter's (protocol.history seals; section 12)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from protocol.attachments import validate_pointer
from protocol.encoding import b64u_decode, is_uint
from protocol.exceptions import MalformedMessage

HISTORY_FORMAT = "parley-history-1"
HISTORY_DAYS = 90
_DAY_MS = 86_400_000
_OUTGOING_STATUSES = ("sent", "delivered", "read")


def _status_of(outgoing: bool, status: Any) -> str:
    """A text's status on the new device."""
    if not outgoing:
        return "received"
    # a send still in flight or failed is "sent" there: its own outbox holds nothing to retry
    return status if isinstance(status, str) and status in _OUTGOING_STATUSES else "sent"


def _pointer(value: Any) -> bool:
    """A file's pointer (section 26.2) as a bundle may carry it."""
    try:
        validate_pointer(value)
    except MalformedMessage:
        return False
    return True


def _shown(m: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a bundle keeps of a stored message: its text, or its file's pointer; None for
    anything else (an unsupported message, a file still uploading, without a pointer)."""
    if m.get("kind") == "text":
        return {"text": m["text"]}
    if m.get("kind") == "attachment" and _pointer(m.get("attachment")):
        return {"attachment": m["attachment"]}
    return None


def _by_time(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: (e["timestamp"], e["id"]))


def history_bundle(
    messages: Iterable[Mapping[str, Any]],
    contacts: Iterable[Mapping[str, Any]],
    now: int,
    group_messages: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The bundle of the text messages of the last HISTORY_DAYS, by conversation (peers in
    order, messages by time), and every contact. `messages` are engine message records
    (section 22.3 `store_message`); `contacts` are `{username, account_key}`;
    `group_messages` are the texts of groups, `{kind, group_id, id, author, text,
    timestamp}`, by group. Returns `{"bundle": <the plaintext JSON>, "count": <messages in
    it>}`."""
    since = now - HISTORY_DAYS * _DAY_MS
    by_group: dict[str, list[dict[str, Any]]] = {}
    for g in group_messages:
        if g.get("kind") != "text" or g["timestamp"] < since:
            continue
        by_group.setdefault(g["group_id"], []).append(
            {"id": g["id"], "author": g["author"], "text": g["text"], "timestamp": g["timestamp"]}
        )
    groups = [{"group_id": k, "messages": _by_time(by_group[k])} for k in sorted(by_group)]
    by_peer: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        shown = _shown(m)
        if shown is None or m["timestamp"] < since:
            continue
        outgoing = m["outgoing"] is True
        by_peer.setdefault(m["conversation"], []).append(
            {
                "id": m["id"],
                "author": m["author"],
                "outgoing": outgoing,
                **shown,
                "timestamp": m["timestamp"],
                "status": _status_of(outgoing, m.get("status")),
            }
        )
    conversations: list[dict[str, Any]] = [
        {"peer": peer, "messages": _by_time(by_peer[peer])} for peer in sorted(by_peer)
    ]
    bundle = {
        "format": HISTORY_FORMAT,
        "contacts": sorted(
            ({"username": c["username"], "account_key": c["account_key"]} for c in contacts),
            key=lambda c: c["username"],
        ),
        "conversations": conversations,
        "groups": groups,
    }
    count = sum(len(c["messages"]) for c in (*conversations, *groups))
    return {"bundle": bundle, "count": count}


def history_records(bundle: Any, *, account_id: str, contacts: Iterable[str]) -> dict[str, Any]:
    """What a new device imports from a bundle it opened: `{"contacts": [{username,
    account_key}], "messages": [engine message records], "group_messages": [{group_id, id,
    author, outgoing, text, timestamp}]}`. Contacts it has and its own
    account are left out; an entry of the wrong shape is skipped, not fatal; a bundle not in
    HISTORY_FORMAT raises MalformedMessage (nothing is imported). A message already stored
    is kept as it is by the adapter, as for every `store_message`."""
    if (
        not isinstance(bundle, dict)
        or bundle.get("format") != HISTORY_FORMAT
        or not isinstance(bundle.get("conversations"), list)
    ):
        raise MalformedMessage("the history is not in a format this version understands")
    known = set(contacts) | {account_id}
    new_contacts = []
    listed = bundle.get("contacts")
    for c in listed if isinstance(listed, list) else []:
        if not isinstance(c, dict):
            continue
        username, key = c.get("username"), c.get("account_key")
        if isinstance(username, str) and isinstance(key, str) and username not in known:
            known.add(username)
            new_contacts.append({"username": username, "account_key": key})
    records = []
    for conversation in bundle["conversations"]:
        if not isinstance(conversation, dict):
            continue
        peer, listed = conversation.get("peer"), conversation.get("messages")
        if not isinstance(peer, str) or not isinstance(listed, list):
            continue
        for m in listed:
            if not isinstance(m, dict):
                continue
            message_id, timestamp = m.get("id"), m.get("timestamp")
            if not (isinstance(message_id, str) and is_uint(timestamp)):
                continue
            if isinstance(m.get("text"), str):
                shown: dict[str, Any] = {"kind": "text", "text": m["text"]}
            elif "text" not in m and _pointer(m.get("attachment")):
                shown = {"kind": "attachment", "attachment": m["attachment"]}
            else:
                continue
            outgoing = m.get("outgoing") is True
            records.append(
                {
                    **shown,
                    "author": account_id if outgoing else peer,  # never the bundle's word
                    "author_device": None,
                    "conversation": peer,
                    "id": message_id,
                    "outgoing": outgoing,
                    "status": _status_of(outgoing, m.get("status")),
                    "timestamp": timestamp,
                }
            )
    listed = bundle.get("groups")
    group_records = []
    for group in listed if isinstance(listed, list) else []:
        group_id = group.get("group_id") if isinstance(group, dict) else None
        entries = group.get("messages") if isinstance(group, dict) else None
        if not _is_group_id(group_id) or not isinstance(entries, list):
            continue
        for m in entries:
            if not isinstance(m, dict):
                continue
            message_id, text, timestamp = m.get("id"), m.get("text"), m.get("timestamp")
            author = m.get("author")
            if not (isinstance(message_id, str) and isinstance(text, str) and is_uint(timestamp)):
                continue
            if not isinstance(author, str) or not author:
                continue
            group_records.append(
                {
                    "group_id": group_id,
                    "id": message_id,
                    "author": author,  # a group has many: the own device's word, as its texts
                    "outgoing": author == account_id,
                    "text": text,
                    "timestamp": timestamp,
                }
            )
    return {"contacts": new_contacts, "messages": records, "group_messages": group_records}


def _is_group_id(value: Any) -> bool:
    try:
        b64u_decode(value, length=16, what="group id")
    except MalformedMessage:
        return False
    return True
