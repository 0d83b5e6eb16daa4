"""Hostile input, property-based: random JSON to every HTTP endpoint and random frames to
every WebSocket frame type. Never a 5xx or a crash; a refused input stores nothing.

The budget is small by default; `PARLEY_FUZZ_EXAMPLES=2000 pytest tests/security` runs a
larger one (docs/operations.md)."""

from __future__ import annotations

import json
import os

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.asgi import application
from protocol import groups
from protocol.encoding import b64u_encode
from protocol.keys import kem_prekey_bytes
from tests.security.test_authorization import state_snapshot
from tests.support.actors import (
    CompanionActor,
    DjangoTransport,
    PrimaryActor,
    kem_prekey_upload,
    kem_public_key,
    link,
)
from tests.support.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"
EXAMPLES = int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "25"))
FIELDS = [
    "username",
    "display_name",
    "challenge_id",
    "credential",
    "device",
    "device_id",
    "identity_key",
    "name",
    "platform",
    "signed_prekey",
    "one_time_prekeys",
    "kem_prekeys",
    "last_resort_kem_prekey",
    "last_resort",
    "device_list",
    "device_signature",
    "signature",
    "ephemeral_key",
    "provisioning",
    "send_history",
    "id",
    "public_key",
    "recipient",
    "targets",
    "seqs",
    "type",
    "v",
    "version",
    "kind",
    "blob",
    "seq",
    "entry",
    "size",
    "blob_ids",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(
        ["AAAA", "A" * 22, "A" * 43, "alice", "", "\x00", "ÿ" * 70, "patch", "snapshot"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), values, max_size=8
)
# Raw text no JSON encoder writes: nesting far past the limit (alone, or inside a field),
# bodies and frames over their size limits, and what parsers disagree on (docs/protocol.md
# section 2.2).
depths = st.one_of(st.integers(min_value=33, max_value=100), st.sampled_from([999, 1000, 50_000]))
deep = st.builds(
    lambda n, shape: shape.replace("X", "[" * n, 1).replace("Y", "]" * n, 1),
    depths,
    st.sampled_from(["XY", "X", '{"device": X1Y}', '{"credential": {"response": XY}}']),
)
oversize = st.builds(
    lambda n, filler: '{"name": "' + filler * n + '"}',
    st.integers(min_value=70_000, max_value=600_000),  # é: over 1 MiB, a frame's limit
    st.sampled_from(["x", "é", "\\u0000"]),
)
slippery = st.builds(
    lambda field, value: f'{{"{field}": 1, "{field}": {value}}}',
    st.sampled_from(FIELDS),
    st.sampled_from(["1.0", "1e400", "NaN", "-Infinity", "9" * 5000, '"\\ud800"', "2"]),
)
raw_bodies = st.one_of(deep, oversize, slippery)
fuzz = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)

POST_PATHS = [
    "/api/accounts/register/options",
    "/api/accounts/register",
    "/api/accounts/signin/options",
    "/api/accounts/signin",
    "/api/accounts/reregister/options",
    "/api/accounts/reregister/verify",
    "/api/accounts/reregister",
    "/api/devices/signin/options",
    "/api/devices/signin",
    "/api/devices/list",
    "/api/devices/{laptop}/revoke",
    "/api/devices/{laptop}/rename",
    "/api/me/display-name",
    "/api/prekeys",
    "/api/accounts/alice/bundles",
    "/api/link",
    "/api/link/{link}/device-signature",
    "/api/link/{link}/redeem",
    "/api/link/{link}/cancel",
    "/api/link/{link}/approve/options",
    "/api/link/{link}/approve",
    "/api/link/{link}/complete",
    "/api/link/{link}/decline",
    "/api/state",
    "/api/groups/{group}/entries",
    "/api/attachments",
    "/api/attachments/grants",
    "/api/attachments/AAAAAAAAAAAAAAAAAAAAAA/fetched",
]


@pytest.fixture
def world(db):
    alice = PrimaryActor(  # of a build before version 2: the KEM tests publish its KEM prekeys
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username="alice", version_2=False
    ).sign_up()
    laptop = link(alice, CompanionActor(DjangoTransport()))
    waiting = CompanionActor(DjangoTransport())
    qr = waiting.open_link()
    return {
        "alice": alice,
        "laptop": laptop,
        "waiting": waiting,
        "ids": {"laptop": laptop.device_id, "link": qr.link_id, "group": "AAECAwQFBgcICQoLDA0ODw"},
    }


