"""Fetching and accepting signed device lists (docs/protocol.md section 4.3) into the store."""

from __future__ import annotations

from typing import Any

from client import api
from client.api import Transport
from client.store import AcceptedList, Store
from protocol.devicelist import DeviceList, verify_device_list
from protocol.exceptions import MalformedDeviceList


def fetch_device_list(transport: Transport, account_id: str) -> DeviceList:
    """The account's current list as the server serves it; not yet verified."""
    return fetch_device_listing(transport, account_id)[0]


def fetch_device_listing(
    transport: Transport, account_id: str
) -> tuple[DeviceList, frozenset[str]]:
    """The list (not yet verified) and the device ids the server suspends until the primary
    re-signs; a suspension may only shrink the signed set, never grow it (DESIGN §7)."""
    document: Any = api.get(transport, f"/api/accounts/{account_id}/device-list")
    if not isinstance(document, dict) or "device_list" not in document:
        raise MalformedDeviceList("device list answer: expected an object with 'device_list'")
    device_list = DeviceList.from_dict(document["device_list"])
    if device_list.account_id != account_id:
        raise MalformedDeviceList(
            f"device list: expected account {account_id!r}, got {device_list.account_id!r}"
        )
    suspended = document.get("suspended") or []
    if not isinstance(suspended, list) or not all(isinstance(d, str) for d in suspended):
        raise MalformedDeviceList("device list answer: expected 'suspended' to be a list of ids")
    return device_list, frozenset(suspended)


def accept_device_list(
    store: Store, device_list: DeviceList, *, expected_account_key: bytes
) -> AcceptedList:
    """Verify against everything accepted before (rollback, key changes) and record it.

    The list accepted last, served again unchanged, is not a rollback: it is returned as is.
    """
    with store.transaction():
        previous = store.device_list(device_list.account_id)
        if previous is not None and previous.hash == device_list.hash:
            return previous
        verify_device_list(
            device_list,
            expected_account_key=expected_account_key,
            last_accepted_version=None if previous is None else previous.version,
            known_devices=store.known_devices(device_list.account_id),
        )
        return store.save_device_list(device_list)
