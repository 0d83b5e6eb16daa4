"""Scenarios of what a history bundle holds (docs/protocol.md section 22.7): what the approving
device puts in it, and what the new device imports from it. Expected values written out by
hand."""

from __future__ import annotations

from typing import Any

NOW = 1_700_000_000_000
DAY = 86_400_000
FORMAT = "parley-history-1"


TRIP, BAND = "VFJJUC1UUklQLVRSSVAtVA", "QkFORC1CQU5ELUJBTkQtQg"  # two 16-byte group ids


def _group_text(group_id: str, mid: str, ts: int, author: str) -> dict[str, Any]:
    return {
        "kind": "text",
        "group_id": group_id,
        "id": mid,
        "author": author,
        "text": f"text {mid}",
        "timestamp": ts,
    }


def _text(conversation: str, mid: str, ts: int, *, outgoing: bool, status: str) -> dict[str, Any]:
    return {
        "kind": "text",
        "author": "alice" if outgoing else conversation,
        "author_device": "dev-a1" if outgoing else f"dev-{conversation}",
        "conversation": conversation,
        "id": mid,
        "outgoing": outgoing,
        "status": status,
        "text": f"text {mid}",
        "timestamp": ts,
    }


def history_bundle_built() -> dict[str, Any]:
    messages = [
        _text("carol", "m4", NOW - 1000, outgoing=False, status="received"),
        _text("bob", "m2", NOW - 5000, outgoing=True, status="sending"),
        _text("bob", "m1", NOW - 9000, outgoing=False, status="received"),
        _text("bob", "m3", NOW - 5000, outgoing=True, status="failed"),
        _text("bob", "m0", NOW - 91 * DAY, outgoing=False, status="received"),
        _text("carol", "m5", NOW - 500, outgoing=True, status="read"),
        {
            "kind": "unsupported",
            "author": "bob",
            "author_device": "dev-bob",
            "conversation": "bob",
            "id": "m6",
            "outgoing": False,
            "timestamp": NOW,
            "content_type": 42,
        },
    ]
    contacts = [
        {"username": "carol", "account_key": "Y2Fyb2w"},
        {"username": "bob", "account_key": "Ym9i"},
    ]
    group_messages = [
        _group_text(TRIP, "g2", NOW - 2000, "bob"),
        _group_text(TRIP, "g1", NOW - 3000, "alice"),
        _group_text(TRIP, "g0", NOW - 91 * DAY, "carol"),
        _group_text(BAND, "g3", NOW - 100, "carol"),
        {"kind": "notice", "group_id": BAND, "id": "n1", "timestamp": NOW},
    ]

    def entry(mid: str, ts: int, author: str, outgoing: bool, status: str) -> dict[str, Any]:
        return {
            "author": author,
            "id": mid,
            "outgoing": outgoing,
            "status": status,
            "text": f"text {mid}",
            "timestamp": ts,
        }

    def group_entry(mid: str, ts: int, author: str) -> dict[str, Any]:
        return {"id": mid, "author": author, "text": f"text {mid}", "timestamp": ts}

    bundle = {
        "format": FORMAT,
        "contacts": [
            {"username": "bob", "account_key": "Ym9i"},
            {"username": "carol", "account_key": "Y2Fyb2w"},
        ],
        "conversations": [
            {
                "peer": "bob",
                "messages": [
                    entry("m1", NOW - 9000, "bob", False, "received"),
                    entry("m2", NOW - 5000, "alice", True, "sent"),
                    entry("m3", NOW - 5000, "alice", True, "sent"),
                ],
            },
            {
                "peer": "carol",
                "messages": [
                    entry("m4", NOW - 1000, "carol", False, "received"),
                    entry("m5", NOW - 500, "alice", True, "read"),
                ],
            },
        ],
        "groups": [
            {"group_id": BAND, "messages": [group_entry("g3", NOW - 100, "carol")]},
            {
                "group_id": TRIP,
                "messages": [
                    group_entry("g1", NOW - 3000, "alice"),
                    group_entry("g2", NOW - 2000, "bob"),
                ],
            },
        ],
    }
    return {
        "description": "The approving device's bundle: text messages of the last 90 days by "
        "conversation (peers and messages in order), a send in flight or failed as sent, no "
        "unsupported or older message, every contact; the texts of groups of the last 90 days "
        "by group (groups and messages in order), no notice.",
        "steps": [
            {
                "call": "history_bundle",
                "args": {
                    "messages": messages,
                    "contacts": contacts,
                    "now": NOW,
                    "group_messages": group_messages,
                },
                "returns": {"bundle": bundle, "count": 8},
            },
            {
                "note": "nothing to send is an empty bundle, still sent",
                "call": "history_bundle",
                "args": {"messages": [], "contacts": [], "now": NOW},
                "returns": {
                    "bundle": {"format": FORMAT, "contacts": [], "conversations": [], "groups": []},
                    "count": 0,
                },
            },
        ],
    }


