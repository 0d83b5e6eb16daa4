"""Reads of the messaging app: a device's queue, in order, which devices have envelopes
waiting, and pages of an account's state log. Plain SQL on the hot path, like the writes in
messaging/services.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging import queue_db
from messaging.models import Group, GroupEntry, GroupReader, StateEntry
from messaging.schemas import GROUP_PAGE_ENTRIES, STATE_PAGE_BYTES, STATE_PAGE_ENTRIES
from protocol.encoding import b64u_encode
from protocol.groups import GroupState
from web.errors import NotFound


@dataclass(frozen=True)
class Delivery:
    seq: int
    envelope_id: str
    sender: str
    sender_device: str
    ciphertext: bytes | None  # None: a group message with no distribution for this device
    sent_at: datetime
    group: bytes | None = None  # the group message of a group send (docs/protocol.md 25.9)

    def to_frame(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "id": self.envelope_id,
            "sender": self.sender,
            "sender_device": self.sender_device,
            "sent_at": int(self.sent_at.timestamp() * 1000),
        }
        if self.ciphertext is not None:
            out["ciphertext"] = b64u_encode(self.ciphertext)
        if self.group is not None:
            out["group"] = b64u_encode(self.group)
        return out


# The three queue reads below run on a cursor messaging/queue_db.py hands in.


def devices_with_waiting_envelopes(
    cursor, *, device_ids: list[str], older_than_seconds: float
) -> set[str]:
    """Which of these devices have envelopes queued for longer than the given time."""
    cutoff = queue_db.datetime_param(timezone.now() - timedelta(seconds=older_than_seconds))
    found: set[str] = set()
    for start in range(0, len(device_ids), 5000):
        chunk = device_ids[start : start + 5000]
        marks = ", ".join(["%s"] * len(chunk))
        cursor.execute(
            "SELECT DISTINCT device_id FROM messaging_queuedenvelope"
            f" WHERE device_id IN ({marks}) AND created_at <= %s",
            [*chunk, cutoff],
        )
        found.update(row[0] for row in cursor.fetchall())
    return found


def queue_batch(cursor, *, device_id: str, after_seq: int, limit: int) -> list[Delivery]:
    """The device's next envelopes after `after_seq`, in queue order."""
    cursor.execute(
        "SELECT q.id, q.envelope_id, q.sender, q.sender_device_id, q.ciphertext, q.created_at,"
        " g.ciphertext FROM messaging_queuedenvelope q"
        " LEFT JOIN messaging_groupmessage g ON g.id = q.group_message_id"
        " WHERE q.device_id = %s AND q.id > %s ORDER BY q.id LIMIT %s",
        [device_id, after_seq, limit],
    )
    return [
        Delivery(
            seq=r[0],
            envelope_id=r[1],
            sender=r[2],
            sender_device=r[3],
            ciphertext=None if r[4] is None else bytes(r[4]),
            sent_at=_as_datetime(r[5]),
            group=None if r[6] is None else bytes(r[6]),
        )
        for r in cursor.fetchall()
    ]


def queued_ids(cursor, *, device_id: str, upto_seq: int, limit: int) -> list[int]:
    """Queue positions of the device's rows at or below `upto_seq` (oldest first)."""
    cursor.execute(
        "SELECT id FROM messaging_queuedenvelope WHERE device_id = %s AND id <= %s ORDER BY id LIMIT %s",
        [device_id, upto_seq, limit],
    )
    return [row[0] for row in cursor.fetchall()]


def _as_datetime(value: datetime | str) -> datetime:
    """SQLite hands raw queries a string; PostgreSQL a datetime."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class StateHead:
    version: int  # the account's current version, 0 before the first write
    snapshot_version: int  # the latest snapshot's version, 0 when there is none


def state_head(*, user_id: int) -> StateHead:
    found = StateEntry.objects.filter(user_id=user_id).aggregate(
        latest=Max("version"), snapshot=Max("version", filter=Q(kind=StateEntry.SNAPSHOT))
    )
    return StateHead(version=found["latest"] or 0, snapshot_version=found["snapshot"] or 0)


@dataclass(frozen=True)
class StateItem:
    version: int
    kind: str
    blob: bytes
    author_device_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "blob": b64u_encode(self.blob),
            "device": self.author_device_id,
        }


@dataclass(frozen=True)
class StatePage:
    version: int
    entries: list[StateItem]
    more: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "entries": [e.to_json() for e in self.entries],
            "more": self.more,
        }


# One statement, so the current version, the latest snapshot and the page come from one
# snapshot of the database: a compaction committing between two reads would otherwise show
# a device a gap. The page is cut on blob lengths alone; only the entries in it are read.
_STATE_PAGE = """
    WITH head AS (
        SELECT COALESCE(MAX(version), 0) AS v,
               COALESCE(MAX(CASE WHEN kind = 'snapshot' THEN version END), 0) AS s
        FROM messaging_stateentry WHERE user_id = %s
    ),
    cut AS (
        SELECT e.version,
               ROW_NUMBER() OVER (ORDER BY e.version) AS n,
               SUM(LENGTH(e.blob)) OVER (ORDER BY e.version) AS running
        FROM messaging_stateentry e, head
        WHERE e.user_id = %s AND e.version <= head.v
          AND e.version >= CASE WHEN head.s > %s THEN head.s ELSE %s + 1 END
    )
    SELECT head.v, e.version, e.kind, e.blob, e.author_device_id
    FROM head
    LEFT JOIN cut ON cut.n = 1 OR (cut.n <= %s AND cut.running <= %s)
    LEFT JOIN messaging_stateentry e ON e.user_id = %s AND e.version = cut.version
    ORDER BY e.version