@pytest.mark.parametrize("path", POST_PATHS)
def test_random_json_to_an_endpoint_never_errors_and_stores_nothing_when_refused(world, path):
    url = path.format(**world["ids"])
    callers = [
        world["alice"].transport.client,
        world["waiting"].transport.client,
        DjangoTransport().client,
    ]

    @fuzz
    @given(
        body=st.one_of(bodies.map(json.dumps), raw_bodies),
        caller=st.sampled_from(range(len(callers))),
    )
    def probe(body, caller):
        before = state_snapshot()
        response = callers[caller].post(url, body, content_type="application/json")
        assert response.status_code < 500, response.content
        assert response["Content-Type"] == "application/json"
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "data"}
            assert state_snapshot() == before

    probe()


def test_raw_garbage_bodies_are_refused_with_json_errors(world):
    client = world["alice"].transport.client
    for body, content_type in [
        (b"\xff\xfe", "application/json"),
        (b"[]", "application/json"),
        (b"{", "application/json"),
        (b"{}", "text/plain"),
        (b"x" * 70_000, "application/json"),
    ]:
        response = client.post("/api/prekeys", body, content_type=content_type)
        assert 400 <= response.status_code < 500 and response.json()["error"]["code"]


def prekey_rows() -> dict[str, object]:
    """The stored prekeys themselves (state_snapshot counts rows; a last-resort KEM prekey is
    replaced in place)."""
    models = {
        m: apps.get_model("devices", m)
        for m in ("SignedPrekey", "OneTimePrekey", "KemPrekey", "LastResortKemPrekey")
    }
    return {
        name: sorted(
            (r[0], r[1], bytes(r[2]))
            for r in model.objects.values_list("device_id", "key_id", "public_key")
        )
        for name, model in models.items()
    }


# KEM prekey uploads near the valid ones (docs/protocol.md 27.6): one thing changed in a
# valid one, or nothing.
kem_mutations = st.one_of(
    st.just(("none",)),
    st.tuples(
        st.sampled_from(["key byte", "signature byte"]),
        st.sampled_from(["one-time", "last-resort"]),
        st.integers(min_value=0, max_value=1183),
        st.integers(min_value=1, max_value=255),
    ),
    st.tuples(
        st.just("key length"),
        st.sampled_from(["one-time", "last-resort"]),
        st.sampled_from([0, 1, 32, 1183, 1185, 1216, 2368]),
    ),
    st.tuples(st.just("flag"), st.sampled_from(["one-time", "last-resort"])),
    st.tuples(st.just("stored id"), st.sampled_from([1, 2])),
    st.tuples(st.just("count"), st.sampled_from([26, 30])),
    st.tuples(st.just("x25519 stored id"), st.sampled_from([1, 10])),
)


