"""KEM prekeys in the key directory (docs/protocol.md 27.6): uploads checked first and stored
all or nothing, bundles that hand out each one-time KEM prekey once under its own fair share
and the last-resort one after, and `prekeys_low` telling both pools."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from config.asgi import application
from devices.models import (
    KemPrekey,
    LastResortKemPrekey,
    OneTimePrekey,
    PrekeyClaim,
    SignedPrekey,
)
from protocol.encoding import b64u_encode
from protocol.exceptions import InvalidSignature
from protocol.keys import (
    PrekeyBundle,
    X25519KeyPair,
    generate_identity,
    generate_signed_prekey,
    plan_kem_refill,
    verify_prekey_bundle,
)
from protocol.primitives import MLKEM768_PUBLIC_KEY_BYTES
from protocol.rng import system_rng
from tests.support.actors import (
    CompanionActor,
    DjangoTransport,
    PrimaryActor,
    kem_prekey_dict,
    kem_prekey_upload,
    kem_public_key,
    link,
    ok,
)
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"
LAST_RESORT = 1000  # the id of the last-resort KEM prekey the tests publish
Actor = PrimaryActor | CompanionActor


def make_primary(username: str = "alice") -> PrimaryActor:
    """A primary of a build before version 2: it publishes its KEM prekeys itself here."""
    return PrimaryActor(
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username=username, version_2=False
    ).sign_up()


def old_companion(primary: PrimaryActor) -> CompanionActor:
    """A companion of a build before version 2: it published no KEM prekey when it was linked
    (its rows are taken out here; this build publishes a last-resort and one-time ones)."""
    companion = link(primary, CompanionActor(DjangoTransport()))
    KemPrekey.objects.filter(device_id=companion.device_id).delete()
    LastResortKemPrekey.objects.filter(device_id=companion.device_id).delete()
    return companion


def counts(actor: Actor) -> dict[str, Any]:
    return ok(actor.transport.get("/api/prekeys"))


def upload(actor: Actor, body: dict[str, Any]) -> tuple[int, Any]:
    return actor.transport.post("/api/prekeys", {"one_time_prekeys": [], **body})


def publish_kem(
    actor: Actor, ids: Iterable[int], *, last_resort_id: int | None = LAST_RESORT
) -> dict[str, Any]:
    body = kem_prekey_upload(actor.keys.identity, ids, last_resort_id=last_resort_id)
    return ok(upload(actor, body))


def one_time_prekeys(ids: Iterable[int]) -> list[dict[str, Any]]:
    return [
        {"id": i, "public_key": b64u_encode(X25519KeyPair.generate(system_rng).public)} for i in ids
    ]


def verify(bundle: dict[str, Any], owner: Actor) -> None:
    """What a client does with a bundle: parse it, check it under the identity key its signed
    device list gives the device (the owner's own key, here)."""
    verify_prekey_bundle(
        PrekeyBundle.from_dict(bundle), listed_identity_key=owner.keys.identity.public
    )


def bundle(requester: Actor, owner: Actor, account: str = "alice") -> dict[str, Any]:
    """The bundle of one device, verified."""
    answer = ok(
        requester.transport.post(
            f"/api/accounts/{account}/bundles", {"device_ids": [owner.device_id]}
        )
    )
    (only,) = answer["bundles"]
    verify(only, owner)
    return only


def kem(b: dict[str, Any]) -> tuple[int, bool] | None:
    k = b["kem_prekey"]
    return None if k is None else (k["id"], k["last_resort"])


def kems(requester: Actor, owners: list[Actor], account: str = "alice") -> list:
    """(id, last_resort) of the KEM prekey in each owner's bundle, from one fetch of all."""
    answer = ok(requester.transport.post(f"/api/accounts/{account}/bundles", {}))
    by_device = {b["device_id"]: b for b in answer["bundles"]}
    for owner in owners:
        verify(by_device[owner.device_id], owner)
    return [kem(by_device[o.device_id]) for o in owners]


# ---------------------------------------------------------------- uploads


@pytest.mark.django_db
def test_kem_prekeys_are_stored_and_counted_and_a_new_last_resort_one_replaces_the_old():
    alice = make_primary()
    assert counts(alice) == {
        "one_time_prekeys": 10,
        "kem_prekeys": 0,
        "last_resort_kem_prekey": None,
    }
    assert publish_kem(alice, range(1, 26)) == {
        "one_time_prekeys": 10,
        "kem_prekeys": 25,
        "last_resort_kem_prekey": LAST_RESORT,
    }
    # one-time ones alone keep the last-resort one
    assert publish_kem(alice, range(26, 31), last_resort_id=None)["kem_prekeys"] == 30
    assert counts(alice)["last_resort_kem_prekey"] == LAST_RESORT
    # a new last-resort one replaces it
    assert publish_kem(alice, [], last_resort_id=LAST_RESORT + 1) == {
        "one_time_prekeys": 10,
        "kem_prekeys": 30,
        "last_resort_kem_prekey": LAST_RESORT + 1,
    }
    (stored,) = LastResortKemPrekey.objects.filter(device_id=alice.device_id)
    assert bytes(stored.public_key) == kem_public_key(LAST_RESORT + 1)
    kept = KemPrekey.objects.filter(device_id=alice.device_id).values_list("key_id", flat=True)
    assert sorted(kept) == list(range(1, 31))


def prekey_rows() -> dict[str, list]:
    """Every stored prekey of every device, as a refused upload must leave them."""
    last_resort = LastResortKemPrekey.objects.values_list("device_id", "key_id", "public_key")
    return {
        "signed": sorted(SignedPrekey.objects.values_list("device_id", "key_id")),
        "one-time": sorted(OneTimePrekey.objects.values_list("device_id", "key_id")),
        "kem": sorted(KemPrekey.objects.values_list("device_id", "key_id")),
        "last resort": sorted((d, k, bytes(p)) for d, k, p in last_resort),
    }


Body = dict[str, Any]
# Each case changes one thing of an upload that would otherwise store something of every kind
# (a new signed prekey, a one-time prekey, two one-time KEM prekeys, a new last-resort one), on
# a device that has stored one-time KEM prekeys 1 to 25 and last-resort 1000.
REFUSALS: dict[str, tuple[Callable[[Body, Any], None], int, str]] = {
    "a one-time KEM key a byte short": (
        lambda b, ik: b["kem_prekeys"].__setitem__(
            1, kem_prekey_dict(ik, 27, public_key=kem_public_key(27)[:-1])
        ),
        400,
        "invalid_key",
    ),
    "a one-time KEM key a byte too long": (
        lambda b, ik: b["kem_prekeys"].__setitem__(
            1, kem_prekey_dict(ik, 27, public_key=kem_public_key(27) + b"\0")
        ),
        400,
        "invalid_key",
    ),
    "a one-time KEM key that is not a valid encoding": (
        lambda b, ik: b["kem_prekeys"].__setitem__(
            1, kem_prekey_dict(ik, 27, public_key=b"\xff" * MLKEM768_PUBLIC_KEY_BYTES)
        ),
        400,
        "invalid_key",
    ),
    "a last-resort KEM key that is not a valid encoding": (
        lambda b, ik: b.__setitem__(
            "last_resort_kem_prekey",
            kem_prekey_dict(
                ik, 1001, last_resort=True, public_key=b"\xff" * MLKEM768_PUBLIC_KEY_BYTES
            ),
        ),
        400,
        "invalid_key",
    ),
    "a one-time KEM key signed as the last-resort one": (
        lambda b, ik: b["kem_prekeys"].__setitem__(1, kem_prekey_dict(ik, 27, last_resort=True)),
        400,
        "invalid_signature",
    ),
    "the last-resort KEM key signed as a one-time one": (
        lambda b, ik: b.__setitem__("last_resort_kem_prekey", kem_prekey_dict(ik, 1001)),
        400,
        "invalid_signature",
    ),
    "a one-time KEM key signed by another identity key": (
        lambda b, ik: b["kem_prekeys"].__setitem__(
            0, kem_prekey_dict(generate_identity(system_rng), 26)
        ),
        400,
        "invalid_signature",
    ),
    "a one-time KEM key with a signature of 63 bytes": (
        lambda b, ik: b["kem_prekeys"][1].__setitem__("signature", b64u_encode(bytes(63))),
        400,
        "invalid_input",
    ),
    "a one-time KEM id already stored": (
        lambda b, ik: b["kem_prekeys"].__setitem__(1, kem_prekey_dict(ik, 25)),
        409,
        "prekey_id_reused",
    ),
    "a one-time KEM id twice": (
        lambda b, ik: b["kem_prekeys"].__setitem__(1, kem_prekey_dict(ik, 26)),
        400,
        "invalid_input",
    ),
    "a one-time (X25519) id already stored": (
        lambda b, ik: b.__setitem__("one_time_prekeys", one_time_prekeys([10])),
        409,
        "prekey_id_reused",
    ),
    "more one-time KEM keys than one request may carry": (
        lambda b, ik: b.__setitem__(
            "kem_prekeys", [kem_prekey_dict(ik, i) for i in range(26, 26 + 26)]
        ),
        400,
        "too_many_in_upload",
    ),
    "more one-time KEM keys than a device keeps (the limit lowered to 26)": (
        lambda b, ik: None,
        409,
        "too_many_prekeys",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", [None, *REFUSALS], ids=lambda c: c or "nothing wrong")
def test_an_upload_with_one_thing_wrong_is_refused_and_stores_nothing(case, settings):
    alice = make_primary()
    identity = alice.keys.identity
    publish_kem(alice, range(1, 26))
    spk = generate_signed_prekey(identity, 2, system_rng)
    body = {
        "signed_prekey": {
            "id": 2,
            "public_key": b64u_encode(spk.key.public),
            "signature": b64u_encode(spk.signature),
        },
        "one_time_prekeys": one_time_prekeys([11]),
        **kem_prekey_upload(identity, [26, 27], last_resort_id=LAST_RESORT + 1),
    }
    before, answer_before = prekey_rows(), counts(alice)
    if case is None:  # the same upload, nothing wrong: everything is stored
        assert ok(upload(alice, body)) == {
            "one_time_prekeys": 11,
            "kem_prekeys": 27,
            "last_resort_kem_prekey": LAST_RESORT + 1,
        }
        assert SignedPrekey.objects.filter(device_id=alice.device_id, key_id=2).exists()
        return
    change, status, code = REFUSALS[case]
    if code == "too_many_prekeys":
        settings.PARLEY_KEM_PREKEYS_MAX = 26
    change(body, identity)
    got_status, answer = upload(alice, body)
    assert (got_status, answer["error"]["code"]) == (status, code), answer
    assert answer["error"]["message"]
    assert prekey_rows() == before
    assert counts(alice) == answer_before


@pytest.mark.django_db
def test_a_device_keeps_at_most_200_one_time_kem_prekeys():
    alice = make_primary()
    bob = make_primary("bobby")
    for first in range(1, 201, 25):
        publish_kem(alice, range(first, first + 25), last_resort_id=None)
    assert counts(alice)["kem_prekeys"] == 200
    status, answer = upload(alice, kem_prekey_upload(alice.keys.identity, [201]))
    assert (status, answer["error"]) == (
        409,
        {
            "code": "too_many_prekeys",
            "message": "A device keeps at most 200 one-time KEM prekeys on the server; 200 are stored.",
            "data": {"field": "kem_prekeys", "stored": 200, "limit": 200},
        },
    )
    assert counts(alice)["last_resort_kem_prekey"] is None  # nothing of that request stored
    # a key handed out leaves room for one
    b = ok(bob.transport.post("/api/accounts/alice/bundles", {}))["bundles"][0]
    assert kem(b) == (1, False)
    assert publish_kem(alice, [201], last_resort_id=None)["kem_prekeys"] == 200


# ---------------------------------------------------------------- bundles


@pytest.mark.django_db
def test_one_time_kem_prekeys_are_handed_out_once_each_then_the_last_resort_one_until_a_refill(
    settings,
):
    settings.PARLEY_PREKEY_SHARE = 100  # the pool itself; the fair share is tested below
    alice = make_primary()
    bob = make_primary("bobby")
    publish_kem(alice, [1, 2, 3])
    handed = [kem(bundle(bob, alice)) for _ in range(5)]
    assert handed == [(1, False), (2, False), (3, False), (1000, True), (1000, True)]
    assert counts(alice)["kem_prekeys"] == 0
    publish_kem(alice, [4, 5], last_resort_id=None)  # the device refills its pool
    assert [kem(bundle(bob, alice)) for _ in range(3)] == [(4, False), (5, False), (1000, True)]


@pytest.mark.django_db
def test_a_device_that_published_no_kem_prekey_has_none_in_its_bundles():
    alice = make_primary()
    b = bundle(make_primary("bobby"), alice)
    assert b["kem_prekey"] is None and b["one_time_prekey"]["id"] == 1


@pytest.mark.django_db
def test_another_account_gets_one_one_time_kem_prekey_per_device_a_day_then_the_last_resort_one():
    alice = make_primary()
    laptop = old_companion(alice)
    publish_kem(alice, range(1, 11))
    publish_kem(laptop, range(1, 11))
    devices = [alice, laptop]
    mallory = make_primary("mallory")
    mallory_laptop = old_companion(mallory)
    assert kems(mallory, devices) == [(1, False), (1, False)]
    for _ in range(3):  # within 24 h: the last-resort key, signed as such
        assert kems(mallory, devices) == [(LAST_RESORT, True), (LAST_RESORT, True)]
    assert kems(mallory_laptop, devices) == [(LAST_RESORT, True)] * 2  # per account
    assert kems(make_primary("carol"), devices) == [(2, False), (2, False)]
    # the account's own devices are not held to the share
    assert [kem(bundle(laptop, alice)) for _ in range(3)] == [(3, False), (4, False), (5, False)]
    assert counts(alice)["kem_prekeys"] == 5 and counts(laptop)["kem_prekeys"] == 8

    PrekeyClaim.objects.update(claimed_at=timezone.now() - timedelta(hours=24, seconds=1))
    assert kems(mallory, devices) == [(6, False), (3, False)]  # a new day, a new share


def claim_kinds(requester: Actor) -> list[str]:
    claims = PrekeyClaim.objects.filter(requester__username=requester.username)
    return sorted(claims.values_list("kind", flat=True))


@pytest.mark.django_db
def test_the_shares_of_the_two_pools_are_counted_apart():
    alice = make_primary()
    laptop = old_companion(alice)
    # Mallory takes her one-time (X25519) prekey of the laptop while it has no KEM prekey...
    mallory = make_primary("mallory")
    first = bundle(mallory, laptop)
    assert (first["one_time_prekey"]["id"], first["kem_prekey"]) == (1, None)
    publish_kem(laptop, [1, 2])
    # ...and still gets a one-time KEM prekey of it: past one share, within the other
    second = bundle(mallory, laptop)
    assert (second["one_time_prekey"], kem(second)) == (None, (1, False))
    assert claim_kinds(mallory) == ["kem", "x25519"]

    # The other way round: Bob takes a one-time KEM prekey of Alice's phone while its X25519
    # pool is empty (her laptop, not held to a share, took them all)...
    for _ in range(10):
        assert bundle(laptop, alice)["one_time_prekey"] is not None
    publish_kem(alice, [1, 2])
    bob = make_primary("bobby")
    third = bundle(bob, alice)
    assert (third["one_time_prekey"], kem(third)) == (None, (1, False))
    ok(upload(alice, {"one_time_prekeys": one_time_prekeys(range(11, 16))}))
    # ...and then gets a one-time X25519 prekey, with the last-resort KEM prekey
    fourth = bundle(bob, alice)
    assert (fourth["one_time_prekey"]["id"], kem(fourth)) == (11, (LAST_RESORT, True))
    assert claim_kinds(bob) == ["kem", "x25519"]


@pytest.mark.django_db
def test_a_bundle_verifies_and_one_with_its_last_resort_flag_turned_does_not():
    alice = make_primary()
    bob = make_primary("bobby")
    publish_kem(alice, [1])
    one_time, last_resort = bundle(bob, alice), bundle(bob, alice)  # `bundle` verifies them
    assert (kem(one_time), kem(last_resort)) == ((1, False), (LAST_RESORT, True))
    for good in (one_time, last_resort):
        tampered = copy.deepcopy(good)
        tampered["kem_prekey"]["last_resort"] = not good["kem_prekey"]["last_resort"]
        with pytest.raises(InvalidSignature):
            verify(tampered, alice)


@pytest.mark.django_db(transaction=True)
def test_concurrent_fetches_hand_out_each_one_time_kem_prekey_once_and_no_more_than_a_share(
    settings,
):
    settings.PARLEY_PREKEY_SHARE = 2
    alice = make_primary()
    publish_kem(alice, range(1, 11))
    fetchers = [make_primary(f"user{n}") for n in range(6)]  # they would take 12 of 10
    handed: dict[str, list[int]] = {f.username: [] for f in fetchers}
    failures: list[BaseException] = []
    lock = threading.Lock()

    def fetch(actor: PrimaryActor) -> None:
        try:
            for _ in range(3):
                got = kem(bundle(actor, alice))
                assert got is not None
                if not got[1]:
                    with lock:
                        handed[actor.username].append(got[0])
        except BaseException as error:  # shown by the main thread
            failures.append(error)

    threads = [threading.Thread(target=fetch, args=(a,)) for a in fetchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    ids = [i for got in handed.values() for i in got]
    assert sorted(ids) == list(range(1, 11))  # each once, all of them
    assert all(len(got) <= 2 for got in handed.values())
    assert not KemPrekey.objects.filter(device_id=alice.device_id).exists()


@pytest.mark.django_db
def test_a_removed_device_loses_its_kem_prekeys():
    alice = make_primary()
    laptop = link(alice, CompanionActor(DjangoTransport()))  # its KEM prekeys came with it
    assert KemPrekey.objects.filter(device_id=laptop.device_id).count() == 25
    assert LastResortKemPrekey.objects.filter(device_id=laptop.device_id).exists()
    alice.revoke(laptop.device_id)
    assert not KemPrekey.objects.filter(device_id=laptop.device_id).exists()
    assert not LastResortKemPrekey.objects.filter(device_id=laptop.device_id).exists()


# ---------------------------------------------------------------- prekeys_low


async def open_socket(actor: Actor) -> WebsocketCommunicator:
    cookie = "; ".join(f"{k}={v.value}" for k, v in actor.transport.client.cookies.items())
    socket = WebsocketCommunicator(
        application,
        "/ws/device/",
        headers=[(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())],
    )
    assert (await socket.connect())[0]
    return socket


async def next_frame(socket: WebsocketCommunicator) -> dict[str, Any]:
    return await socket.receive_json_from(timeout=5)


async def quiet(socket: WebsocketCommunicator) -> bool:
    """Nothing was said before the answer to a ping."""
    await socket.send_json_to({"type": "ping", "v": 1, "id": "quiet"})
    return await next_frame(socket) == {"type": "pong", "v": 1, "id": "quiet"}


def low(remaining: int, kem_remaining: int | None) -> dict[str, Any]:
    return {"type": "prekeys_low", "v": 1, "remaining": remaining, "kem_remaining": kem_remaining}


@pytest.mark.django_db(transaction=True)
async def test_prekeys_low_tells_both_pools_after_the_claim_that_left_one_low_and_on_connect():
    alice = await sync_to_async(make_primary)()
    laptop = await sync_to_async(old_companion)(alice)
    await sync_to_async(publish_kem)(alice, range(1, 8))  # 10 one-time prekeys, 7 KEM ones
    socket = await open_socket(alice)
    assert await quiet(socket)  # neither pool low: nothing on connect
    await sync_to_async(bundle)(laptop, alice)  # 9 and 6 left
    assert await quiet(socket)
    await sync_to_async(bundle)(laptop, alice)  # 8 and 5: the KEM pool is low
    assert await next_frame(socket) == low(8, 5)
    await socket.disconnect()
    # a device that was offline when a pool ran low learns it when it connects
    again = await open_socket(alice)
    assert await next_frame(again) == low(8, 5)
    await again.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_prekeys_low_on_connect_has_kem_remaining_null_only_for_a_device_without_kem_prekeys():
    alice = await sync_to_async(make_primary)()
    # A version-1 device (no KEM prekey) with a full pool is never told...
    socket = await open_socket(alice)
    assert await quiet(socket)
    await socket.disconnect()
    # ...and with a low one it is told `kem_remaining: null`
    await sync_to_async(OneTimePrekey.objects.filter(key_id__lte=5).delete)()
    socket = await open_socket(alice)
    assert await next_frame(socket) == low(5, None)
    await socket.disconnect()
    # a device with its last-resort KEM prekey and no one-time one is told its KEM pool is empty
    await sync_to_async(publish_kem)(alice, [])
    refill = {"one_time_prekeys": one_time_prekeys(range(11, 16))}
    await sync_to_async(lambda: ok(upload(alice, refill)))()
    socket = await open_socket(alice)
    assert await next_frame(socket) == low(10, 0)
    await socket.disconnect()


@pytest.mark.django_db
def test_a_device_refills_from_its_counts_with_the_protocols_plan_and_the_server_takes_it():
    """plan_kem_refill's uploads (KEM prekeys alone, no `one_time_prekeys`) from the counts
    GET /api/prekeys gives, until the plan says nothing is left to do."""
    alice = make_primary()
    keys, next_id = alice.keys, 1
    for _ in range(3):
        answer = counts(alice)
        plan = plan_kem_refill(
            keys,
            stored=answer["kem_prekeys"],
            last_resort_stored=answer["last_resort_kem_prekey"],
            next_id=next_id,
            target=50,
            rng=system_rng,
        )
        if plan is None:
            break
        keys, next_id = plan.keys, plan.next_id
        for body in plan.uploads:
            ok(alice.transport.post("/api/prekeys", body))
    assert plan is None
    assert keys.last_resort_kem_prekey is not None
    assert counts(alice) == {
        "one_time_prekeys": 10,
        "kem_prekeys": 50,
        "last_resort_kem_prekey": keys.last_resort_kem_prekey.id,
    }
    peer = make_primary("bob")
    got = bundle(peer, alice)
    assert got["kem_prekey"]["id"] in {k.id for k in keys.kem_prekeys}
