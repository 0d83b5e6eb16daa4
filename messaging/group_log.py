"""The group membership log's one state change (docs/protocol.md 19.4, 25.7): an entry stored
at exactly head + 1 after the checks the server can make. Defence in depth, not trust: every
device verifies the chain itself."""

from __future__ import annotations

import re
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import USERNAME_PATTERN, User
from devices import events
from devices.models import Device
from devices.selectors import active_identity_keys
from messaging.models import Group, GroupEntry, GroupReader
from messaging.selectors import (
    group_key,
    group_not_found,
    group_state,
    group_state_bytes,
    group_state_load,
)
from protocol import groups
from protocol.exceptions import GroupRefused, MalformedMessage
from web.errors import AppError


class GroupHeadMoved(AppError):
    code = "group_head_moved"
    status = 409


class GroupEntryRefused(AppError):
    code = "group_entry_refused"
    status = 409


def _head_moved(seq: int, head: int) -> GroupHeadMoved:
    return GroupHeadMoved(
        f"The group's log ends at seq {head}, so the next entry is {head + 1}, not {seq};"
        " fetch, verify and retry.",
        data={"head": head},
    )


def _refused(reason: str, message: str) -> GroupEntryRefused:
    return GroupEntryRefused(message, data={"reason": reason})


def _stored_head(group_id: bytes) -> int:
    state = group_state(group_id)
    return state.seq if state is not None else -1


def group_entry_append(
    *, device: Device, group_id: bytes, seq: int, entry: bytes, now: datetime | None = None
) -> int:
    """Compare-and-swap on a group's membership log: store the signed `entry` at `seq` only if
    that is the stored head + 1 and the entry passes section 25.2 against the stored state,
    signed by a device of the writer's own account (docs/protocol.md 25.7). Defence in
    depth: every device verifies the chain itself. After the commit, every device of the
    accounts that are members after the entry or named in it gets `group.changed`."""
    account = User.objects.values_list("username", flat=True).get(pk=device.user_id)
    with transaction.atomic():
        # Writes to one group queue on its row (FOR UPDATE on PostgreSQL, the write lock of
        # SQLite's IMMEDIATE transactions); a group's first entry has no row yet, and of two
        # creates the second fails on its primary key below.
        row = Group.objects.select_for_update().filter(pk=group_key(group_id)).first()
        state = group_state_load(row.state) if row is not None else None
        # A group the writer's account is not in is not revealed, as for reads: only a
        # member can write a valid entry.
        if state is not None and account not in state.members:
            raise group_not_found()
        head = state.seq if state is not None else -1
        if seq != head + 1:
            raise _head_moved(seq, head)
        decoded = _group_entry_check(entry, group_id=group_id, seq=seq, account=account)
        try:
            after = groups.apply_entry(
                state, entry, device_lists={account: active_identity_keys(device.user_id)}
            )
        except GroupRefused as error:
            raise _refused(error.code, f"The entry is refused: {error}") from None
        try:
            with transaction.atomic():
                if row is None:
                    row = Group.objects.create(
                        pk=group_key(group_id), state=group_state_bytes(after)
                    )
                else:
                    Group.objects.filter(pk=row.pk).update(state=group_state_bytes(after))
                GroupEntry.objects.create(
                    group=row, seq=seq, entry=entry, created_at=now or timezone.now()
                )
        except IntegrityError:  # two creates at once, or a lock this backend did not take
            raise _head_moved(seq, _stored_head(group_id)) from None
        named = _group_readers_update(row, state, after, decoded)
        for user_id in User.objects.filter(username__in=named).values_list("pk", flat=True):
            events.send_on_commit(
                events.user_group(user_id),
                {
                    "type": events.GROUP_CHANGED,
                    "group_id": row.pk,
                    "seq": seq,
                    "device_id": device.id,
                },
            )
    return seq


_ACCOUNT_ID = re.compile(USERNAME_PATTERN[1:-1])


def _group_entry_check(
    entry: bytes, *, group_id: bytes, seq: int, account: str
) -> groups.GroupEntry:
    """The checks of 25.7 before apply_entry's: the structure, the URL's group and seq, and
    the writer's account as the actor (a device writes only as its own account)."""
    try:
        decoded = groups.decode_entry(entry)
    except MalformedMessage as error:
        raise _refused(error.code, f"The entry is malformed: {error}") from None
    if decoded.group_id != group_id:
        raise _refused("wrong_group", "The entry is for another group than this URL's.")
    if decoded.seq != seq:
        raise _refused("wrong_seq", f"The entry is at seq {decoded.seq}, the request at {seq}.")
    if decoded.actor != account:
        raise _refused(
            "not_this_account", f"The entry's actor is {decoded.actor!r}, not your account."
        )
    # Account ids are this server's usernames: an entry naming anything else names nobody.
    if not all(_ACCOUNT_ID.fullmatch(a) for a in decoded.accounts):
        raise _refused("malformed_account", "The entry names an account id that is not a username.")
    return decoded


def _group_readers_update(
    row: Group,
    before: groups.GroupState | None,
    after: groups.GroupState,
    decoded: groups.GroupEntry,
) -> set[str]:
    """Members read the whole log; an account the entry removed (or that left) reads up to
    and including it. The accounts to tell: members after the entry and those it named."""
    previous = before.members if before is not None else frozenset()
    gone = (previous | set(decoded.accounts) | {decoded.actor}) - after.members
    for account in after.members - previous:
        GroupReader.objects.update_or_create(
            group=row, account=account, defaults={"until_seq": None}
        )
    for account in gone:
        GroupReader.objects.update_or_create(
            group=row, account=account, defaults={"until_seq": after.seq}
        )
    return set(after.members) | gone