def test_kem_prekey_uploads_mutated_from_a_valid_one_store_all_or_nothing(world):
    """Whatever one thing is changed in a valid upload (a byte of a key or a signature, a key's
    length, the flag it is signed with, an id already stored, too many keys), it is refused
    with a 4xx and stores nothing; unchanged, all of it is stored."""
    alice = world["alice"]
    identity = alice.keys.identity
    client = alice.transport.client
    body = kem_prekey_upload(identity, [1, 2], last_resort_id=1000)
    assert (
        client.post(
            "/api/prekeys",
            json.dumps({"one_time_prekeys": [], **body}),
            content_type="application/json",
        ).status_code
        == 200
    )
    fresh = iter(range(1000, 2**31))  # ids stored: one-time 1 to 10, KEM 1 and 2

    def key(key_id: int, *, last_resort: bool, length: int = 1184) -> dict:
        """A KEM prekey signed with the flag `last_resort`, its key cut or doubled to `length`."""
        public = (kem_public_key(key_id % 64) * 2)[:length]
        signature = identity.sign(kem_prekey_bytes(key_id, last_resort, public))
        return {"id": key_id, "public_key": public, "signature": signature}

    @fuzz
    @given(mutation=kem_mutations)
    def probe(mutation):
        one_time = [key(next(fresh), last_resort=False) for _ in range(2)]
        last = key(next(fresh), last_resort=True)
        x25519 = [{"id": next(fresh), "public_key": b64u_encode(bytes(32))}]
        kind, *args = mutation
        target = one_time[0] if args and args[0] == "one-time" else last
        if kind in ("key byte", "signature byte"):
            field = "public_key" if kind == "key byte" else "signature"
            raw = bytearray(target[field])
            raw[args[1] % len(raw)] ^= args[2]
            target[field] = bytes(raw)
        elif kind == "key length":
            target.update(key(target["id"], last_resort=target is last, length=args[1]))
        elif kind == "flag":  # signed with the other flag
            target.update(key(target["id"], last_resort=target is not last))
        elif kind == "stored id":
            one_time[1] = key(args[0], last_resort=False)
        elif kind == "count":
            one_time += [key(next(fresh), last_resort=False) for _ in range(args[0] - 2)]
        elif kind == "x25519 stored id":
            x25519[0]["id"] = args[0]

        def wire(k: dict) -> dict:
            return {
                "id": k["id"],
                "public_key": b64u_encode(k["public_key"]),
                "signature": b64u_encode(k["signature"]),
            }

        upload = {
            "one_time_prekeys": x25519,
            "kem_prekeys": [wire(k) for k in one_time],
            "last_resort_kem_prekey": wire(last),
        }
        before, rows = client.get("/api/prekeys").json(), prekey_rows()
        response = client.post("/api/prekeys", json.dumps(upload), content_type="application/json")
        room = before["kem_prekeys"] + 2 <= django_settings.PARLEY_KEM_PREKEYS_MAX
        if kind == "none" and room:
            assert response.status_code == 200, response.content
            assert response.json() == {
                "one_time_prekeys": before["one_time_prekeys"] + 1,
                "kem_prekeys": before["kem_prekeys"] + 2,
                "last_resort_kem_prekey": last["id"],
            }
            return
        assert 400 <= response.status_code < 500, response.content
        error = response.json()["error"]
        assert set(error) == {"code", "message", "data"}
        if kind == "none":
            assert error["code"] == "too_many_prekeys"
        assert prekey_rows() == rows
        assert client.get("/api/prekeys").json() == before

    probe()


# Writes to the state log near the valid ones: versions around the current one, both kinds
# and some others, blobs valid, empty, non-canonical or not base64url at all.
state_writes = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.integers(min_value=-1, max_value=6), values),
        "kind": st.one_of(st.sampled_from(["patch", "snapshot", "Patch", ""]), values),
        "blob": st.one_of(
            st.binary(max_size=40).map(b64u_encode),
            st.sampled_from(["", "A", "AB", "AB=="]),
            values,
        ),
    },
)


def test_random_writes_to_the_state_log_keep_it_dense_and_store_nothing_when_refused(world):
    """Whatever is posted, a 201 is exactly a write at the current version + 1, the log stays
    dense from its latest snapshot, and a refusal stores nothing."""
    devices = [world["alice"].transport.client, world["laptop"].transport.client]

    @fuzz
    @given(body=state_writes, device=st.sampled_from(range(len(devices))))
    def probe(body, device):
        client = devices[device]
        before = client.get("/api/state").json()
        rows = state_snapshot()
        response = client.post("/api/state", json.dumps(body), content_type="application/json")
        assert response.status_code in {201, 400, 409, 413}, response.content
        after = client.get("/api/state").json()
        if response.status_code == 201:
            assert body["version"] == before["version"] + 1 == after["version"]
            assert after["entries"][-1]["blob"] == body["blob"]
        else:
            assert set(response.json()["error"]) == {"code", "message", "data"}
            assert state_snapshot() == rows
        versions = [e["version"] for e in after["entries"]]
        assert versions == list(range(versions[0], after["version"] + 1)) if versions else True
        assert [e["kind"] for e in after["entries"][1:]].count("snapshot") == 0

    probe()


