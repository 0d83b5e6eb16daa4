"""Accepting a device list (docs/protocol.md sections 4.3 and 22.4): pure functions over a
`ListRecord`, used by `engine.handle` and by adapters that hold a list already."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from protocol.devicelist import DeviceList, verify_device_list
from protocol.engine.state import ListRecord
from protocol.exceptions import MalformedDeviceList


def device_list_path(account_id: str) -> str:
    """The key directory's path of an account's list (every byte outside A-Z a-z 0-9 _ . ~ -
    percent-encoded, as the JS mirror does)."""
    return f"/api/accounts/{quote(account_id, safe='')}/device-list"


def parse_listing(account_id: str, body: Any) -> tuple[DeviceList, frozenset[str]]:
    """The server's answer `{device_list, suspended}`: the list (not yet verified) and the
    device ids it reports logged out; a suspension only shrinks the signed set (DESIGN §7)."""
    if not isinstance(body, Mapping) or "device_list" not in body:
        raise MalformedDeviceList("device list answer: expected an object with 'device_list'")
    device_list = DeviceList.from_dict(body["device_list"])
    if device_list.account_id != account_id:
        raise MalformedDeviceList(
            f"device list: expected account {account_id!r}, got {device_list.account_id!r}"
        )
    suspended = body.get("suspended") or []
    if not isinstance(suspended, list) or not all(isinstance(d, str) for d in suspended):
        raise MalformedDeviceList("device list answer: expected 'suspended' to be a list of ids")
    return device_list, frozenset(suspended)


def accept_list(
    record: ListRecord | None,
    device_list: DeviceList,
    *,
    expected_account_key: bytes | None,
    now: int,
    suspended: frozenset[str] = frozenset(),
) -> ListRecord:
    """Verify a served list against everything accepted before (section 4.3: account key,
    signatures, rollback, key change of a known device id) and return the record to store.

    Without `expected_account_key`, the key pinned in `record` applies (none at first use).
    The list accepted last, served again unchanged, is not a rollback: its record comes back
    with the new `checked_at`. Raises the ProtocolError of the first failing check.
    """
    if record is not None and record.device_list.account_id != device_list.account_id:
        raise MalformedDeviceList(
            f"device list: expected account {record.device_list.account_id!r}, "
            f"got {device_list.account_id!r}"
        )
    if record is not None and record.hash == device_list.hash:
        return replace(record, suspended=suspended, checked_at=now)
    if expected_account_key is None and record is not None:
        expected_account_key = record.account_key  # the key pinned before
    verify_device_list(
        device_list,
        expected_account_key=expected_account_key,
        last_accepted_version=None if record is None else record.version,
        known_devices=None if record is None else record.known_devices,
    )
    known = dict(record.known_devices) if record is not None else {}
    known.update((d.device_id, d.identity_key) for d in device_list.devices)
    return ListRecord(
        device_list=device_list,
        account_key=device_list.account_key,
        known_devices=known,
        suspended=suspended,
        checked_at=now,
    )


def list_changes(before: DeviceList, after: DeviceList) -> dict[str, Any]:
    """The `devices_changed` notice's data: the new version, device ids added and removed."""
    old = {d.device_id for d in before.devices}
    new = {d.device_id for d in after.devices}
    return {
        "version": after.version,
        "added": [d.device_id for d in after.devices if d.device_id not in old],
        "removed": [d.device_id for d in before.devices if d.device_id not in new],
    }
