"""A group in the device engine (docs/protocol.md section 25.8): a sans-I/O machine of its own,
`handle(GroupRecord, event) -> (GroupRecord, effects)`, one record per group a device holds.

It reads the membership log and verifies it against the lists the adapter verified, takes
sender-key distributions and group messages only from listed devices of members, holds what
arrives before its chain or key, and plans each send: the targets, the key's rotation or
distribution (section 25.4) and the message. Randomness is the event's `seed`, expanded
with the TestRng stream, so a scenario replays exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from protocol.content import MAX_RECEIPT_IDS, ContentType, decode_content
from protocol.encoding import b64u_decode, b64u_encode, is_uint
from protocol.engine.effects import (
    Effect,
    GroupContent,
    GroupListsWanted,
    GroupNotice,
    GroupReceipt,
    GroupSend,
    GroupSign,
    HttpRequest,
    SendContent,
)
from protocol.engine.events import (
    GroupAnswered,
    GroupChangeWanted,
    GroupEvent,
    GroupFetchWanted,
    GroupKeyReceived,
    GroupListsKnown,
    GroupMessageReceived,
    GroupMessagesRead,
    GroupReceiptReceived,
    GroupSendAnswered,
    GroupSendWanted,
    GroupSigned,
)
from protocol.engine.groupstate import (
    MAX_HELD,
    MAX_WRITE_ATTEMPTS,
    RECEIVING_CHAINS,
    GroupRecord,
    Held,
    Lists,
    Outgoing,
    WaitingSend,
    Writing,
)
from protocol.engine.sending import MAX_MISMATCH_RETRIES
from protocol.exceptions import GroupChainForked, MalformedMessage, ProtocolError
from protocol.groups import (
    ZERO_HASH,
    EntryKind,
    GroupEntry,
    GroupState,
    compare_head,
    decode_entry,
    entry_bytes,
    entry_hash,
    verify_chain,
)
from protocol.rng import Rng, TestRng
from protocol.senderkeys import (
    decode_group_message,
    decrypt_group,
    distribution_body,
    encrypt_group,
    new_sender_key,
    prepare_send,
    receiving_key,
)

GROUPS_PATH = "/api/groups"
KINDS = {kind.name.lower(): kind for kind in EntryKind}

Result = tuple[GroupRecord, list[Effect]]


@dataclass
class _Turn:
    """What one event asks for besides its effects: a fetch, and lists."""

    effects: list[Effect] = field(default_factory=list)
    fetch: bool = False
    missing: set[str] = field(default_factory=set)

    def notice(self, what: str, **data: Any) -> None:
        self.effects.append(GroupNotice(what, data))


def handle(record: GroupRecord, event: GroupEvent) -> Result:
    turn = _Turn()
    if isinstance(event, GroupFetchWanted):
        turn.fetch = True
    elif isinstance(event, GroupAnswered):
        record = _answered(record, turn, event)
    elif isinstance(event, GroupListsKnown):
        rng: Rng = TestRng(event.seed)
        if record.page:
            record = _page(record, turn, record.page, record.page_more, event.lists)
        record = _resume(record, turn, event.lists)
        sends, record = record.sends, replace(record, sends=())
        for send in sends:
            record = _send(record, turn, send.send_id, send.plaintext, event.lists, rng)
    elif isinstance(event, GroupKeyReceived):
        item = Held("key", b"", event.sender, event.sender_device, dict(event.body))
        record = _key(record, turn, item, event.lists, fresh=True)
        record = _resume(record, turn, event.lists)
    elif isinstance(event, GroupMessageReceived):
        record = _message(record, turn, event.message, event.lists, fresh=True)
    elif isinstance(event, GroupSendWanted):
        rng = TestRng(event.seed)
        record = _send(record, turn, event.send_id, event.plaintext, event.lists, rng)
    elif isinstance(event, GroupChangeWanted):
        record = _change_wanted(record, turn, event)
    elif isinstance(event, GroupSigned):
        record = _signed(record, turn, event)
    elif isinstance(event, GroupSendAnswered):
        record = _send_answered(record, turn, event)
    elif isinstance(event, GroupReceiptReceived):
        _receipt(record, turn, event)
    elif isinstance(event, GroupMessagesRead):
        _read(record, turn, event)
    else:
        raise TypeError(f"not a group event: {event!r}")
    effects = turn.effects
    if turn.fetch:
        record, asked = _fetch(record)
        effects += asked
    if turn.missing:
        effects.append(GroupListsWanted(tuple(sorted(turn.missing))))
    return record, effects


def _fetch(record: GroupRecord) -> Result:
    """One fetch in flight; a second want is asked when the first is answered."""
    if record.request is not None:
        return replace(record, fetch_again=True), []
    request_id = f"g{record.next_request}"
    path = f"{_entries_path(record)}?after={_seq(record)}"
    record = replace(record, request=request_id, next_request=record.next_request + 1)
    return record, [HttpRequest(request_id, "GET", path)]


def _entries_path(record: GroupRecord) -> str:
    return f"{GROUPS_PATH}/{b64u_encode(record.group_id)}/entries"


# ---------------------------------------------------------------- the log


def _answered(record: GroupRecord, turn: _Turn, event: GroupAnswered) -> GroupRecord:
    writing = record.writing
    if writing is not None and event.request_id == writing.request:
        return _written(record, turn, event, writing)
    if event.request_id != record.request:
        return record  # an answer to nothing this machine asked: ignored
    turn.fetch = record.fetch_again
    record = replace(record, request=None, fetch_again=False)
    if event.status != 200:
        turn.notice("group_unavailable", status=event.status, code=_code(event))
        return _fetch_failed(record, turn)
    try:
        entries, more = _parse_page(record, event.body)
    except MalformedMessage:
        turn.notice("group_refused", error="MalformedMessage", seq=_seq(record))
        return _fetch_failed(record, turn)
    return _page(record, turn, entries, more, event.lists)


def _code(event: GroupAnswered) -> str:
    error = event.body.get("error") if isinstance(event.body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else f"http_{event.status}"


def _parse_page(record: GroupRecord, body: Any) -> tuple[tuple[bytes, ...], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
        raise MalformedMessage("group page: expected {head, entries, more}")
    more = body.get("more")
    if not isinstance(more, bool):
        raise MalformedMessage("group page: expected a boolean more")
    entries = []
    for n, item in enumerate(body["entries"], _seq(record) + 1):
        if not isinstance(item, dict) or item.get("seq") != n or not is_uint(item.get("seq")):
            raise MalformedMessage(f"group page: expected the entry at seq {n}")
        entries.append(b64u_decode(item.get("entry"), what="group entry"))
    return tuple(entries), more and bool(entries)


def _page(
    record: GroupRecord, turn: _Turn, entries: tuple[bytes, ...], more: bool, lists: Lists
) -> GroupRecord:
    """Verify a page against the chain (all or nothing), once its actors' lists are known."""
    try:
        decoded = [decode_entry(wire) for wire in entries]
    except MalformedMessage:
        turn.notice("group_refused", error="MalformedMessage", seq=_seq(record))
        return _fetch_failed(replace(record, page=(), page_more=False), turn)
    missing = {e.actor for e in decoded} - set(lists)
    if missing:
        turn.missing |= missing
        return replace(record, page=entries, page_more=more)
    record = replace(record, page=(), page_more=False)
    try:
        chain = verify_chain(entries, device_lists=_device_lists(lists), state=record.chain)
    except ProtocolError as error:
        turn.notice("group_refused", error=type(error).__name__, seq=_seq(record))
        return _fetch_failed(record, turn)
    record = _applied(record, turn, chain, decoded)
    if more:
        turn.fetch = True
        return record
    withheld = chain.seq < record.wanted
    if withheld and not record.withheld:  # told once, not at every fetch while it lasts
        turn.notice("group_withheld", wanted=record.wanted, served=chain.seq)
    record = _resume(replace(record, withheld=withheld), turn, lists)
    writing = record.writing
    if writing is not None and writing.stage == "waiting":
        record = _sign(record, turn, writing)
    return record