def test_entries_mutated_from_a_valid_one_are_refused_with_4xx_and_store_nothing(world):
    """Bytes flipped, cut or appended in a signed group entry: never a 5xx; only the valid
    entry itself is stored."""
    alice = world["alice"]
    group_id = bytes(range(16))
    url = f"/api/groups/{b64u_encode(group_id)}/entries"
    client = alice.transport.client

    def entry(seq: int, previous: bytes, kind: groups.EntryKind, accounts: list[str]) -> bytes:
        return groups.sign_entry(
            group_id=group_id,
            seq=seq,
            previous=previous,
            kind=kind,
            actor="alice",
            identity=alice.keys.identity,
            timestamp=0,
            accounts=accounts,
            name="g" if kind is groups.EntryKind.CREATE else "",
        )

    create = entry(0, groups.ZERO_HASH, groups.EntryKind.CREATE, ["alice"])
    body = {"seq": 0, "entry": b64u_encode(create)}
    assert client.post(url, json.dumps(body), content_type="application/json").status_code == 201
    valid = entry(1, groups.entry_hash(create), groups.EntryKind.ADD, ["bobby"])

    @fuzz
    @given(
        at=st.integers(min_value=0, max_value=len(valid) - 1),
        flip=st.integers(min_value=1, max_value=255),
        cut=st.integers(min_value=0, max_value=len(valid)),
        tail=st.binary(max_size=8),
        seq=st.sampled_from([0, 1, 2]),
    )
    def probe(at, flip, cut, tail, seq):
        mutated = (valid[:at] + bytes([valid[at] ^ flip]) + valid[at + 1 :])[:cut] + tail
        rows = state_snapshot()
        body = {"seq": seq, "entry": b64u_encode(mutated)}
        response = client.post(url, json.dumps(body), content_type="application/json")
        assert 400 <= response.status_code < 500, response.content
        assert set(response.json()["error"]) == {"code", "message", "data"}
        assert state_snapshot() == rows

    probe()


@pytest.mark.parametrize("after", ["", "0", "-0", "+1", "1e3", "0x1", "١", " 1", "9" * 40, "%00"])
def test_a_group_read_with_any_after_is_an_answer_or_a_4xx(world, after):
    response = world["alice"].transport.client.get(
        f"/api/groups/AAECAwQFBgcICQoLDA0ODw/entries?after={after}"
    )
    assert response.status_code in {400, 404}, response.content
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("after", ["", "0", "-0", "+1", "1e3", "0x1", "١", " 1", "9" * 40, "%00"])
def test_a_state_read_with_any_after_is_an_answer_or_a_400(world, after):
    response = world["alice"].transport.client.get(f"/api/state?after={after}")
    assert response.status_code in {200, 400}, response.content
    assert response["Content-Type"] == "application/json"


frames = st.one_of(
    st.text(min_size=1, max_size=60),  # the test communicator cannot send an empty frame
    bodies.map(json.dumps),
    raw_bodies,
    st.builds(lambda body: body.replace("{", '{"type": "ping", "v": 1, ', 1), raw_bodies),
    st.builds(
        lambda t, b: json.dumps({"type": t, "v": 1, **b}),
        st.sampled_from(["send", "ack", "fetch", "ping", "deliver", "x"]),
        bodies,
    ),
)


@pytest.mark.django_db(transaction=True)
def test_random_frames_get_an_error_frame_or_an_answer_and_the_socket_survives():
    alice = PrimaryActor(  # of a build before version 2: the KEM tests publish its KEM prekeys
        DjangoTransport(), SoftAuthenticator(origin=ORIGIN), username="alice", version_2=False
    ).sign_up()
    cookie = "; ".join(f"{k}={v.value}" for k, v in alice.transport.client.cookies.items())

    async def exchange(frame: str) -> list[dict]:
        socket = WebsocketCommunicator(
            application,
            "/ws/device/",
            headers=[(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())],
        )
        assert (await socket.connect())[0]
        await socket.send_to(text_data=frame)
        await socket.send_to(text_data=json.dumps({"type": "ping", "v": 1, "id": "alive"}))
        replies = []
        while True:
            reply = await socket.receive_json_from(timeout=5)
            replies.append(reply)
            if reply == {"type": "pong", "v": 1, "id": "alive"}:
                break
        await socket.disconnect()
        return replies

    @fuzz
    @given(frame=frames)
    def probe(frame):
        before = state_snapshot()
        replies = async_to_sync(exchange)(frame)
        for reply in replies[:-1]:
            assert reply["type"] in {"error", "pong", "deliver"}, reply
            if reply["type"] == "error":
                assert reply["code"] and reply["message"]
        presence = {"devices.DeviceSocket", "devices.ServerProcess"}  # the socket itself
        assert {k: v for k, v in state_snapshot().items() if k not in presence} == {
            k: v for k, v in before.items() if k not in presence
        }

    probe()
