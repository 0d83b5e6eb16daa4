"""What a conversation's read position means on a device (docs/protocol.md section 22.8): the
synced `conversations [peer] {read_up_to}` is the timestamp up to which the person read the
conversation on any own device. Pure functions both adapters call with the conversation's
messages (`{id, kind, outgoing, timestamp, read}`, `read`: already read on this device) and
the synced value (None, or an object; anything else is no position)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from protocol.encoding import is_uint

# what is read and counted unread: texts and files (section 26)
_READ_KINDS = ("text", "attachment")


def read_up_to(value: Any) -> int | None:
    """The synced position: `read_up_to` of the value when it is a timestamp, else None."""
    if not isinstance(value, Mapping):
        return None
    position = value.get("read_up_to")
    return position if is_uint(position) else None


def _incoming(messages: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [m for m in messages if m.get("kind") in _READ_KINDS and m.get("outgoing") is not True]


def read_state(messages: Iterable[Mapping[str, Any]], value: Any) -> dict[str, list[str]]:
    """Of the incoming texts not yet read on this device, the ids the synced position covers
    (`read`: read on another own device, so no read receipt from here) and those after it
    (`unread`: the unread count), each in the order given."""
    position = read_up_to(value)
    read: list[str] = []
    unread: list[str] = []
    for m in _incoming(messages):
        if m.get("read") is not True:
            covered = position is not None and m["timestamp"] <= position
            (read if covered else unread).append(m["id"])
    return {"read": read, "unread": unread}


def read_position(messages: Iterable[Mapping[str, Any]], value: Any) -> dict[str, Any] | None:
    """The person read the whole conversation: the value to write, the synced one with
    `read_up_to` at the newest incoming text, or None when that would not move it forward
    (a position never moves back). Only the peer's texts count: an own message carries this
    account's clock, which may run ahead of the peer's, and would cover a reply sent after
    it."""
    newest = max((m["timestamp"] for m in _incoming(messages)), default=None)
    position = read_up_to(value)
    if newest is None or (position is not None and newest <= position):
        return None
    kept = dict(value) if isinstance(value, Mapping) else {}
    return {**kept, "read_up_to": newest}
