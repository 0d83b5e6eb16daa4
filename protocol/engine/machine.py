"""The device engine: `handle(state, event) -> (state, effects)` (docs/protocol.md section 22).

Pure: no sockets, HTTP, storage or clock. An adapter (client/, static/js/app/) builds the
state from its store, performs the effects and feeds every answer back as an event.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from protocol.content import ContentType
from protocol.encoding import b64u_encode
from protocol.engine.effects import ContentVerdict, Effect, HttpRequest, Notice, StoreList
from protocol.engine.events import (
    ContentReceived,
    Event,
    FrameReceived,
    HttpAnswered,
    ListWanted,
    SenderSeen,
    SendWanted,
)
from protocol.engine.lists import accept_list, device_list_path, list_changes, parse_listing
from protocol.engine.receiving import RECEIVING, receive
from protocol.engine.retry import RETRYING, retry
from protocol.engine.sending import lists_settled, send_answered, send_wanted
from protocol.engine.state import LIST_MAX_AGE_MS, DeviceState, ListRecord, PendingFetch
from protocol.exceptions import AccountKeyChanged, ProtocolError

Result = tuple[DeviceState, list[Effect]]

# Contents only this account's own devices may send (section 10).
OWN_DEVICES_ONLY = frozenset(
    {
        ContentType.SENT_TRANSCRIPT,
        ContentType.DEVICE_LIST_NOTICE,
        ContentType.HISTORY_BUNDLE_KEY,
        ContentType.ACCOUNT_SYNC_KEY,
        ContentType.ACCOUNT_SYNC_CHECKPOINT,
    }
)


def handle(state: DeviceState, event: Event) -> Result:
    if isinstance(event, RECEIVING):
        return receive(state, event)
    if isinstance(event, RETRYING):
        return retry(state, event)
    if isinstance(event, ListWanted):
        return _list_wanted(state, event)
    if isinstance(event, SenderSeen):
        record = state.lists.get(event.sender)
        if record is not None and record.device_list.entry(event.sender_device) is not None:
            return state, []
        return _fetch(state, event.sender, "unknown_device")
    if isinstance(event, ContentReceived):
        return _content_received(state, event)
    if isinstance(event, HttpAnswered):
        return lists_settled(_http_answered(state, event))
    if isinstance(event, SendWanted):
        return send_wanted(state, event, _list_wanted)
    if isinstance(event, FrameReceived):
        if event.frame.get("type") == "devices_changed":
            return _fetch(state, state.account_id, "devices_changed")
        return send_answered(state, event, _list_wanted)
    raise TypeError(f"not an engine event: {event!r}")


def _list_wanted(state: DeviceState, event: ListWanted) -> Result:
    """A cached list is used as is for LIST_MAX_AGE_MS after the server last served it."""
    record = state.lists.get(event.account_id)
    if event.refresh:
        reason = "refresh"
    elif record is None:
        reason = "missing"
    elif event.now - record.checked_at > LIST_MAX_AGE_MS:
        reason = "stale"
    else:
        return state, []
    return _fetch(state, event.account_id, reason)


def _fetch(state: DeviceState, account_id: str, reason: str, claimed: int | None = None) -> Result:
    """One request per account in flight: a second reason joins the first (the highest
    claimed version is kept)."""
    for request_id, pending in state.pending.items():
        if pending.account_id == account_id:
            if claimed is not None and (pending.claimed or 0) < claimed:
                merged = {**state.pending, request_id: replace(pending, claimed=claimed)}
                return replace(state, pending=merged), []
            return state, []
    request_id = f"r{state.next_request}"
    state = replace(
        state,
        pending={**state.pending, request_id: PendingFetch(account_id, reason, claimed)},
        next_request=state.next_request + 1,
    )
    return state, [HttpRequest(request_id, "GET", device_list_path(account_id))]


def _content_received(state: DeviceState, event: ContentReceived) -> Result:
    """Which contents only own devices may send, and the freeze check of section 10.1.

    A device-list notice from a contact is refused like any own-devices content and makes
    no fetch: only its signed stamp is checked, as every content's is (section 22.4).
    """
    effects: list[Effect] = []
    own = state.lists.get(state.account_id)
    from_own_device = (
        event.sender == state.account_id
        and own is not None
        and own.device_list.entry(event.sender_device) is not None
    )
    refuse = event.content_type in OWN_DEVICES_ONLY and not from_own_device
    effects.append(
        ContentVerdict(
            event.sender,
            event.sender_device,
            "refuse" if refuse else "accept",
            "own_devices_only" if refuse else None,
        )
    )
    record = state.lists.get(event.sender)
    claimed = event.sender_list_version
    if record is not None and claimed == record.version:
        if event.sender_list_hash != record.hash:
            effects.append(Notice(event.sender, "list_forked", {"version": claimed}))
    elif record is not None and claimed > record.version:
        state, more = _fetch(state, event.sender, "freeze", claimed)
        effects += more
    if event.content_type == ContentType.DEVICE_LIST_NOTICE and not refuse:
        state, more = _fetch(state, state.account_id, "notice")
        effects += more
    return state, effects


def _http_answered(state: DeviceState, event: HttpAnswered) -> Result:
    pending = state.pending.get(event.request_id)
    if pending is None:
        return state, []  # an answer to nothing this engine asked: ignored
    state = replace(
        state, pending={i: p for i, p in state.pending.items() if i != event.request_id}
    )
    account_id = pending.account_id
    why: dict[str, Any] = {"reason": pending.reason}
    if event.status != 200:
        error = event.body.get("error") if isinstance(event.body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        data = {**why, "status": event.status, "code": code or f"http_{event.status}"}
        return state, [Notice(account_id, "list_unavailable", data)]
    record = state.lists.get(account_id)
    own = account_id == state.account_id
    try:
        device_list, suspended = parse_listing(account_id, event.body)
        accepted = accept_list(
            record,
            device_list,
            expected_account_key=_expected_key(state, account_id, record),
            suspended=suspended,
            now=event.now,
        )
    except AccountKeyChanged as error:
        if own:
            return state, [_refused(account_id, why, error)]
        served = {**why, "account_key": b64u_encode(device_list.account_key)}
        return state, [Notice(account_id, "security_code_changed", served, str(error))]
    except ProtocolError as error:
        return state, [_refused(account_id, why, error)]
    state = replace(state, lists={**state.lists, account_id: accepted})
    effects: list[Effect] = [StoreList(account_id, accepted)]
    if record is not None and record.hash != accepted.hash:
        effects.append(
            Notice(
                account_id,
                "devices_changed",
                {**why, **list_changes(record.device_list, device_list)},
            )
        )
    if pending.claimed is not None and accepted.version < pending.claimed:
        withheld = {**why, "claimed": pending.claimed, "served": accepted.version}
        effects.append(Notice(account_id, "list_withheld", withheld))
    return state, effects


def _expected_key(state: DeviceState, account_id: str, record: ListRecord | None) -> bytes | None:
    """The own account key; for a contact's first list, the key its contact record holds
    (another own device verified it); after that, the key pinned in the record."""
    if account_id == state.account_id:
        return state.account_key
    return state.contact_keys.get(account_id) if record is None else None


def _refused(account_id: str, why: dict[str, Any], error: ProtocolError) -> Notice:
    return Notice(account_id, "list_refused", {**why, "error": type(error).__name__}, str(error))
