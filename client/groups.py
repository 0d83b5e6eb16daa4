"""The Python client as an adapter of the group machine (docs/protocol.md sections 25.8 and
25.9): it keeps one record per group in the store, feeds the machine, performs what the
machine asks (HTTP over the transport, a signature with this device's identity key, the
members' device lists through the device engine), encrypts the sender-key distributions over
the pairwise sessions, and turns the rest into events and `group_send` frames. No group rule
lives here."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from client import api
from client.api import ApiError
from client.events import (
    Event,
    GroupEvent,
    GroupFile,
    GroupReceiptReceived,
    GroupSendOwed,
    GroupText,
    Refused,
    SendOwed,
)
from client.sending import Sender, SendRefused
from protocol.attachments import AttachmentPointer
from protocol.content import ContentType, decode_content, encode_content, new_content
from protocol.encoding import b64u_decode, b64u_encode, label
from protocol.engine import (
    GroupAnswered,
    GroupChangeWanted,
    GroupContent,
    GroupFetchWanted,
    GroupKeyReceived,
    GroupListsKnown,
    GroupListsWanted,
    GroupMessageReceived,
    GroupMessagesRead,
    GroupNotice,
    GroupReceipt,
    GroupRecord,
    GroupSend,
    GroupSendAnswered,
    GroupSendWanted,
    GroupSign,
    GroupSigned,
    HttpRequest,
    SendContent,
    handle_group,
)
from protocol.engine import (
    GroupEvent as MachineEvent,
)
from protocol.engine import (
    GroupReceiptReceived as ReceiptArrived,
)
from protocol.exceptions import ProtocolError
from protocol.groups import ENTRY_LABEL, new_group_id
from protocol.keys import PrekeyBundle
from protocol.senderkeys import decode_group_message

_ENTRY_PREFIX = label(ENTRY_LABEL)
Lists = dict[str, dict[str, bytes]]


class GroupRefused(Exception):
    """The group machine (or the server through it) refused; `code` as the machine said."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class OutgoingGroup:
    """One `group_send` frame (docs/protocol.md 25.9)."""

    group_id: str  # base64url
    send_id: str
    message: bytes = field(repr=False)
    targets: tuple[str, ...]
    keys: Mapping[str, bytes] = field(repr=False)

    @property
    def frame(self) -> dict[str, Any]:
        return {
            "type": "group_send",
            "v": 1,
            "id": self.send_id,
            "group_id": self.group_id,
            "message": b64u_encode(self.message),
            "targets": list(self.targets),
            "keys": {d: b64u_encode(c) for d, c in self.keys.items()},
        }


@dataclass
class GroupRun:
    """What one run of the machine left: events to show, frames to send, and its notices."""

    events: list[Event] = field(default_factory=list)
    sends: list[OutgoingGroup] = field(default_factory=list)
    notices: list[GroupNotice] = field(default_factory=list)

    def refusal(self, *codes: str) -> GroupNotice | None:
        return next((n for n in self.notices if n.code in codes), None)

    def owed(self, but: str | None = None) -> list[Event]:
        """The events, and every planned send but `but` for the connection to send."""
        return [*self.events, *(GroupSendOwed(s) for s in self.sends if s.send_id != but)]