def _applied(
    record: GroupRecord, turn: _Turn, chain: GroupState, decoded: list[GroupEntry]
) -> GroupRecord:
    """The chain after verified entries: each told, the chains of former members dropped."""
    for entry in decoded:
        turn.notice(
            "group_changed",
            seq=entry.seq,
            kind=entry.kind.name.lower(),
            actor=entry.actor,
            accounts=list(entry.accounts),
            name=entry.name,
            timestamp=entry.timestamp,
        )
    receiving = {d: ks for d, ks in record.receiving.items() if ks[0].sender in chain.members}
    return replace(record, chain=chain, receiving=receiving)


def _fetch_failed(record: GroupRecord, turn: _Turn) -> GroupRecord:
    """A change waiting for the fetch that failed is given up."""
    writing = record.writing
    if writing is not None and writing.stage == "waiting":
        return _change_refused(record, turn, writing.change_id, "head_moved")
    return record


def _seq(record: GroupRecord) -> int:
    return record.chain.seq if record.chain is not None else -1


# ---------------------------------------------------------------- distributions and messages


def _take(
    record: GroupRecord,
    turn: _Turn,
    sender: str,
    device: str,
    head: tuple[int, bytes],
    lists: Lists,
    *,
    signed: bool,
    fresh: bool,
) -> tuple[GroupRecord, str | None]:
    """Whether an item counts (None), is held ("hold") or refused (the reason), in the order
    of section 25.8. Only a signed item raises `wanted`; only a new one asks for a fetch."""
    head_seq, head_hash = head
    chain = record.chain
    if chain is None or head_seq > chain.seq:
        if signed:
            record = replace(record, wanted=max(record.wanted, head_seq))
        turn.fetch = turn.fetch or fresh
        return record, "hold"
    try:
        compare_head(chain, head_seq, head_hash)
    except GroupChainForked:
        if record.conflict is None:
            record = replace(record, conflict=(head_seq, head_hash))
            turn.notice("group_forked", seq=head_seq)
        return record, "GroupChainForked"
    if sender not in chain.members:
        return record, "not_a_member"
    if sender not in lists:
        turn.missing.add(sender)
        return record, "hold"
    if device not in lists[sender]:
        return record, "device_unlisted"
    return record, None


