"""Device-list verification, table-driven like Django's signing tests."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol.devicelist import (
    DeviceEntry,
    DeviceList,
    device_list_hash,
    sign_device,
    sign_device_list,
    sign_link,
    verify_device_list,
    verify_link_signature,
)
from protocol.exceptions import (
    AccountKeyChanged,
    DeviceKeyChanged,
    InvalidSignature,
    MalformedDeviceList,
    MissingDeviceSignature,
    StaleDeviceList,
)
from tests.protocol.protocol_builders import make_device

ACCOUNT = "acct-alice"
T0 = 1_700_000_000_000

primary = make_device("list primary").keys.identity
laptop = make_device("list laptop").keys.identity
tablet = make_device("list tablet").keys.identity
intruder = make_device("list intruder").keys.identity


def companion(identity, device_id="dev-laptop", account_id=ACCOUNT, account_key=None):
    sig = sign_device(identity, account_id=account_id, account_key=account_key or primary.public)
    return DeviceEntry(device_id, identity.public, T0 + 1, sig)


PRIMARY_ENTRY = DeviceEntry("dev-primary", primary.public, T0)


def signed(version=2, devices=None, signer=primary):
    return sign_device_list(
        signer,
        account_id=ACCOUNT,
        version=version,
        timestamp=T0 + version,
        devices=devices if devices is not None else [PRIMARY_ENTRY, companion(laptop)],
    )


def test_valid_list_verifies_and_hash_is_stable():
    dl = signed()
    verify_device_list(
        dl, expected_account_key=primary.public, last_accepted_version=1, known_devices={}
    )
    assert DeviceList.from_dict(dl.to_dict()) == dl
    assert device_list_hash(dl) == dl.hash and len(dl.hash) == 32


@pytest.mark.parametrize(
    "name, device_list, kwargs, error",
    [
        ("version changed after signing", replace(signed(), version=3), {}, InvalidSignature),
        ("timestamp changed", replace(signed(), timestamp=0), {}, InvalidSignature),
        ("account id changed", replace(signed(), account_id="acct-bob"), {}, InvalidSignature),
        ("device dropped", replace(signed(), devices=signed().devices[1:]), {}, InvalidSignature),
        (
            "device injected by server",
            replace(
                signed(),
                devices=tuple(
                    sorted(
                        signed().devices + (companion(intruder, "dev-zz"),),
                        key=lambda d: d.device_id,
                    )
                ),
            ),
            {},
            InvalidSignature,
        ),
        ("signature bytes flipped", replace(signed(), signature=bytes(64)), {}, InvalidSignature),
        (
            "signed by another key",
            signed(devices=[DeviceEntry("dev-primary", intruder.public, T0)], signer=intruder),
            {"expected_account_key": primary.public},
            AccountKeyChanged,
        ),
        (
            "companion without device signature",
            signed(devices=[PRIMARY_ENTRY, DeviceEntry("dev-laptop", laptop.public, T0)]),
            {},
            MissingDeviceSignature,
        ),
        (
            "device signature for another account",
            signed(devices=[PRIMARY_ENTRY, companion(laptop, account_id="acct-mallory")]),
            {},
            InvalidSignature,
        ),
        (
            "device signature for another account key",
            signed(devices=[PRIMARY_ENTRY, companion(laptop, account_key=intruder.public)]),
            {},
            InvalidSignature,
        ),
        (
            "device signature by another key",
            signed(
                devices=[
                    PRIMARY_ENTRY,
                    replace(companion(laptop), device_signature=companion(tablet).device_signature),
                ]
            ),
            {},
            InvalidSignature,
        ),
        (
            "equal version is rollback",
            signed(version=2),
            {"last_accepted_version": 2},
            StaleDeviceList,
        ),
        (
            "older version is rollback",
            signed(version=1),
            {"last_accepted_version": 2},
            StaleDeviceList,
        ),
        (
            "known device id with new key",
            signed(version=3, devices=[PRIMARY_ENTRY, companion(tablet, "dev-laptop")]),
            {"known_devices": {"dev-laptop": laptop.public}},
            DeviceKeyChanged,
        ),
        (
            "removed device returns with new key",
            signed(version=5, devices=[PRIMARY_ENTRY, companion(tablet, "dev-old")]),
            {"known_devices": {"dev-old": laptop.public}},
            DeviceKeyChanged,
        ),
        (
            "no primary entry",
            replace(signed(), devices=(companion(laptop),)),
            {},
            MalformedDeviceList,
        ),
        (
            "unsorted entries",
            replace(signed(), devices=tuple(reversed(signed().devices))),
            {},
            MalformedDeviceList,
        ),
        (
            "duplicate device id",
            replace(signed(), devices=(PRIMARY_ENTRY, PRIMARY_ENTRY)),
            {},
            MalformedDeviceList,
        ),
        (
            "six devices",
            replace(
                signed(),
                devices=(PRIMARY_ENTRY,)
                + tuple(
                    companion(make_device(f"x{i}").keys.identity, f"dev-x{i}") for i in range(5)
                ),
            ),
            {},
            MalformedDeviceList,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_tampered_or_stale_list_is_refused_with_specific_error(name, device_list, kwargs, error):
    with pytest.raises(error):
        verify_device_list(device_list, **kwargs)


def test_malformed_json_is_refused():
    data = signed().to_dict()
    for broken in (
        {**data, "version": -1},
        {**data, "version": "2"},
        {**data, "signature": data["signature"] + "A"},
        {**data, "account_key": data["account_key"] + "=="},
        {k: v for k, v in data.items() if k != "devices"},
    ):
        with pytest.raises(MalformedDeviceList):
            DeviceList.from_dict(broken)


def test_link_signature_covers_account_companion_key_and_link_id():
    sig = sign_link(primary, account_id=ACCOUNT, companion_identity_key=laptop.public, link_id="L1")
    verify_link_signature(
        sig,
        account_id=ACCOUNT,
        account_key=primary.public,
        companion_identity_key=laptop.public,
        link_id="L1",
    )
    for changes in (
        {"link_id": "L2"},
        {"companion_identity_key": tablet.public},
        {"account_id": "acct-bob"},
        {"account_key": intruder.public},
    ):
        kwargs = {
            "account_id": ACCOUNT,
            "account_key": primary.public,
            "companion_identity_key": laptop.public,
            "link_id": "L1",
            **changes,
        }
        with pytest.raises(InvalidSignature):
            verify_link_signature(sig, **kwargs)


def _entry_dict(data, **changes):
    devices = [dict(d) for d in data["devices"]]
    devices[0].update(changes)
    return {**data, "devices": devices}


@pytest.mark.parametrize(
    "change",
    [
        lambda d: _entry_dict(d, device_id="dev-\ud800"),  # lone surrogate
        lambda d: _entry_dict(d, device_id="\udfff"),
        lambda d: _entry_dict(d, device_id="x" * 65536),
        lambda d: {**d, "account_id": "acct-\ud800"},
        lambda d: {**d, "account_id": "x" * 65536},
        lambda d: {**d, "version": 2**53 - 1, "timestamp": 2**53},
        lambda d: {**d, "version": 2**64},
        lambda d: _entry_dict(d, added_at=-1),
        lambda d: _entry_dict(d, added_at=True),
        lambda d: {**d, "version": 2.0},
        lambda d: {**d, "timestamp": None},
    ],
)
def test_bad_json_fields_are_malformed_device_lists_never_other_errors(change):
    data = change(signed().to_dict())
    with pytest.raises(MalformedDeviceList):
        verify_device_list(DeviceList.from_dict(data))


@pytest.mark.parametrize(
    "changes",
    [
        {"version": -1},
        {"version": 2**53},
        {"timestamp": 2**64},
        {"account_id": "acct-\ud800"},
        {"account_id": 5},
        {"account_key": "k" * 32},
        {"devices": (replace(PRIMARY_ENTRY, device_id="dev-\ud800"),)},
        {"devices": (replace(PRIMARY_ENTRY, added_at=-1),)},
        {"devices": (replace(PRIMARY_ENTRY, added_at=2**53),)},
        {"devices": (replace(PRIMARY_ENTRY, device_id=7),)},
        {"devices": (PRIMARY_ENTRY, replace(companion(laptop), device_signature=bytes(63)))},
        {"devices": ("dev-primary",)},
    ],
    ids=repr,
)
def test_structure_check_covers_every_field_of_a_constructed_list(changes):
    with pytest.raises(MalformedDeviceList):
        verify_device_list(replace(signed(), **changes))


@pytest.mark.parametrize(
    "device_id, added_at",
    [("dev-\ud800", T0), ("x" * 65536, T0), ("dev-ok", -1), ("dev-ok", 2**53)],
    ids=repr,
)
def test_signing_a_list_with_a_bad_entry_is_malformed(device_id, added_at):
    with pytest.raises(MalformedDeviceList):
        signed(devices=[PRIMARY_ENTRY, DeviceEntry(device_id, laptop.public, added_at)])