def history_bundle_imported() -> dict[str, Any]:
    bundle = {
        "format": FORMAT,
        "contacts": [
            {"username": "bob", "account_key": "Ym9i"},
            {"username": "alice", "account_key": "c2VsZg"},
            {"username": "carol", "account_key": "Y2Fyb2w"},
            {"username": "dave", "account_key": 7},
            "eve",
            {"username": "carol", "account_key": "b3RoZXI"},
        ],
        "conversations": [
            {
                "peer": "bob",
                "messages": [
                    {
                        "id": "m1",
                        "author": "mallory",
                        "outgoing": False,
                        "status": "read",
                        "text": "hi",
                        "timestamp": 5,
                    },
                    {
                        "id": "m2",
                        "author": "bob",
                        "outgoing": True,
                        "status": "delivered",
                        "text": "yo",
                        "timestamp": 6,
                    },
                    {
                        "id": "m3",
                        "outgoing": True,
                        "status": "sending",
                        "text": "x",
                        "timestamp": 7,
                    },
                    {"id": "m4", "text": 4, "timestamp": 8},
                    {"id": "m5", "text": "negative", "timestamp": -1},
                    {"id": "m6", "text": "a float", "timestamp": 1.5},
                    ["not", "an", "object"],
                ],
            },
            {"peer": 7, "messages": [{"id": "m7", "text": "t", "timestamp": 9}]},
            {"peer": "zed", "messages": "none"},
            {"peer": "carol", "messages": [{"id": "m8", "text": "c", "timestamp": 10}]},
        ],
        "groups": [
            {
                "group_id": TRIP,
                "messages": [
                    {"id": "g1", "author": "bob", "text": "in the group", "timestamp": 11},
                    {"id": "g2", "author": "alice", "text": "mine", "timestamp": 12},
                    {"id": "g3", "text": "no author", "timestamp": 13},
                    {"id": "g4", "author": "", "text": "empty author", "timestamp": 14},
                    {"id": "g5", "author": "bob", "text": 5, "timestamp": 15},
                    "not an object",
                ],
            },
            {"group_id": "not a group id", "messages": [{"id": "g6", "author": "bob"}]},
            {"group_id": BAND, "messages": "none"},
        ],
    }

    def record(peer: str, mid: str, text: str, ts: int, outgoing: bool, status: str) -> Any:
        return {
            "kind": "text",
            "author": "alice" if outgoing else peer,
            "author_device": None,
            "conversation": peer,
            "id": mid,
            "outgoing": outgoing,
            "status": status,
            "text": text,
            "timestamp": ts,
        }

    imported = {
        "contacts": [{"username": "carol", "account_key": "Y2Fyb2w"}],
        "messages": [
            record("bob", "m1", "hi", 5, False, "received"),
            record("bob", "m2", "yo", 6, True, "delivered"),
            record("bob", "m3", "x", 7, True, "sent"),
            record("carol", "m8", "c", 10, False, "received"),
        ],
        "group_messages": [
            {
                "group_id": TRIP,
                "id": "g1",
                "author": "bob",
                "outgoing": False,
                "text": "in the group",
                "timestamp": 11,
            },
            {
                "group_id": TRIP,
                "id": "g2",
                "author": "alice",
                "outgoing": True,
                "text": "mine",
                "timestamp": 12,
            },
        ],
    }
    known = {"account_id": "alice", "contacts": ["bob"]}
    refused = {
        "another format": {**bundle, "format": "parley-history-2"},
        "no conversations": {"format": FORMAT, "contacts": []},
        "not an object": [FORMAT],
    }
    return {
        "description": "What the new device imports: new contacts only (not its own account, "
        "the first of a repeated name), messages of the right shape with the author taken "
        "from the direction, never the bundle's word; group texts of the right shape with "
        "their author (a group has many) and outgoing when it is the own account; a bundle in "
        "another format imports nothing.",
        "steps": [
            {
                "call": "history_records",
                "args": {"bundle": bundle, **known},
                "returns": imported,
            },
            *(
                {
                    "note": f"refused: {what}",
                    "call": "history_records",
                    "args": {"bundle": bad, **known},
                    "error": "MalformedMessage",
                }
                for what, bad in refused.items()
            ),
        ],
    }