def _hold(
    record: GroupRecord, turn: _Turn, item: Held, code: str, sender: str, device: str
) -> GroupRecord:
    if len(record.held) >= MAX_HELD:
        turn.notice(code, sender=sender, sender_device=device, error="held_full")
        return record
    return replace(record, held=(*record.held, item))


def _key(record: GroupRecord, turn: _Turn, item: Held, lists: Lists, *, fresh: bool) -> GroupRecord:
    sender, device = item.sender, item.sender_device
    try:
        key = receiving_key(dict(item.body), sender=sender, device=device)
        head = (item.body["head_seq"], b64u_decode(item.body["head_hash"], length=32))
    except MalformedMessage:
        turn.notice(
            "group_key_refused", sender=sender, sender_device=device, error="MalformedMessage"
        )
        return record
    if key.group_id != record.group_id:
        turn.notice("group_key_refused", sender=sender, sender_device=device, error="another_group")
        return record
    record, verdict = _take(record, turn, sender, device, head, lists, signed=True, fresh=fresh)
    if verdict == "hold":
        return _hold(record, turn, item, "group_key_refused", sender, device)
    if verdict is not None:
        turn.notice("group_key_refused", sender=sender, sender_device=device, error=verdict)
        return record
    held = [k for k in record.receiving.get(device, ()) if k.sender == sender]
    if any(k.key_id == key.key_id for k in held):
        return record  # a key it holds already changes nothing
    chains = (key, *held)[:RECEIVING_CHAINS]
    return replace(record, receiving={**record.receiving, device: chains})


