"""Retry requests and resends (docs/protocol.md section 24): what a device does with an
envelope it could not decrypt, with the answers to its asks, and with another device's
ask; registered in `engine.handle` and, for the two contents, in `receiving`."""

from __future__ import annotations

from dataclasses import replace

from protocol.content import ContentType, decode_content
from protocol.encoding import b64u_decode
from protocol.engine.effects import (
    AcceptResend,
    ContentVerdict,
    Effect,
    ForgetRetry,
    Resend,
    SendRetryRequest,
    StoreResendCount,
    StoreRetry,
)
from protocol.engine.events import (
    ContentDecrypted,
    DecryptFailed,
    RetryAgain,
    RetryDue,
    RetryRequested,
)
from protocol.engine.state import DeviceState, RetryRecord, is_blocked, retry_key
from protocol.exceptions import ProtocolError

Result = tuple[DeviceState, list[Effect]]

MAX_RETRIES = 5  # asks per envelope, and resends of one envelope to one device
RETRY_AFTER_MS = 10_000  # the wait after the first ask; it doubles after each
MAX_WAITING = 100  # waiting records per sender device; more fail at once, unasked
RESEND_CACHE_SIZE = 256  # envelopes a device keeps to send again (the newest)
RESEND_CACHE_MS = 24 * 60 * 60 * 1000  # and none older than this

RETRYING = (DecryptFailed, RetryDue, RetryAgain, RetryRequested)


def retry_wait(count: int) -> int:
    """How long after its `count`th ask an envelope is asked for again (or given up)."""
    return RETRY_AFTER_MS * (1 << max(count - 1, 0))


def retry(
    state: DeviceState, event: DecryptFailed | RetryDue | RetryAgain | RetryRequested
) -> Result:
    if isinstance(event, DecryptFailed):
        return decrypt_failed(state, event)
    if isinstance(event, RetryDue):
        return retry_due(state, event)
    if isinstance(event, RetryAgain):
        return retry_again(state, event)
    return retry_requested(state, event)


def decrypt_failed(state: DeviceState, event: DecryptFailed) -> Result:
    """The first ask, unless the envelope is asked for already (a redelivery), its sender
    is blocked, or that device has MAX_WAITING envelopes waiting (then: failed, unasked)."""
    key = retry_key(event.sender_device, event.envelope_id)
    if is_blocked(state, event.sender) or key in state.retries:
        return state, []
    waiting = sum(
        1
        for r in state.retries.values()
        if r.sender_device == event.sender_device and r.state == "waiting"
    )
    record = RetryRecord(
        event.sender,
        event.sender_device,
        event.envelope_id,
        event.sent_at,
        count=0 if waiting >= MAX_WAITING else 1,
        asked_at=event.now,
        state="failed" if waiting >= MAX_WAITING else "waiting",
    )
    state = _keep(state, record)
    if record.state == "failed":
        return state, [StoreRetry(record)]
    return state, [StoreRetry(record), _ask(record)]


def retry_due(state: DeviceState, event: RetryDue) -> Result:
    """Each waiting envelope whose wait is over is asked for again, or, after the last
    ask's wait, given up."""
    effects: list[Effect] = []
    for key in sorted(state.retries):
        record = state.retries[key]
        if record.state != "waiting" or event.now - record.asked_at < retry_wait(record.count):
            continue
        if record.count < MAX_RETRIES:
            record = replace(record, count=record.count + 1, asked_at=event.now)
            state = _keep(state, record)
            effects += [StoreRetry(record), _ask(record)]
        else:
            record = replace(record, state="failed")
            state = _keep(state, record)
            effects.append(StoreRetry(record))
    return state, effects


def retry_again(state: DeviceState, event: RetryAgain) -> Result:
    """The person asks again for an envelope given up: the asks start over."""
    record = state.retries.get(retry_key(event.sender_device, event.envelope_id))
    if record is None or record.state != "failed":
        return state, []
    record = replace(record, count=1, asked_at=event.now, state="waiting")
    return _keep(state, record), [StoreRetry(record), _ask(record)]


def retry_requested(state: DeviceState, event: RetryRequested) -> Result:
    """Another device's ask, with what the resend cache holds for it: the content that
    device was sent, at most MAX_RETRIES times, from the second ask on in a new session;
    otherwise a resend saying the message is no longer held."""
    body, cached, device = event.body, event.cached, event.sender_device
    envelope_id = body["envelope_id"]
    resends = dict(cached["resends"]) if cached is not None else {}
    new_session = body["count"] >= 2  # the session may be what broke: even a null needs one
    prekey = body["signed_prekey"] if new_session else None
    kem = body.get("kem_prekey") if new_session else None
    if (
        cached is None
        or event.now - cached["sent_at"] > RESEND_CACHE_MS
        or device not in cached["targets"]
        or resends.get(device, 0) >= MAX_RETRIES
    ):
        return state, [Resend(event.sender, device, envelope_id, None, new_session, prekey, kem)]
    return state, [
        StoreResendCount(envelope_id, device, resends.get(device, 0) + 1),
        Resend(
            event.sender,
            device,
            envelope_id,
            cached["targets"][device],
            new_session,
            prekey,
            kem,
        ),
    ]


def resend_received(state: DeviceState, event: ContentDecrypted) -> Result:
    """A resend (content type 10) answers an ask of this device, or is refused: its inner
    content to apply, or the sender's word that it holds the message no more."""
    envelope_id = event.body["envelope_id"]
    key = retry_key(event.sender_device, envelope_id)
    record = state.retries.get(key)
    if record is None:
        return state, [_refuse(event, "not_asked")]
    content = event.body["content"]
    if content is None:
        if record.state == "failed":
            return state, []
        record = replace(record, state="failed")
        return _keep(state, record), [StoreRetry(record)]
    try:
        inner = decode_content(b64u_decode(content, what="resend content"))
    except ProtocolError:
        return state, [_refuse(event, "malformed_resend")]
    # a resend inside a resend is refused; an ask inside one is that device's lost ask, asked for
    if inner.type == ContentType.RESEND:
        return state, [_refuse(event, "malformed_resend")]
    state = replace(state, retries={k: r for k, r in state.retries.items() if k != key})
    return state, [
        ForgetRetry(event.sender_device, envelope_id),
        AcceptResend(event.sender, event.sender_device, envelope_id, content),
    ]


def _ask(record: RetryRecord) -> SendRetryRequest:
    return SendRetryRequest(record.sender, record.sender_device, record.envelope_id, record.count)


def _keep(state: DeviceState, record: RetryRecord) -> DeviceState:
    return replace(state, retries={**state.retries, record.key: record})


def _refuse(event: ContentDecrypted, reason: str) -> ContentVerdict:
    return ContentVerdict(event.sender, event.sender_device, "refuse", reason)
