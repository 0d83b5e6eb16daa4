"""Scenarios of a conversation's read position (docs/protocol.md section 22.8): what a synced
`conversations [peer] {read_up_to}` marks read on a device, what stays unread, and the
position a device writes when the person reads (never back)."""

from __future__ import annotations

from typing import Any

from tests.vectors.scenarios.builders import T0


def text(message_id: str, at: int, *, outgoing: bool = False, read: bool = False) -> dict[str, Any]:
    return {"id": message_id, "kind": "text", "outgoing": outgoing, "timestamp": at, "read": read}


CONVERSATION = [
    text("m1", T0 + 1, read=True),  # read here already
    text("m2", T0 + 2),
    text("mine", T0 + 9, outgoing=True),  # an own message: never unread, and no position
    {"id": "odd", "kind": "unsupported", "outgoing": False, "timestamp": T0 + 3, "read": False},
    text("m3", T0 + 4),
    text("m4", T0 + 5),
]


def calls(name: str, cases: list[tuple[str, dict[str, Any], Any]]) -> list[dict[str, Any]]:
    return [{"note": note, "call": name, "args": args, "returns": out} for note, args, out in cases]


def read_position_synced() -> dict[str, Any]:
    state = "read_state"
    position = "read_position"
    return {
        "description": "A conversation's read position follows the account: the incoming texts it covers are read on every device (no read receipt from there), those after it are the unread count; reading writes the newest incoming text's timestamp, only when that moves the position forward (an own message, on the own clock, never moves it), keeping the value's other fields.",
        "steps": calls(
            state,
            [
                (
                    "no position yet: every incoming text not read here is unread",
                    {"messages": CONVERSATION, "value": None},
                    {"read": [], "unread": ["m2", "m3", "m4"]},
                ),
                (
                    "read up to m3 on another device: m2 and m3 read here too, m4 unread",
                    {"messages": CONVERSATION, "value": {"read_up_to": T0 + 4}},
                    {"read": ["m2", "m3"], "unread": ["m4"]},
                ),
                (
                    "a position past everything: nothing unread",
                    {"messages": CONVERSATION, "value": {"read_up_to": T0 + 100}},
                    {"read": ["m2", "m3", "m4"], "unread": []},
                ),
                (
                    "a position that is not a timestamp is no position",
                    {"messages": CONVERSATION, "value": {"read_up_to": -1}},
                    {"read": [], "unread": ["m2", "m3", "m4"]},
                ),
                (
                    "nor is a value that is not an object",
                    {"messages": CONVERSATION, "value": [T0 + 100]},
                    {"read": [], "unread": ["m2", "m3", "m4"]},
                ),
            ],
        )
        + calls(
            position,
            [
                (
                    "read with no position yet: the newest incoming text, not the own message",
                    {"messages": CONVERSATION, "value": None},
                    {"read_up_to": T0 + 5},
                ),
                (
                    "forward from an older position, the value's other fields kept",
                    {"messages": CONVERSATION, "value": {"read_up_to": T0 + 2, "pinned": True}},
                    {"read_up_to": T0 + 5, "pinned": True},
                ),
                (
                    "at the position already: nothing to write",
                    {"messages": CONVERSATION, "value": {"read_up_to": T0 + 5}},
                    None,
                ),
                (
                    "another device read further: never back",
                    {"messages": CONVERSATION, "value": {"read_up_to": T0 + 50}},
                    None,
                ),
                (
                    "only own messages: no position",
                    {"messages": [text("mine", T0 + 9, outgoing=True)], "value": None},
                    None,
                ),
                (
                    "a position that is not a timestamp is replaced",
                    {"messages": CONVERSATION, "value": {"read_up_to": "soon"}},
                    {"read_up_to": T0 + 5},
                ),
            ],
        )
        + calls(
            "read_up_to",
            [
                ("a timestamp", {"value": {"read_up_to": T0}}, T0),
                ("zero is a timestamp", {"value": {"read_up_to": 0}}, 0),
                ("past 2^53 - 1: none", {"value": {"read_up_to": 2**53}}, None),
                ("a boolean: none", {"value": {"read_up_to": True}}, None),
                ("a fraction: none", {"value": {"read_up_to": 1.5}}, None),
                ("no value: none", {"value": None}, None),
            ],
        ),
    }


SCENARIOS = {"read_position_synced.json": read_position_synced}