def _message(
    record: GroupRecord, turn: _Turn, data: bytes, lists: Lists, *, fresh: bool
) -> GroupRecord:
    try:
        message = decode_group_message(data)
    except MalformedMessage:
        turn.notice("group_message_refused", error="MalformedMessage")
        return record
    sender, device = message.sender, message.device
    who = {"sender": sender, "sender_device": device}
    if message.group_id != record.group_id:
        turn.notice("group_message_refused", **who, error="another_group")
        return record
    held = record.receiving.get(device, ())
    chain = next((k for k in held if k.sender == sender and k.key_id == message.key_id), None)
    decrypted = None
    if chain is not None:
        try:
            decrypted = decrypt_group(chain, data)
        except ProtocolError as error:
            turn.notice("group_message_refused", **who, error=type(error).__name__)
            return record
    head = (message.head_seq, message.head_hash)
    signed = chain is not None
    record, verdict = _take(record, turn, sender, device, head, lists, signed=signed, fresh=fresh)
    if verdict is not None and verdict != "hold":
        turn.notice("group_message_refused", **who, error=verdict)
        return record
    if verdict == "hold" or decrypted is None:
        held_item = Held("message", data)
        return _hold(record, turn, held_item, "group_message_refused", sender, device)
    after, plaintext = decrypted
    chains = tuple(after if k is chain else k for k in held)
    record = replace(record, receiving={**record.receiving, device: chains})
    turn.effects.append(GroupContent(sender, device, plaintext, message.head_seq))
    if sender != record.account_id:
        _delivered(record, turn, sender, plaintext)
    return record


def _receipt_body(record: GroupRecord, kind: str, ids: list[str]) -> dict[str, Any]:
    return {"kind": kind, "message_ids": ids, "group_id": b64u_encode(record.group_id)}


def _delivered(record: GroupRecord, turn: _Turn, sender: str, plaintext: bytes) -> None:
    """A text from a member is answered with a delivery receipt to the sender's devices
    (25.10): group members get receipts whether or not they are contacts."""
    try:
        content = decode_content(plaintext)
    except ProtocolError:
        return
    if content.type in (ContentType.TEXT, ContentType.ATTACHMENT):
        body = _receipt_body(record, "delivered", [b64u_encode(content.message_id)])
        turn.effects.append(SendContent(sender, int(ContentType.RECEIPT), body))


def _read(record: GroupRecord, turn: _Turn, event: GroupMessagesRead) -> None:
    """Read receipts, when the setting is on, to a sender who is still a member."""
    chain = record.chain
    if not event.read_receipts or not event.message_ids or event.sender == record.account_id:
        return
    if chain is None or event.sender not in chain.members:
        return
    ids = list(event.message_ids)
    for start in range(0, len(ids), MAX_RECEIPT_IDS):
        body = _receipt_body(record, "read", ids[start : start + MAX_RECEIPT_IDS])
        turn.effects.append(SendContent(event.sender, int(ContentType.RECEIPT), body))


def _receipt(record: GroupRecord, turn: _Turn, event: GroupReceiptReceived) -> None:
    """A receipt counts from a listed device of a current member, for this group; anything
    else changes nothing (a receipt is no message: it is not told)."""
    chain = record.chain
    group_id = event.body.get("group_id")
    if chain is None or group_id != b64u_encode(record.group_id):
        return
    if event.sender not in chain.members or event.sender == record.account_id:
        return
    if event.sender_device not in event.lists.get(event.sender, {}):
        return
    ids = tuple(event.body["message_ids"])
    turn.effects.append(GroupReceipt(event.sender, event.body["kind"], ids))


def _resume(record: GroupRecord, turn: _Turn, lists: Lists) -> GroupRecord:
    """Held distributions, then held messages, tried again in order; a resume never asks
    for a fetch (what still waits, waits for the next one)."""
    items, record = record.held, replace(record, held=())
    for item in (*[i for i in items if i.kind == "key"], *[i for i in items if i.kind != "key"]):
        if item.kind == "key":
            record = _key(record, turn, item, lists, fresh=False)
        else:
            record = _message(record, turn, item.data, lists, fresh=False)
    return record


# ---------------------------------------------------------------- sending