class GroupMember(Sender):
    # ------------------------------------------------------------ what the person does

    def groups(self) -> list[GroupRecord]:
        return self.store.group_records()

    def find_group(self, wanted: str) -> GroupRecord:
        """A group this device holds by its id or its (unique) name."""
        found = [
            r
            for r in self.groups()
            if b64u_encode(r.group_id) == wanted or (r.chain is not None and r.chain.name == wanted)
        ]
        if len(found) != 1:
            what = "no group" if not found else f"{len(found)} groups"
            raise GroupRefused(f"This device holds {what} named {wanted!r}.", code="no_such_group")
        return found[0]

    def group_create(self, name: str, members: Sequence[str]) -> tuple[str, list[Event]]:
        """Create a group with `members` (this account is added); returns its id."""
        record = GroupRecord(self.account_id, self.device.device_id, new_group_id(self.rng))
        run = self._change(record, "create", (self.account_id, *members), name)
        return b64u_encode(record.group_id), run.owed()

    def group_change(
        self, group_id: str, change: str, accounts: Sequence[str] = (), name: str = ""
    ) -> list[Event]:
        """add, remove, promote, demote (accounts), leave, rename (name)."""
        return self._change(self._record(group_id), change, tuple(accounts), name).owed()

    def groups_listed(self) -> list[Event]:
        """On connect: the groups the server lists for the account (docs/protocol.md 19.4),
        each log read when its head is past the chain this device holds (a group it holds no
        record of is one it was added to, or one of the account's on a new device)."""
        answer = api.get(self.transport, "/api/groups")
        listed = answer.get("groups") if isinstance(answer, dict) else None
        events: list[Event] = []
        for item in listed if isinstance(listed, list) else []:
            group_id, head = (
                (item.get("group_id"), item.get("head")) if isinstance(item, dict) else (None, None)
            )
            if not isinstance(group_id, str) or not isinstance(head, int):
                continue  # the server's list is a hint: each log is verified when read
            try:
                record = self.store.group_record(group_id)
                if record is None or record.chain is None or record.chain.seq < head:
                    events += self.group_fetch(group_id)
            except ProtocolError as error:  # an id that is not a group id
                events.append(
                    GroupEvent(group_id, "a group", "group_unavailable", {"error": str(error)})
                )
        return events

    def group_fetch(self, group_id: str) -> list[Event]:
        """Read the group's log after a `group_changed` doorbell (of a group this device may
        not hold yet: it was just added) or a (re)connect."""
        record = self._record_or_new(b64u_decode(group_id, length=16, what="group id"))
        return self._run(record, GroupFetchWanted(self.clock())).owed()

    def prepare_group_send(self, group_id: str, text: str) -> tuple[OutgoingGroup, list[Event]]:
        record = self._record(group_id)
        own = self._own_stamp()
        content = new_content(
            ContentType.TEXT, {"text": text}, timestamp=self.clock(), rng=self.rng, **own
        )
        send_id = secrets.token_urlsafe(16)
        run = self._run(
            record,
            GroupSendWanted(
                send_id, encode_content(content), self._lists(record), self.clock(), self.rng(32)
            ),
        )
        outgoing = next((s for s in run.sends if s.send_id == send_id), None)
        if outgoing is None:
            refused = run.refusal("group_send_refused")
            reason = refused.data.get("reason") if refused is not None else "not_planned"
            raise GroupRefused(f"Not sent to the group ({reason}).", code=str(reason))
        return outgoing, run.owed(but=send_id)

    def group_send_answered(
        self, outgoing: OutgoingGroup, frame: Mapping[str, Any]
    ) -> tuple[OutgoingGroup | None, list[Event]]:
        """The server's answer: None when done; after mismatched_devices the same text planned
        again on the members' lists fetched and verified again."""
        record = self._record(outgoing.group_id)
        # only a re-plan needs the lists: every member's, fetched and verified again
        replan = frame.get("code") == "mismatched_devices"
        lists = self._lists(record, refresh=True) if replan else self._lists_of()
        answer = GroupSendAnswered(dict(frame), lists, self.clock(), self.rng(32))
        run = self._run(record, answer)
        again = next((s for s in run.sends if s.send_id == outgoing.send_id), None)
        refused = run.refusal("group_send_refused")
        if refused is not None and refused.data.get("send_id") == outgoing.send_id:
            raise GroupRefused(
                f"Not sent to the group ({refused.data.get('reason')}).",
                code=str(refused.data.get("reason")),
            )
        return again, run.owed(but=outgoing.send_id)

    # ------------------------------------------------------------ what comes in

    def group_envelope(
        self,
        envelope: Mapping[str, Any],
        pairwise: Callable[[Mapping[str, Any]], list[Event]],
    ) -> list[Event]:
        """A deliver entry of a group send: its distribution first (the pairwise part, which
        the device engine hands on as accept_group_key), then the group message."""
        sender, device = str(envelope.get("sender")), str(envelope.get("sender_device"))
        events = pairwise(envelope) if envelope.get("ciphertext") is not None else []
        envelope_id = str(envelope.get("id"))
        try:
            data = b64u_decode(str(envelope.get("group")), what="group message")
            message = decode_group_message(data)
        except ProtocolError as error:
            return [*events, Refused(sender, device, envelope_id, f"not a group message: {error}")]
        if (message.sender, message.device) != (sender, device):
            reason = "a group message naming another sender than the device that sent it"
            return [*events, Refused(sender, device, envelope_id, reason)]
        record = self._record_or_new(message.group_id)
        event = GroupMessageReceived(data, self._lists_of(sender), self.clock())
        return events + self._run(record, event).owed()

    def group_key_received(
        self, sender: str, sender_device: str, body: Mapping[str, Any]
    ) -> list[Event]:
        """A distribution the device engine accepted (accept_group_key): a group this device
        holds no record of yet is an invitation the machine checks against the log."""
        try:
            group_id = b64u_decode(str(body.get("group_id")), length=16, what="group id")
        except ProtocolError as error:
            return [Refused(sender, sender_device, "", f"a group key naming no group: {error}")]
        record = self._record_or_new(group_id)
        lists = self._lists_of(sender)
        return self._run(
            record, GroupKeyReceived(sender, sender_device, dict(body), lists, self.clock())
        ).owed()

    def group_receipt_received(
        self, sender: str, sender_device: str, body: Mapping[str, Any]
    ) -> list[Event]:
        """A receipt naming a group (accept_group_receipt): its machine checks the member."""
        record = self.store.group_record(str(body.get("group_id")))
        if record is None:
            return []
        lists = self._lists_of(sender)
        event = ReceiptArrived(sender, sender_device, dict(body), lists, self.clock())
        return self._run(record, event).owed()

    def group_read(self, group_id: str, sender: str, message_ids: Sequence[bytes]) -> list[Event]:
        """The person saw these texts of `sender`'s: read receipts, when the setting is on."""
        ids = tuple(b64u_encode(m) for m in message_ids)
        event = GroupMessagesRead(sender, ids, self.engine.facts().read_receipts, self.clock())
        return self._run(self._record(group_id), event).owed()

    def _receipt_owed(self, record: GroupRecord, effect: SendContent) -> list[Event]:
        try:
            outgoing = self._prepare_new(effect.recipient, ContentType.RECEIPT, dict(effect.body))
        except (SendRefused, ProtocolError, ApiError) as error:
            data = {"sender": effect.recipient, "error": str(error)}
            group = b64u_encode(record.group_id)
            return [GroupEvent(group, _name(record), "group_receipt_not_sent", data)]
        return [SendOwed(outgoing)]

    # ------------------------------------------------------------ the machine

    def _change(
        self, record: GroupRecord, change: str, accounts: tuple[str, ...], name: str
    ) -> GroupRun:
        change_id = secrets.token_urlsafe(12)
        event = GroupChangeWanted(
            change_id,
            change,
            accounts,
            name,
            self.device.keys.identity.public,
            self._lists_of(),
            self.clock(),
        )
        run = self._run(record, event)
        refused = run.refusal("group_change_refused")
        if refused is not None and refused.data.get("change_id") == change_id:
            reason = refused.data.get("reason")
            raise GroupRefused(f"The group was not changed ({reason}).", code=str(reason))
        return run

    def _run(self, record: GroupRecord, event: MachineEvent) -> GroupRun:
        """One event and every effect it leads to, the record stored after each step."""
        out = GroupRun()
        record, effects = handle_group(record, event)
        queue = deque(effects)
        asked: set[str] = set()
        while queue:
            effect = queue.popleft()
            follow: MachineEvent | None = None
            if isinstance(effect, HttpRequest):
                status, body = (
                    self.transport.get(effect.path)
                    if effect.method == "GET"
                    else self.transport.post(effect.path, dict(effect.body or {}))
                )
                follow = GroupAnswered(
                    effect.request_id, status, body, self._lists_of(), self.clock()
                )
            elif isinstance(effect, GroupSign):
                if not effect.data.startswith(_ENTRY_PREFIX):  # signs group entries only
                    raise GroupRefused("Asked to sign what is no group entry.", code="not_entry")
                signature = self.device.keys.identity.sign(effect.data)
                follow = GroupSigned(effect.change_id, signature, self._lists_of(), self.clock())
            elif isinstance(effect, GroupListsWanted):
                wanted = set(effect.accounts)
                if not wanted <= asked:  # a list that cannot be had is asked for once a run
                    asked |= wanted
                    lists = self._lists_of(*effect.accounts)
                    follow = GroupListsKnown(lists, self.clock(), self.rng(32))
            elif isinstance(effect, GroupSend):
                out.sends.append(self._outgoing(record, effect))
            elif isinstance(effect, GroupContent):
                out.events += self._group_content(record, effect)
            elif isinstance(effect, SendContent):  # a receipt to a member (25.10)
                out.events += self._receipt_owed(record, effect)
            elif isinstance(effect, GroupReceipt):
                ids = tuple(b64u_decode(m, length=16) for m in effect.message_ids)
                group = b64u_encode(record.group_id)
                out.events.append(
                    GroupReceiptReceived(group, _name(record), effect.sender, effect.receipt, ids)
                )
            elif isinstance(effect, GroupNotice):
                out.notices.append(effect)
                out.events.append(
                    GroupEvent(
                        b64u_encode(record.group_id), _name(record), effect.code, dict(effect.data)
                    )
                )
            if follow is not None:
                record, more = handle_group(record, follow)
                queue.extend(more)
        self.store.save_group_record(record)
        return out

    def _record(self, group_id: str) -> GroupRecord:
        record = self.store.group_record(group_id)
        if record is None:
            raise GroupRefused(f"This device holds no group {group_id}.", code="no_such_group")
        return record

    def _record_or_new(self, group_id: bytes) -> GroupRecord:
        found = self.store.group_record(b64u_encode(group_id))
        return found or GroupRecord(self.account_id, self.device.device_id, group_id)

    def _lists(self, record: GroupRecord, *, refresh: bool = False) -> Lists:
        """The lists of every member, for a send (its targets)."""
        members = record.chain.members if record.chain is not None else frozenset()
        return self._lists_of(*members, refresh=refresh)

    def _lists_of(self, *accounts: str, refresh: bool = False) -> Lists:
        """The active devices of the verified lists of `accounts` and of this account: only
        what the event needs (a message, its sender's; a page, the machine asks for its
        signers'), so a large group costs no fetch of every member's list per message. A list
        that cannot be verified is left out (the machine waits for it)."""
        lists: Lists = {}
        for account in sorted({*accounts, self.account_id}):
            try:
                accepted = self.current_list(account, refresh=refresh)
            except (ProtocolError, api.ApiError, api.ServerUnreachable, SendRefused):
                continue
            out = self.suspended.get(account, frozenset())
            lists[account] = {
                d.device_id: d.identity_key
                for d in accepted.device_list.devices
                if d.device_id not in out
            }
        return lists

    def _own_stamp(self) -> dict[str, Any]:
        own = self.current_list(self.account_id)
        return {"sender_list_version": own.version, "sender_list_hash": own.hash}

    def _outgoing(self, record: GroupRecord, effect: GroupSend) -> OutgoingGroup:
        """The frame of a planned group send: each distribution as a type-11 content over the
        pairwise session with its one device (a new one from its bundle when there is none)."""
        keys: dict[str, bytes] = {}
        if effect.distributions:
            stamp = self._own_stamp()
            lacking: dict[str, list[str]] = {}
            for account, device_id, _ in effect.distributions:
                if self.store.session(device_id) is None:
                    lacking.setdefault(account, []).append(device_id)
            bundles: dict[str, dict[str, PrekeyBundle]] = {}
            for account, device_ids in lacking.items():
                bundles |= self._bundles_for({account}, device_ids=device_ids)
            # one content for every device (the body names no recipient), as a fan-out
            content = new_content(
                ContentType.GROUP_SENDER_KEY,
                dict(effect.distributions[0][2]),
                timestamp=self.clock(),
                rng=self.rng,
                **stamp,
            )
            encoded = encode_content(content)
            with self.store.transaction():
                for account, device_id, _ in effect.distributions:
                    entry = self._listed(account, device_id)
                    session = self._session_for(account, entry, bundles)
                    keys[device_id] = session.encrypt(encoded, self.rng)
                    self.store.save_session(
                        account_id=account, device_id=device_id, session=session
                    )
                # kept to send again to a device that could not decrypt it (24.3): its
                # messages from this device wait for the key
                self.store.cache_sent(
                    envelope_id=effect.send_id,
                    recipient=f"group:{b64u_encode(record.group_id)}",
                    sent_at=self.clock(),
                    targets={d: b64u_encode(encoded) for d in keys},
                )
        return OutgoingGroup(
            b64u_encode(record.group_id),
            effect.send_id,
            effect.message,
            tuple(device for _, device in effect.targets),
            keys,
        )

    def _group_content(self, record: GroupRecord, effect: GroupContent) -> list[Event]:
        try:
            content = decode_content(effect.plaintext)
        except ProtocolError as error:
            return [Refused(effect.sender, effect.sender_device, "", f"group content: {error}")]
        about = (
            b64u_encode(record.group_id),
            _name(record),
            effect.sender,
            effect.sender_device,
            content.message_id,
            content.timestamp,
        )
        if content.type is ContentType.ATTACHMENT:
            return [GroupFile(*about, AttachmentPointer.from_body(content.body))]
        if content.type is ContentType.TEXT:
            return [GroupText(*about, content.body["text"])]
        return []  # texts and files in groups, in this version


def _name(record: GroupRecord) -> str:
    return record.chain.name if record.chain is not None else "a group"
