"""Sending (docs/protocol.md sections 9 and 20): a content as one `send` frame with a
ciphertext for every device of the recipient's verified list and a sent transcript for every
other own device, and the retry after `mismatched_devices`. Every prekey bundle is checked
against the key in the signed list."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from client import api
from client.device import Device
from client.store import AcceptedList
from protocol import engine
from protocol.content import Content, ContentType, encode_content, new_content
from protocol.devicelist import DeviceEntry, DeviceList
from protocol.encoding import b64u_encode
from protocol.engine import (
    MAX_MISMATCH_RETRIES,
    FrameReceived,
    Notice,
    PendingSend,
    SendPlan,
    SendWanted,
)
from protocol.exceptions import UntrustedIdentity
from protocol.fanout import encrypt_for_devices
from protocol.keys import PrekeyBundle
from protocol.ratchet import Session


class SendRefused(Exception):
    """This client will not send (or the server kept refusing); `message` says why."""

    def __init__(self, message: str, *, code: str, cause: BaseException | None = None):
        super().__init__(message)
        self.code = code
        self.cause = cause


@dataclass(frozen=True)
class OutgoingMessage:
    """One `send` frame and what went into it; `retry` rebuilds it after mismatched_devices."""

    envelope_id: str
    recipient: str
    content_type: ContentType
    body: dict[str, Any]
    message_id: bytes
    timestamp: int
    recipient_devices: tuple[str, ...]
    own_devices: tuple[str, ...]
    targets: dict[str, bytes] = field(repr=False)
    attempt: int = 1

    @property
    def frame(self) -> dict[str, Any]:
        return {
            "type": "send",
            "v": 1,
            "id": self.envelope_id,
            "recipient": self.recipient,
            "targets": {d: b64u_encode(c) for d, c in self.targets.items()},
        }


class Sender(Device):
    def prepare_send(self, recipient: str, text: str) -> OutgoingMessage:
        """The `send` frame for a text: one ciphertext per device of the recipient, and a
        sent transcript for every other device of this account (section 9)."""
        return self._prepare_new(recipient, ContentType.TEXT, {"text": text})

    def prepare_receipt(
        self, recipient: str, message_ids: list[bytes], *, kind: str = "delivered"
    ) -> OutgoingMessage:
        body = {"kind": kind, "message_ids": [b64u_encode(m) for m in message_ids]}
        return self._prepare_new(recipient, ContentType.RECEIPT, body)

    def prepare_own(
        self, content_type: ContentType, body: dict[str, Any]
    ) -> OutgoingMessage | None:
        """The `send` frame of a content for this account's other devices only (the account
        sync key, type 7); None when the verified own list holds no other device."""
        wanted = SendWanted(secrets.token_urlsafe(16), self.account_id, self.clock())
        plan = self._plan(wanted, self.account_id, {})
        if not plan.devices:
            return None
        return self._prepare(
            plan,
            content_type=content_type,
            body=body,
            message_id=self.rng(16),
            timestamp=self.clock(),
        )

    def retry(self, outgoing: OutgoingMessage, data: Mapping[str, Any]) -> OutgoingMessage:
        """After `mismatched_devices`: the engine refetches and verifies both lists and plans
        again (the same content and envelope id), or refuses past MAX_MISMATCH_RETRIES."""
        frame = {
            "type": "error",
            "code": "mismatched_devices",
            "ref": outgoing.envelope_id,
            "data": dict(data),
        }
        sends = {outgoing.envelope_id: PendingSend(outgoing.recipient, outgoing.attempt)}
        plan = self._plan(FrameReceived(frame, self.clock()), outgoing.recipient, sends)
        return self._prepare(
            plan,
            content_type=outgoing.content_type,
            body=outgoing.body,
            message_id=outgoing.message_id,
            timestamp=outgoing.timestamp,
        )

    def _prepare_new(
        self, recipient: str, content_type: ContentType, body: dict[str, Any]
    ) -> OutgoingMessage:
        if recipient == self.account_id:
            raise SendRefused(
                "Your own devices get what you send as sent transcripts; pick a contact.",
                code="own_account",
            )
        wanted = SendWanted(secrets.token_urlsafe(16), recipient, self.clock())
        return self._prepare(
            self._plan(wanted, recipient, {}),
            content_type=content_type,
            body=body,
            message_id=self.rng(16),
            timestamp=self.clock(),
        )

    def _plan(
        self, event: engine.Event, recipient: str, sends: Mapping[str, PendingSend]
    ) -> SendPlan:
        """The engine's plan of a send (docs/protocol.md section 22.4); a list it could not
        verify raises that list's error, any other refusal SendRefused."""
        effects = self.engine.run(event, recipient, sends=sends)
        self.engine.raise_for(self.account_id, effects)
        self.engine.raise_for(recipient, effects)
        for effect in effects:
            if isinstance(effect, SendPlan):
                return effect
            if isinstance(effect, Notice) and effect.code == "send_refused":
                raise _refusal(effect)
        raise SendRefused(f"No plan to send to {recipient}.", code="not_planned")

    def _prepare(
        self,
        plan: SendPlan,
        *,
        content_type: ContentType,
        body: dict[str, Any],
        message_id: bytes,
        timestamp: int,
    ) -> OutgoingMessage:
        """Encrypt the content for each planned device and a sent transcript for each other
        own device, over sessions checked against the keys in the verified lists."""
        recipient = plan.recipient
        own = self._accepted(self.account_id)
        theirs = self._accepted(recipient)
        recipient_entries = [_entry(theirs.device_list, d) for d in plan.devices]
        own_entries = [_entry(own.device_list, d) for d in plan.transcripts]
        targets = [(recipient, e) for e in recipient_entries] + [
            (self.account_id, e) for e in own_entries
        ]
        bundles = self._bundles_for(
            {a for a, e in targets if self.store.session(e.device_id) is None}
        )
        content = Content(
            type=content_type,
            message_id=message_id,
            timestamp=timestamp,
            sender_list_version=own.version,
            sender_list_hash=own.hash,
            body=body,
        )
        encoded = encode_content(content)
        transcript = (  # none for a content to the own devices alone
            new_content(
                ContentType.SENT_TRANSCRIPT,
                {"recipient": recipient, "content": b64u_encode(encoded)},
                timestamp=timestamp,
                rng=self.rng,
                sender_list_version=own.version,
                sender_list_hash=own.hash,
            )
            if own_entries
            else None
        )
        with self.store.transaction():
            sessions: dict[str, Session] = {}
            accounts: dict[str, str] = {}
            for account, entry in targets:
                sessions[entry.device_id] = self._session_for(account, entry, bundles)
                accounts[entry.device_id] = account
            ciphertexts = encrypt_for_devices(
                encoded, {e.device_id: sessions[e.device_id] for e in recipient_entries}, self.rng
            )
            if transcript is not None:
                ciphertexts |= encrypt_for_devices(
                    encode_content(transcript),
                    {e.device_id: sessions[e.device_id] for e in own_entries},
                    self.rng,
                )
            for device_id, session in sessions.items():
                self.store.save_session(
                    account_id=accounts[device_id], device_id=device_id, session=session
                )
        return OutgoingMessage(
            envelope_id=plan.envelope_id,
            recipient=recipient,
            content_type=content_type,
            body=body,
            message_id=message_id,
            timestamp=timestamp,
            recipient_devices=tuple(e.device_id for e in recipient_entries),
            own_devices=tuple(e.device_id for e in own_entries),
            targets=ciphertexts,
            attempt=plan.attempt,
        )

    def _accepted(self, account_id: str) -> AcceptedList:
        accepted = self.store.device_list(account_id)
        assert accepted is not None  # the engine planned from it
        return accepted

    def _bundles_for(self, accounts: set[str]) -> dict[str, dict[str, PrekeyBundle]]:
        found: dict[str, dict[str, PrekeyBundle]] = {}
        for account in sorted(accounts):
            answer = api.post(self.transport, f"/api/accounts/{account}/bundles", {})
            bundles = answer.get("bundles") if isinstance(answer, dict) else None
            if not isinstance(bundles, list):
                raise SendRefused(
                    f"The key directory answered no bundle list for {account}.", code="bad_bundles"
                )
            found[account] = {}
            for item in bundles:
                bundle = PrekeyBundle.from_dict(item)
                found[account][bundle.device_id] = bundle
        return found

    def _session_for(
        self, account: str, entry: DeviceEntry, bundles: dict[str, dict[str, PrekeyBundle]]
    ) -> Session:
        session = self.store.session(entry.device_id)
        if session is not None:
            if session.remote_identity_key != entry.identity_key:
                raise UntrustedIdentity(
                    f"session with device {entry.device_id!r}: identity key differs from the signed list"
                )
            return session
        bundle = bundles.get(account, {}).get(entry.device_id)
        if bundle is None:
            raise SendRefused(
                f"The key directory has no prekey bundle for {account}'s device {entry.device_id}.",
                code="no_bundle",
            )
        # verified against the key in the signed list, never the one beside the bundle
        return Session.initiate(
            identity=self.device.keys.identity,
            bundle=bundle,
            listed_identity_key=entry.identity_key,
            rng=self.rng,
        )


def _entry(device_list: DeviceList, device_id: str) -> DeviceEntry:
    entry = device_list.entry(device_id)
    assert entry is not None  # the engine plans from this list only
    return entry


def _refusal(notice: Notice) -> SendRefused:
    """The SendRefused a `send_refused` notice stands for."""
    data = notice.data
    if data.get("reason") == "mismatched_devices":
        return SendRefused(
            f"The server kept refusing the devices of {notice.account_id} after "
            f"{MAX_MISMATCH_RETRIES} retries with freshly verified device lists "
            f"(missing {data.get('missing')}, extra {data.get('extra')}, stale {data.get('stale')}).",
            code="mismatched_devices",
        )
    if data.get("reason") == "blocked":
        return SendRefused(
            f"You blocked {notice.account_id}: nothing is sent to them. Unblock them on one of "
            "your devices first.",
            code="blocked",
        )
    if data.get("reason") == "device_removed":
        return SendRefused(
            "This device is no longer in your account's signed device list.",
            code="device_removed",
        )
    return SendRefused(
        f"No verified device list to send to {notice.account_id} ({data.get('reason')}).",
        code=str(data.get("reason")),
    )