def _send(
    record: GroupRecord,
    turn: _Turn,
    send_id: str,
    plaintext: bytes,
    lists: Lists,
    rng: Rng,
    attempt: int = 1,
) -> GroupRecord:
    chain, account = record.chain, record.account_id
    reason = None
    if chain is None or account not in chain.members:
        reason = "not_a_member"
    elif record.conflict is not None:
        reason = "forked"
    elif record.withheld:
        reason = "withheld"
    elif account in lists and record.device_id not in lists[account]:
        reason = "device_removed"
    if reason is not None or chain is None:
        turn.notice("group_send_refused", send_id=send_id, reason=reason)
        return record
    missing = chain.members - set(lists)
    if missing:
        turn.missing |= missing
        if len(record.sends) >= MAX_HELD:
            turn.notice("group_send_refused", send_id=send_id, reason="held_full")
            return record
        return replace(record, sends=(*record.sends, WaitingSend(send_id, plaintext)))
    targets = [
        (member, device, identity)
        for member in sorted(chain.members)
        for device, identity in sorted(lists[member].items())
        if (member, device) != (account, record.device_id)
    ]
    key = record.sending
    if key is None:
        key = new_sender_key(rng, group_id=record.group_id, sender=account, device=record.device_id)
    plan = prepare_send(key, [identity for _, _, identity in targets], rng)
    head_seq, head_hash = chain.seq, chain.head
    try:
        body = distribution_body(plan.key, head_seq=head_seq, head_hash=head_hash)
        after, message = encrypt_group(
            plan.key, plaintext, head_seq=head_seq, head_hash=head_hash, rng=rng
        )
    except ProtocolError as error:
        turn.notice("group_send_refused", send_id=send_id, reason=type(error).__name__)
        return record
    wanted = set(plan.distribute_to)
    turn.effects.append(
        GroupSend(
            send_id,
            message,
            tuple((member, device) for member, device, _ in targets),
            tuple((m, d, body) for m, d, identity in targets if identity in wanted),
            plan.rotated,
        )
    )
    out = Outgoing(send_id, plaintext, frozenset(wanted), attempt)
    outgoing = (*record.outgoing, out)[-MAX_HELD:]
    return replace(record, sending=after, outgoing=outgoing)


def _send_answered(record: GroupRecord, turn: _Turn, event: GroupSendAnswered) -> GroupRecord:
    """`accepted`: done. `mismatched_devices`: the devices the send was the first to give
    the key get it again, and the same plaintext is planned again on the lists passed, at
    most MAX_MISMATCH_RETRIES times. Another refusal is told."""
    frame = event.frame
    ref = frame.get("id") if frame.get("type") == "accepted" else frame.get("ref")
    out = next((o for o in record.outgoing if o.send_id == ref), None)
    if out is None:
        return record  # an answer to nothing this machine sent: ignored
    record = replace(record, outgoing=tuple(o for o in record.outgoing if o is not out))
    if frame.get("type") == "accepted":
        return record
    code = frame.get("code")
    reason = code if isinstance(code, str) else "refused"
    if reason != "mismatched_devices" or out.attempt > MAX_MISMATCH_RETRIES:
        turn.notice("group_send_refused", send_id=out.send_id, reason=reason)
        return record
    if record.sending is not None:
        taken_back = record.sending.distributed - out.distributed
        record = replace(record, sending=replace(record.sending, distributed=taken_back))
    rng = TestRng(event.seed)
    return _send(record, turn, out.send_id, out.plaintext, event.lists, rng, out.attempt + 1)


# ---------------------------------------------------------------- writing the log


def _change_wanted(record: GroupRecord, turn: _Turn, event: GroupChangeWanted) -> GroupRecord:
    kind, chain = KINDS.get(event.change), record.chain
    reason = None
    if record.writing is not None:
        reason = "busy"
    elif kind is None:
        reason = "MalformedMessage"
    elif kind is EntryKind.CREATE:
        reason = "exists" if chain is not None else None
    elif chain is None or record.account_id not in chain.members:
        reason = "not_a_member"
    elif record.conflict is not None:
        reason = "forked"
    elif record.withheld:
        reason = "withheld"
    if reason is not None:
        turn.notice("group_change_refused", change_id=event.change_id, reason=reason)
        return record
    writing = Writing(
        event.change_id,
        event.change,
        tuple(sorted(set(event.accounts))),  # a name given twice counts once
        event.name,
        event.identity_key,
        event.now,
        "signing",
        _seq(record) + 1,
    )
    return _sign(record, turn, writing)