"""


def state_page(*, user_id: int, after: int) -> StatePage:
    """What a device that holds the state at `after` reads next (docs/protocol.md 19.3): from
    the latest snapshot when it is newer than `after`, else the patches after `after`; in
    version order, at most STATE_PAGE_ENTRIES entries and STATE_PAGE_BYTES of blobs (a page
    always holds one entry, however large)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _STATE_PAGE,
            [user_id, user_id, after, after, STATE_PAGE_ENTRIES, STATE_PAGE_BYTES, user_id],
        )
        rows = cursor.fetchall()
    version = rows[0][0]
    entries = [
        StateItem(version=r[1], kind=r[2], blob=bytes(r[3]), author_device_id=r[4])
        for r in rows
        if r[1] is not None
    ]
    more = bool(entries) and entries[-1].version < version
    return StatePage(version=version, entries=entries, more=more)


# ---------------------------------------------------------------- group membership logs


def group_key(group_id: bytes) -> str:
    """The primary key of a group's row: its id in base64url, as on the wire."""
    return b64u_encode(group_id)


def group_state_bytes(state: GroupState) -> bytes:
    """What Group.state holds: the state's JSON (`to_dict`) in UTF-8."""
    return json.dumps(state.to_dict(), separators=(",", ":")).encode()


def group_state_load(stored: bytes | memoryview) -> GroupState:
    return GroupState.from_dict(json.loads(bytes(stored)))


def group_state(group_id: bytes) -> GroupState | None:
    """The state after the group's latest stored entry, None for a group with no entries."""
    found = Group.objects.filter(pk=group_key(group_id)).values_list("state", flat=True).first()
    return group_state_load(found) if found is not None else None


def group_not_found() -> NotFound:
    return NotFound("No such group for this account.", code="group_not_found")


@dataclass(frozen=True)
class GroupPage:
    head: int  # the seq this reader may read up to: the log's head, or its removal
    entries: list[tuple[int, bytes]]
    more: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "entries": [{"seq": seq, "entry": b64u_encode(wire)} for seq, wire in self.entries],
            "more": self.more,
        }


def account_groups(*, account: str) -> list[dict[str, Any]]:
    """Every group `account` may read, with the head it may read up to (docs/protocol.md
    19.4): a device learns the groups of its account here, and reads only the logs that
    moved."""
    readers = list(GroupReader.objects.filter(account=account).values_list("group_id", "until_seq"))
    heads = dict(
        GroupEntry.objects.filter(group_id__in=[g for g, _ in readers])
        .values("group_id")
        .annotate(head=Max("seq"))
        .values_list("group_id", "head")
    )
    return [
        {"group_id": g, "head": heads[g] if until is None else min(heads[g], until)}
        for g, until in sorted(readers)
        if g in heads
    ]


def group_page(*, group_id: bytes, account: str, after: int) -> GroupPage:
    """The entries after `after` that `account` may read (docs/protocol.md 19.4): all of them
    for a member, up to and including its removal or leave for a former one; a group the
    account may not read is `group_not_found`, as one that does not exist."""
    key = group_key(group_id)
    reader = GroupReader.objects.filter(group_id=key, account=account).first()
    if reader is None:
        raise group_not_found()
    head = GroupEntry.objects.filter(group_id=key).aggregate(head=Max("seq"))["head"]
    if reader.until_seq is not None:
        head = min(head, reader.until_seq)
    rows = list(
        GroupEntry.objects.filter(group_id=key, seq__gt=after, seq__lte=head)
        .order_by("seq")
        .values_list("seq", "entry")[:GROUP_PAGE_ENTRIES]
    )
    entries = [(seq, bytes(wire)) for seq, wire in rows]
    return GroupPage(head=head, entries=entries, more=bool(entries) and entries[-1][0] < head)