POINTER = {
    "blob_id": "QkxPQi1CTE9CLUJMT0ItQg",
    "key": "S0VZLUtFWS1LRVktS0VZLUtFWS1LRVktS0VZLUtFWS0",
    "digest": "RElHLURJRy1ESUctRElHLURJRy1ESUctRElHLURJRy0",
    "plaintext_hash": "SEFTSC1IQVNILUhBU0gtSEFTSC1IQVNILUhBU0gtSEE",
    "size": 120000,
    "type": "image/jpeg",
    "name": "beach.jpg",
}


def history_files() -> dict[str, Any]:
    def file(mid: str, ts: int, *, outgoing: bool, attachment: Any, status: str) -> dict[str, Any]:
        record = _text("bob", mid, ts, outgoing=outgoing, status=status)
        del record["text"]
        return {**record, "kind": "attachment", "attachment": attachment}

    uploading = {"name": "big.mov", "size": 9000000, "type": "video/quicktime"}
    messages = [
        file("f1", NOW - 3000, outgoing=False, attachment=POINTER, status="received"),
        file("f2", NOW - 2000, outgoing=True, attachment=uploading, status="uploading"),
        file("f3", NOW - 1000, outgoing=True, attachment=POINTER, status="delivered"),
    ]

    def entry(mid: str, ts: int, author: str, outgoing: bool, status: str) -> dict[str, Any]:
        return {
            "attachment": POINTER,
            "author": author,
            "id": mid,
            "outgoing": outgoing,
            "status": status,
            "timestamp": ts,
        }

    bundle = {
        "format": FORMAT,
        "contacts": [],
        "conversations": [
            {
                "peer": "bob",
                "messages": [
                    entry("f1", NOW - 3000, "bob", False, "received"),
                    entry("f3", NOW - 1000, "alice", True, "delivered"),
                ],
            }
        ],
        "groups": [],
    }
    sent = {
        **bundle,
        "conversations": [
            {
                "peer": "bob",
                "messages": [
                    *bundle["conversations"][0]["messages"],
                    {"id": "f4", "timestamp": NOW, "attachment": {**POINTER, "size": -1}},
                    {"id": "f5", "timestamp": NOW, "attachment": POINTER, "text": 7},
                ],
            }
        ],
    }

    def record(mid: str, ts: int, outgoing: bool, status: str) -> dict[str, Any]:
        return {
            "kind": "attachment",
            "attachment": POINTER,
            "author": "alice" if outgoing else "bob",
            "author_device": None,
            "conversation": "bob",
            "id": mid,
            "outgoing": outgoing,
            "status": status,
            "timestamp": ts,
        }

    return {
        "description": "Files in the history (section 26): a file with its pointer goes in the "
        "bundle as its pointer, by time with the texts; a file still uploading (no pointer yet) "
        "does not; the new device imports a file entry as a file record, and skips one whose "
        "pointer is malformed or that also has a text that is not a string.",
        "steps": [
            {
                "call": "history_bundle",
                "args": {"messages": messages, "contacts": [], "now": NOW},
                "returns": {"bundle": bundle, "count": 2},
            },
            {
                "call": "history_records",
                "args": {"bundle": sent, "account_id": "alice", "contacts": ["bob"]},
                "returns": {
                    "contacts": [],
                    "messages": [
                        record("f1", NOW - 3000, False, "received"),
                        record("f3", NOW - 1000, True, "delivered"),
                    ],
                    "group_messages": [],
                },
            },
        ],
    }


SCENARIOS = {
    "history_files.json": history_files,
    "history_bundle_built.json": history_bundle_built,
    "history_bundle_imported.json": history_bundle_imported,
}