def _sign(record: GroupRecord, turn: _Turn, writing: Writing) -> GroupRecord:
    """Ask for the signature of the change on the chain's head."""
    chain = record.chain
    entry = GroupEntry(
        group_id=record.group_id,
        seq=_seq(record) + 1,
        previous=chain.head if chain is not None else ZERO_HASH,
        kind=KINDS[writing.kind],
        actor=record.account_id,
        actor_key=writing.actor_key,
        timestamp=writing.timestamp,
        accounts=writing.accounts,
        name=writing.name,
        signature=b"",
    )
    try:
        data = entry_bytes(entry)
    except MalformedMessage:
        return _change_refused(record, turn, writing.change_id, "MalformedMessage")
    turn.effects.append(GroupSign(writing.change_id, data))
    writing = replace(writing, stage="signing", seq=entry.seq, data=data, request=None)
    return replace(record, writing=writing)


def _signed(record: GroupRecord, turn: _Turn, event: GroupSigned) -> GroupRecord:
    """Check the signed entry as every device will, then write it at head + 1."""
    writing = record.writing
    if writing is None or writing.change_id != event.change_id or writing.stage != "signing":
        return record  # a signature for nothing this machine asked: ignored
    if _seq(record) + 1 != writing.seq:  # a fetch moved the head meanwhile: sign again
        if writing.attempts >= MAX_WRITE_ATTEMPTS:
            return _change_refused(record, turn, writing.change_id, "head_moved")
        return _sign(record, turn, replace(writing, attempts=writing.attempts + 1))
    wire = writing.data + event.signature
    try:
        verify_chain([wire], device_lists=_device_lists(event.lists), state=record.chain)
    except ProtocolError as error:
        return _change_refused(record, turn, writing.change_id, type(error).__name__)
    request_id = f"g{record.next_request}"
    body = {"seq": writing.seq, "entry": b64u_encode(wire)}
    turn.effects.append(HttpRequest(request_id, "POST", _entries_path(record), body))
    writing = replace(writing, stage="posting", entry=wire, request=request_id)
    return replace(record, writing=writing, next_request=record.next_request + 1)


def _written(
    record: GroupRecord, turn: _Turn, event: GroupAnswered, writing: Writing
) -> GroupRecord:
    chain = record.chain
    if event.status == 201:
        record = replace(record, writing=None)
        if chain is not None and chain.seq >= writing.seq:
            if chain.hashes[writing.seq] != entry_hash(writing.entry):
                turn.notice("group_change_refused", change_id=writing.change_id, reason="forked")
                return record
        else:  # not yet read back by a fetch
            try:
                after = verify_chain(
                    [writing.entry], device_lists=_device_lists(event.lists), state=chain
                )
            except ProtocolError as error:
                reason = type(error).__name__
                turn.notice("group_change_refused", change_id=writing.change_id, reason=reason)
                return record
            record = _applied(record, turn, after, [decode_entry(writing.entry)])
        turn.notice("group_written", change_id=writing.change_id, seq=writing.seq)
        return record
    if event.status == 409 and _code(event) == "group_head_moved":
        if writing.attempts >= MAX_WRITE_ATTEMPTS:
            return _change_refused(record, turn, writing.change_id, "head_moved")
        turn.fetch = True
        waiting = replace(writing, stage="waiting", request=None, attempts=writing.attempts + 1)
        return replace(record, writing=waiting)
    return _change_refused(record, turn, writing.change_id, _code(event))


def _change_refused(record: GroupRecord, turn: _Turn, change_id: str, reason: str) -> GroupRecord:
    turn.notice("group_change_refused", change_id=change_id, reason=reason)
    return replace(record, writing=None)


def _device_lists(lists: Lists) -> dict[str, list[bytes]]:
    return {account: list(devices.values()) for account, devices in lists.items()}


__all__ = ["GROUPS_PATH", "KINDS", "handle"]
