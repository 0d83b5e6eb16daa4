"""The companion side of linking (client.linking.link_device) against the live server, with
the misbehaving-server harness between them (DESIGN §7): a swapped provisioning payload and
a device list that does not verify are refused visibly, and nothing is saved."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from client.http import HttpTransport
from client.linking import LinkEvent, LinkRefused, QrShown, link_device
from client.store import OwnDevice, Store
from protocol import devicelist as dl
from protocol import linking
from protocol.encoding import b64u_encode
from protocol.exceptions import (
    AccountKeyChanged,
    DecryptionFailed,
    InvalidSignature,
    MalformedMessage,
)
from protocol.keys import X25519KeyPair, generate_device_keys
from protocol.rng import system_rng
from tests.client.conftest import wait_until
from tests.support.actors import ApiFailure, LinkQr, PrimaryActor, ok
from tests.support.rewriting import RewritingTransport

LINK_STATUS = r"/api/link/[^/]+"
DEVICE_LIST = r"/api/accounts/[^/]+/device-list"


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Linking:
    """link_device running in a thread, as the command line runs it, its events in a queue."""

    server: RewritingTransport
    path: Path
    clock: Clock = field(default_factory=Clock)
    events: queue.Queue[LinkEvent] = field(default_factory=queue.Queue)
    result: OwnDevice | BaseException | None = None
    opened: list[Store] = field(default_factory=list)

    def start(self, origin: str) -> Linking:
        def run() -> None:
            try:
                with Store.open(self.path) as store:
                    self.result = link_device(
                        self.server,
                        store,
                        origin=origin,
                        name="Terminal",
                        report=self.events.put,
                        one_time_prekeys=5,
                        clock=self.clock,
                        poll_seconds=0.02,
                    )
            except BaseException as error:  # handed to the test thread
                self.result = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def next_qr(self) -> LinkQr:
        event = self.events.get(timeout=10)
        assert isinstance(event, QrShown), event
        return LinkQr(
            event.request.link_id, event.request.identity_key, event.request.ephemeral_key
        )

    def outcome(self) -> OwnDevice | BaseException | None:
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "link_device did not finish"
        return self.result

    @property
    def store(self) -> Store:
        """The store as the next run of the client opens it."""
        store = Store.open(self.path)
        self.opened.append(store)
        return store


@pytest.fixture
def linking_(live_app, tmp_path: Path):
    runs: list[Linking] = []

    def start() -> Linking:
        path = tmp_path / f"device{len(runs)}.sqlite3"
        runs.append(Linking(RewritingTransport(HttpTransport(live_app.url)), path))
        return runs[-1].start(live_app.url)

    yield start
    for run in runs:
        for store in run.opened:
            store.close()


def wait_signed(primary: PrimaryActor, qr: LinkQr) -> None:
    wait_until(
        lambda: ok(primary.transport.get(f"/api/link/{qr.link_id}/detail"))["state"] == "signed",
        what="the device signature",
    )


def active_device_ids(primary: PrimaryActor) -> set[str]:
    return {d["device_id"] for d in ok(primary.transport.get("/api/devices"))["devices"]}


def test_link_device_saves_the_device_and_its_verified_list(linking_, primary):
    run = linking_()
    qr = run.next_qr()
    primary.approve(qr)
    wait_signed(primary, qr)
    primary.complete(qr)
    device = run.outcome()
    assert isinstance(device, OwnDevice), device
    assert device.account_id == primary.username
    assert device.account_key == primary.keys.identity.public
    assert run.store.device() == device
    assert run.store.device_list(primary.username).device_list == primary.last_list
    assert device.device_id in active_device_ids(primary)


def test_qr_is_replaced_before_it_expires_and_the_old_one_cannot_be_approved(linking_, primary):
    run = linking_()
    first = run.next_qr()
    run.clock.now += 110  # the server's TTL is 120 s; the client rotates 15 s before
    second = run.next_qr()
    assert second.link_id != first.link_id
    assert second.identity_key == first.identity_key
    assert second.ephemeral_key != first.ephemeral_key
    with pytest.raises(ApiFailure) as refused:
        primary.approve(first)
    assert refused.value.code == "link_used"
    primary.approve(second)
    wait_signed(primary, second)
    primary.complete(second)
    assert isinstance(run.outcome(), OwnDevice)


def _provisioning_over_another_identity_key(primary: PrimaryActor, qr: LinkQr) -> bytes:
    other = generate_device_keys(system_rng).identity.public
    provisioning = linking.make_provisioning(
        primary.keys.identity,
        account_id=primary.username,
        companion_identity_key=other,
        link_id=qr.link_id,
    )
    return linking.seal_provisioning(provisioning, qr.ephemeral_key)


def _provisioning_for_another_link(primary: PrimaryActor, qr: LinkQr) -> bytes:
    provisioning = linking.make_provisioning(
        primary.keys.identity,
        account_id=primary.username,
        companion_identity_key=qr.identity_key,
        link_id="another-link-id-0000",
    )
    return linking.seal_provisioning(provisioning, qr.ephemeral_key)


def _provisioning_sealed_to_another_device(primary: PrimaryActor, qr: LinkQr) -> bytes:
    provisioning = linking.make_provisioning(
        primary.keys.identity,
        account_id=primary.username,
        companion_identity_key=qr.identity_key,
        link_id=qr.link_id,
    )
    return linking.seal_provisioning(provisioning, X25519KeyPair.generate(system_rng).public)


@pytest.mark.parametrize(
    ("swap", "error"),
    [
        (_provisioning_over_another_identity_key, InvalidSignature),
        (_provisioning_for_another_link, MalformedMessage),
        (_provisioning_sealed_to_another_device, DecryptionFailed),
    ],
)
def test_swapped_provisioning_payload_is_refused_and_the_link_cancelled(
    linking_, primary, swap, error
):
    run = linking_()
    qr = run.next_qr()
    swapped = b64u_encode(swap(primary, qr))

    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "provisioning": swapped} if body.get("provisioning") else body

    run.server.rewrite("GET", LINK_STATUS, rewrite)
    primary.approve(qr)
    refused = run.outcome()
    assert isinstance(refused, LinkRefused), refused
    assert isinstance(refused.cause, error)
    assert str(refused).startswith(
        "Refused the approval: the provisioning payload is not for this device"
    )
    assert run.store.device() is None
    assert not any(path.endswith("/device-signature") for _, path, _ in run.server.log)
    status, body = primary.transport.get(f"/api/link/{qr.link_id}/detail")
    assert (status, body["error"]["code"]) == (410, "link_used")  # cancelled by the new device


def _list_signed_by_another_key(
    primary: PrimaryActor, served: dict[str, Any], v1: dict[str, Any]
) -> dict[str, Any]:
    attacker = generate_device_keys(system_rng).identity
    current = dl.DeviceList.from_dict(served)
    entries = [
        dl.DeviceEntry(d.device_id, attacker.public, d.added_at)
        if d.device_signature is None
        else d
        for d in current.devices
    ]
    return dl.sign_device_list(
        attacker,
        account_id=current.account_id,
        version=current.version,
        timestamp=current.timestamp,
        devices=entries,
    ).to_dict()


def _list_with_a_broken_signature(
    primary: PrimaryActor, served: dict[str, Any], v1: dict[str, Any]
) -> dict[str, Any]:
    signature = bytearray(dl.DeviceList.from_dict(served).signature)
    signature[0] ^= 1
    return {**served, "signature": b64u_encode(bytes(signature))}


def _list_with_an_injected_device(
    primary: PrimaryActor, served: dict[str, Any], v1: dict[str, Any]
) -> dict[str, Any]:
    intruder = generate_device_keys(system_rng).identity
    entry = {
        "device_id": "zzzz-injected-device",
        "identity_key": b64u_encode(intruder.public),
        "added_at": 1,
        "device_signature": b64u_encode(
            dl.sign_device(
                intruder, account_id=served["account_id"], account_key=primary.keys.identity.public
            )
        ),
    }
    return {**served, "devices": [*served["devices"], entry]}


def _previous_list_without_this_device(
    primary: PrimaryActor, served: dict[str, Any], v1: dict[str, Any]
) -> dict[str, Any]:
    return v1


@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        (_list_signed_by_another_key, AccountKeyChanged),
        (_list_with_a_broken_signature, InvalidSignature),
        (_list_with_an_injected_device, InvalidSignature),
        (_previous_list_without_this_device, None),
    ],
)
def test_device_list_not_verifying_under_the_provisioned_key_is_refused(
    linking_, primary, tamper, error
):
    run = linking_()
    qr = run.next_qr()
    v1 = primary.last_list.to_dict()
    run.server.rewrite(
        "GET",
        DEVICE_LIST,
        lambda body: {**body, "device_list": tamper(primary, body["device_list"], v1)},
    )
    primary.approve(qr)
    wait_signed(primary, qr)
    device_id = primary.complete(qr)["device_id"]
    refused = run.outcome()
    assert isinstance(refused, LinkRefused), refused
    assert str(refused).startswith("Refused the account's device list")
    if error is None:
        assert refused.cause is None
        assert "does not list this device" in str(refused)
    else:
        assert isinstance(refused.cause, error)
    assert run.store.device() is None
    assert run.store.device_list(primary.username) is None
    assert device_id not in active_device_ids(primary)  # the refusing device logged itself out
