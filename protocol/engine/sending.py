"""Planning a send and the retry after `mismatched_devices` (docs/protocol.md sections 9, 20
and 22.4): which devices get the content and which a sent transcript, read from verified
lists only. The engine plans; the adapter encrypts for the planned devices and sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from protocol.engine.effects import Effect, Notice, SendPlan
from protocol.engine.events import FrameReceived, ListWanted, SendWanted
from protocol.engine.state import DeviceState, ListRecord, PendingSend, is_blocked

MAX_MISMATCH_RETRIES = 3  # re-plans after mismatched_devices (section 20)
# list notices that leave a send without a verified list to plan from (section 22.3)
LIST_REFUSALS = frozenset({"list_refused", "security_code_changed", "list_unavailable"})

Result = tuple[DeviceState, list[Effect]]
ListWanter = Callable[[DeviceState, ListWanted], Result]


def send_wanted(state: DeviceState, event: SendWanted, list_wanted: ListWanter) -> Result:
    """A new send: the lists it needs are fetched when missing or stale, then it is planned.
    Nothing goes to an account the person blocked (not even a receipt), and nothing is fetched."""
    if is_blocked(state, event.recipient):
        why = {"envelope_id": event.envelope_id, "reason": "blocked"}
        return _drop(state, event.envelope_id), [Notice(event.recipient, "send_refused", why)]
    send = PendingSend(event.recipient)
    return _gather(state, event.envelope_id, send, event.now, list_wanted, refresh=False)


def send_answered(state: DeviceState, event: FrameReceived, list_wanted: ListWanter) -> Result:
    """The server's answer to a send. After `mismatched_devices` both lists are fetched and
    verified again and the send re-planned from them, at most MAX_MISMATCH_RETRIES times.

    The frame's device ids are not trusted: a `missing` device is sent to only once a
    verified list holds it, and `stale` ids only shrink the set (DESIGN section 7).
    """
    frame = event.frame
    if frame.get("type") == "accepted":
        return _drop(state, frame.get("id")), []
    ref = frame.get("ref")
    send = state.sends.get(ref) if isinstance(ref, str) else None
    if send is None or frame.get("code") != "mismatched_devices" or send.waiting:
        return state, []  # another refusal: the adapter reports or resends the frame as is
    assert isinstance(ref, str)
    told = frame.get("data")
    data: Mapping[str, Any] = told if isinstance(told, dict) else {}
    if send.attempt > MAX_MISMATCH_RETRIES:
        told = {name: _ids(data.get(name)) for name in ("missing", "extra", "stale")}
        why = {"envelope_id": ref, "reason": "mismatched_devices", "attempts": send.attempt}
        return _drop(state, ref), [Notice(send.recipient, "send_refused", {**why, **told})]
    retry = replace(send, attempt=send.attempt + 1, stale=send.stale | set(_ids(data.get("stale"))))
    return _gather(state, ref, retry, event.now, list_wanted, refresh=True)


def lists_settled(result: Result) -> Result:
    """After a list answer: a send waiting for no more lists is planned, or refused when a
    list it needs could not be verified (the list's own notice says why)."""
    state, effects = result
    for envelope_id, send in sorted(state.sends.items()):
        if not send.waiting:
            continue
        waiting = tuple(a for a in send.waiting if _fetching(state, a))
        if waiting == send.waiting:
            continue
        failed = [
            e
            for e in effects
            if isinstance(e, Notice) and e.account_id in send.waiting and e.code in LIST_REFUSALS
        ]
        if failed:
            why = {"envelope_id": envelope_id, "reason": failed[0].code}
            state = _drop(state, envelope_id)
            effects = [*effects, Notice(send.recipient, "send_refused", why)]
            continue
        state = _put(state, envelope_id, replace(send, waiting=waiting))
        if not waiting:
            state, more = _plan(state, envelope_id)
            effects = [*effects, *more]
    return state, effects


def _gather(
    state: DeviceState,
    envelope_id: str,
    send: PendingSend,
    now: int,
    list_wanted: ListWanter,
    *,
    refresh: bool,
) -> Result:
    effects: list[Effect] = []
    accounts = list(dict.fromkeys((state.account_id, send.recipient)))
    for account in accounts:
        state, more = list_wanted(state, ListWanted(account, now, refresh))
        effects += more
    waiting = tuple(a for a in accounts if _fetching(state, a))
    state = _put(state, envelope_id, replace(send, waiting=waiting))
    if waiting:
        return state, effects
    state, more = _plan(state, envelope_id)
    return state, effects + more


def _plan(state: DeviceState, envelope_id: str) -> Result:
    """Every active device of the recipient's list gets the content, every other active own
    device a transcript; a device that left the own list sends nothing."""
    send = state.sends[envelope_id]
    own = state.lists.get(state.account_id)
    theirs = state.lists.get(send.recipient)
    if own is None or own.device_list.entry(state.device_id) is None or theirs is None:
        why = {"envelope_id": envelope_id, "reason": "device_removed"}
        return _drop(state, envelope_id), [Notice(send.recipient, "send_refused", why)]
    to_self = send.recipient == state.account_id
    plan = SendPlan(
        envelope_id,
        send.recipient,
        _active(theirs, send.stale, state.device_id),
        () if to_self else _active(own, send.stale, state.device_id),
        send.attempt,
    )
    return state, [plan]


def _active(record: ListRecord, stale: frozenset[str], own_device: str) -> tuple[str, ...]:
    out = record.suspended | stale | {own_device}
    return tuple(d.device_id for d in record.device_list.devices if d.device_id not in out)


def _fetching(state: DeviceState, account_id: str) -> bool:
    return any(p.account_id == account_id for p in state.pending.values())


def _ids(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _put(state: DeviceState, envelope_id: str, send: PendingSend) -> DeviceState:
    return replace(state, sends={**state.sends, envelope_id: send})


def _drop(state: DeviceState, envelope_id: Any) -> DeviceState:
    if envelope_id not in state.sends:
        return state
    return replace(state, sends={e: s for e, s in state.sends.items() if e != envelope_id})


__all__ = ["MAX_MISMATCH_RETRIES", "lists_settled", "send_answered", "send_wanted"]
