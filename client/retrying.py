"""Retry requests and resends in this client (docs/protocol.md section 24): the engine's
effects performed. An envelope that did not decrypt is kept as a retry record and asked for
again from its sending device, on the engine's schedule; another device's ask is answered
from the resend cache. The rules are the engine's (protocol/engine/retry.py); this module
only stores, encrypts and hands sends to the connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from client import api
from client.events import Event, MessageWaiting, Refused, SendOwed, retry_event
from client.sending import Sender, SendRefused
from protocol.engine import (
    DecryptFailed,
    Effect,
    Resend,
    RetryAgain,
    RetryDue,
    RetryRecord,
    RetryRequested,
    SendRetryRequest,
    StoreResendCount,
    StoreRetry,
)
from protocol.exceptions import ProtocolError

SEND_ERRORS = (SendRefused, ProtocolError, api.ApiError, api.ServerUnreachable)


class Retrier(Sender):
    def undecrypted(
        self,
        *,
        sender: str,
        sender_device: str,
        envelope_id: str,
        sent_at: int,
        error: ProtocolError,
    ) -> list[Event]:
        """An envelope from a listed device did not decrypt: the engine's `decrypt_failed`
        (kept as a record, the device asked to send it again)."""
        event = DecryptFailed(sender, sender_device, envelope_id, sent_at, error.code, self.clock())
        with self.store.transaction():  # the record with the session its ask started
            return self.retry_effects(self.engine.run(event, sender))

    def retry_due(self) -> list[Event]:
        """The timer (every few seconds while the socket is open): the waiting envelopes
        whose wait is over are asked for again, or given up."""
        records = self.store.retries()
        if not any(r.state == "waiting" for r in records.values()):
            return []
        with self.store.transaction():
            return self.retry_effects(
                self.engine.run(RetryDue(self.clock()), *{r.sender for r in records.values()})
            )

    def ask_again(self, sender: str) -> list[Event]:
        """The person asks again for every message of `sender` that could not be decrypted."""
        events: list[Event] = []
        for record in self.store.retries().values():
            if record.sender == sender and record.state == "failed":
                event = RetryAgain(record.sender_device, record.envelope_id, self.clock())
                with self.store.transaction():
                    events += self.retry_effects(self.engine.run(event, sender))
        return events

    def undecryptable(self, sender: str | None = None) -> list[RetryRecord]:
        """The retry records held (of `sender`, or all), oldest message first."""
        records = self.store.retries().values()
        return sorted(
            (r for r in records if sender is None or r.sender == sender),
            key=lambda r: (r.sent_at, r.key),
        )

    def retry_requested(
        self, sender: str, sender_device: str, body: Mapping[str, Any]
    ) -> list[Event]:
        """Another device asks for an envelope again: the engine decides from what the
        resend cache holds for it (24.3)."""
        cached = self.store.cached_send(str(body["envelope_id"]))
        event = RetryRequested(
            sender,
            sender_device,
            body,
            None if cached is None else cached.to_dict(),
            self.clock(),
        )
        return self.retry_effects(self.engine.run(event, sender))

    def retry_effects(self, effects: list[Effect]) -> list[Event]:
        """Perform the engine's retry effects: records stored and shown, asks and resends
        encrypted (their sessions saved and the sends cached in the caller's transaction)
        and handed to the connection as SendOwed."""
        events: list[Event] = []
        for effect in effects:
            if isinstance(effect, StoreRetry):
                events.append(self._store_retry(effect.record))
            elif isinstance(effect, SendRetryRequest):
                events += self._ask(effect)
            elif isinstance(effect, StoreResendCount):
                self.store.count_resend(effect.envelope_id, effect.device, effect.count)
            elif isinstance(effect, Resend):
                events += self._resend(effect)
        return events

    def _store_retry(self, record: RetryRecord) -> Event:
        self.store.save_retry(record)
        if record.state == "failed":
            return retry_event(record)
        return MessageWaiting(
            record.sender, record.sender_device, record.envelope_id, record.sent_at, record.count
        )

    def _ask(self, effect: SendRetryRequest) -> list[Event]:
        try:
            outgoing = self.prepare_retry_request(
                effect.recipient, effect.device, effect.envelope_id, effect.count
            )
        except SEND_ERRORS as error:  # the record waits; the next ask is the engine's
            return [
                Refused(
                    effect.recipient,
                    effect.device,
                    effect.envelope_id,
                    f"could not ask for the message again: {error}",
                    error,
                )
            ]
        return [SendOwed(outgoing)]

    def _resend(self, effect: Resend) -> list[Event]:
        original = self.store.cached_send(effect.envelope_id)
        try:
            outgoing = self.prepare_resend(
                effect.recipient,
                effect.device,
                effect.envelope_id,
                effect.content,
                new_session=effect.new_session,
                signed_prekey=effect.signed_prekey,
                original=original,
                kem_prekey=effect.kem_prekey,
            )
        except SEND_ERRORS as error:  # e.g. InvalidSignature: the request's prekey is forged
            return [
                Refused(
                    effect.recipient,
                    effect.device,
                    effect.envelope_id,
                    f"a request to send a message again was dropped: {error}",
                    error,
                )
            ]
        return [SendOwed(outgoing)]
