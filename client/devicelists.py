"""Fetching signed device lists, and the store behind the engine's list records: the rules
of accepting one (docs/protocol.md sections 4.3 and 22.4) live in protocol.engine."""

from __future__ import annotations

from client import api
from client.api import Transport
from client.store import AcceptedList, Store, now_ms
from protocol.devicelist import DeviceList
from protocol.engine import ListRecord, accept_list, device_list_path, parse_listing


def fetch_device_list(transport: Transport, account_id: str) -> DeviceList:
    """The account's current list as the server serves it; not yet verified."""
    return fetch_device_listing(transport, account_id)[0]


def fetch_device_listing(
    transport: Transport, account_id: str
) -> tuple[DeviceList, frozenset[str]]:
    """The list (not yet verified) and the device ids the server suspends until the primary
    re-signs; a suspension may only shrink the signed set, never grow it (DESIGN §7)."""
    return parse_listing(account_id, api.get(transport, device_list_path(account_id)))


def list_record(
    store: Store, account_id: str, *, suspended: frozenset[str] = frozenset()
) -> ListRecord | None:
    """The engine's record of an account's list, from the store."""
    accepted = store.device_list(account_id)
    if accepted is None:
        return None
    return ListRecord(
        device_list=accepted.device_list,
        account_key=accepted.device_list.account_key,
        known_devices=store.known_devices(account_id),
        suspended=suspended,
        checked_at=accepted.accepted_at,
    )


def save_record(store: Store, record: ListRecord) -> AcceptedList:
    """Store a record the engine returned (known devices only ever grow)."""
    return store.save_device_list(record.device_list, accepted_at=record.checked_at)


def accept_device_list(
    store: Store, device_list: DeviceList, *, expected_account_key: bytes
) -> AcceptedList:
    """Verify a list against everything accepted before (protocol.engine.accept_list) and
    record it; the list accepted last, served again unchanged, is not a rollback."""
    with store.transaction():
        record = accept_list(
            list_record(store, device_list.account_id),
            device_list,
            expected_account_key=expected_account_key,
            now=now_ms(),
        )
        return save_record(store, record)
