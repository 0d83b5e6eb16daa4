"""The server's part of group membership logs (docs/protocol.md sections 19.4 and 25.7):
signed entries stored by compare-and-swap at head + 1 after the checks of section 25.2 against
the stored chain, read by members and by former members up to their removal, and a doorbell
to the sockets of every account the entry concerns. Entries are real, signed by real device
keys from tests/support/actors.py."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from messaging.models import GroupEntry
from messaging.schemas import GROUP_ENTRY_MAX_BYTES, GROUP_PAGE_ENTRIES
from protocol import groups
from protocol.encoding import b64u_decode, b64u_encode
from protocol.groups import EntryKind
from protocol.keys import IdentityKeyPair
from tests.messaging.test_state_log import device_socket, make_primary
from tests.support.actors import CompanionActor, DjangoTransport, link

GROUP = bytes(range(16))
GROUP_URL = f"/api/groups/{b64u_encode(GROUP)}/entries"


@dataclass
class Writer:
    """A device that signs entries: its account (the actor), its key and its session."""

    account: str
    identity: IdentityKeyPair
    transport: DjangoTransport


def writer(actor, account: str | None = None) -> Writer:
    return Writer(account or actor.username, actor.keys.identity, actor.transport)


@dataclass
class Chain:
    """The test's own copy of the log: the seq and hash the next entry follows."""

    group_id: bytes = GROUP
    seq: int = -1
    head: bytes = groups.ZERO_HASH

    def sign(
        self, by: Writer, kind: EntryKind, accounts=(), name: str = "", **changes
    ) -> tuple[int, bytes]:
        fields = {
            "group_id": self.group_id,
            "seq": self.seq + 1,
            "previous": self.head,
            "kind": kind,
            "actor": by.account,
            "identity": by.identity,
            "timestamp": 1_700_000_000_000,
            "accounts": accounts,
            "name": name,
            **changes,
        }
        return fields["seq"], groups.sign_entry(**fields)

    def write(self, by: Writer, kind: EntryKind, accounts=(), name: str = "") -> None:
        seq, wire = self.sign(by, kind, accounts, name)
        status, body = post(by.transport, seq, wire, self.group_id)
        assert (status, body) == (201, {"seq": seq}), body
        self.seq, self.head = seq, groups.entry_hash(wire)


def url(group_id: bytes) -> str:
    return f"/api/groups/{b64u_encode(group_id)}/entries"


def post(transport: DjangoTransport, seq: object, wire: bytes, group_id: bytes = GROUP):
    return post_body(transport, {"seq": seq, "entry": b64u_encode(wire)}, group_id)


def post_body(transport: DjangoTransport, body: dict, group_id: bytes = GROUP):
    response = transport.client.post(
        url(group_id), json.dumps(body), content_type="application/json"
    )
    return response.status_code, response.json()


def read(transport: DjangoTransport, after: int | None = None, group_id: bytes = GROUP):
    path = url(group_id) + ("" if after is None else f"?after={after}")
    response = transport.client.get(path)
    return response.status_code, response.json()


def seqs(page: dict) -> list[int]:
    return [e["seq"] for e in page["entries"]]


def stored(group_id: bytes = GROUP) -> list[int]:
    return list(
        GroupEntry.objects.filter(group_id=b64u_encode(group_id))
        .order_by("seq")
        .values_list("seq", flat=True)
    )


def refusal(answer: tuple[int, dict]) -> tuple[int, str, object]:
    status, body = answer
    return status, body["error"]["code"], body["error"]["data"].get("reason")


@pytest.fixture
def people(db):
    alice, bobby, carol = (make_primary(n) for n in ("alice", "bobby", "carol"))
    return {"alice": writer(alice), "bobby": writer(bobby), "carol": writer(carol), "_": alice}


@pytest.mark.django_db
def test_entries_at_the_next_seq_are_stored_and_every_member_reads_the_chain(people):
    alice, bobby, carol = people["alice"], people["bobby"], people["carol"]
    chain = Chain()
    chain.write(alice, EntryKind.CREATE, ["alice", "bobby"], name="Climbing")
    chain.write(alice, EntryKind.ADD, ["carol"])
    chain.write(alice, EntryKind.PROMOTE, ["bobby"])
    chain.write(bobby, EntryKind.RENAME, name="Bouldering")
    for member in (alice, bobby, carol):
        status, page = read(member.transport)
        assert (status, page["head"], seqs(page), page["more"]) == (200, 3, [0, 1, 2, 3], False)
    wires = [b64u_decode(e["entry"]) for e in read(carol.transport)[1]["entries"]]
    state = groups.verify_chain(
        wires,
        device_lists={"alice": [alice.identity.public], "bobby": [bobby.identity.public]},
    )
    assert (state.seq, state.head, state.name) == (3, chain.head, "Bouldering")
    assert seqs(read(bobby.transport, after=1)[1]) == [2, 3]
    assert read(bobby.transport, after=3)[1] == {"head": 3, "entries": [], "more": False}


@pytest.mark.django_db
def test_a_group_name_is_any_string_the_protocol_allows(people):
    chain = Chain()
    chain.write(people["alice"], EntryKind.CREATE, ["alice"], name="nul\x00 and ☃")
    chain.write(people["alice"], EntryKind.RENAME, name="x" * groups.MAX_GROUP_NAME_BYTES)
    assert seqs(read(people["alice"].transport)[1]) == [0, 1]


@pytest.mark.django_db
def test_a_companion_writes_for_its_account_with_its_own_key(people):
    laptop = link(people["_"], CompanionActor(DjangoTransport()))
    chain = Chain()
    chain.write(writer(laptop, "alice"), EntryKind.CREATE, ["alice"], name="Notes")
    chain.write(people["alice"], EntryKind.ADD, ["bobby"])
    assert stored() == [0, 1]


@pytest.mark.django_db
def test_an_entry_not_at_head_plus_one_is_a_409_with_the_head_and_stores_nothing(people):
    alice = people["alice"]
    seq, wire = Chain().sign(alice, EntryKind.RENAME, name="x", seq=3, previous=bytes(32))
    answer = post(alice.transport, 3, wire)
    assert refusal(answer)[:2] == (409, "group_head_moved")
    assert answer[1]["error"]["data"] == {"head": -1}
    chain = Chain()
    chain.write(alice, EntryKind.CREATE, ["alice"], name="g")
    _, again = Chain().sign(alice, EntryKind.CREATE, ["alice"], name="other")
    answer = post(alice.transport, 0, again)
    assert (answer[0], answer[1]["error"]["data"]) == (409, {"head": 0})
    _, late = chain.sign(alice, EntryKind.ADD, ["bobby"], seq=5)
    assert post(alice.transport, 5, late)[1]["error"]["data"] == {"head": 0}
    assert stored() == [0]
    chain.write(alice, EntryKind.ADD, ["bobby"])


def forged(chain: Chain, p) -> tuple[int, bytes]:
    seq, wire = chain.sign(p["alice"], EntryKind.ADD, ["carol"])
    return seq, wire[:-1] + bytes([wire[-1] ^ 1])


def signed_by_another_account(chain: Chain, p) -> tuple[int, bytes]:
    """Bob's device posts an entry naming alice as its actor, signed with his own key."""
    return chain.sign(
        Writer("alice", p["bobby"].identity, p["bobby"].transport), EntryKind.ADD, ["carol"]
    )


def alices_entry_relayed(chain: Chain, p) -> tuple[int, bytes]:
    """An entry alice really signed, posted by bob's device."""
    return chain.sign(p["alice"], EntryKind.ADD, ["carol"])


def add_by_non_admin(chain: Chain, p) -> tuple[int, bytes]:
    return chain.sign(p["bobby"], EntryKind.ADD, ["carol"])


def broken_previous(chain: Chain, p) -> tuple[int, bytes]:
    return chain.sign(p["alice"], EntryKind.ADD, ["carol"], previous=bytes(32))


def entry_at_another_seq(chain: Chain, p) -> tuple[int, bytes]:
    _, wire = chain.sign(p["alice"], EntryKind.ADD, ["carol"], seq=chain.seq + 2)
    return chain.seq + 1, wire


def entry_of_another_group(chain: Chain, p) -> tuple[int, bytes]:
    return chain.sign(p["alice"], EntryKind.ADD, ["carol"], group_id=bytes(16))


def add_of_a_member(chain: Chain, p) -> tuple[int, bytes]:
    return chain.sign(p["alice"], EntryKind.ADD, ["bobby"])


def second_create(chain: Chain, p) -> tuple[int, bytes]:
    return chain.sign(p["alice"], EntryKind.CREATE, ["alice"], name="again")


def names_a_non_username(chain: Chain, p) -> tuple[int, bytes]:
    return chain.sign(p["alice"], EntryKind.ADD, ["Carol\x00"])


def malformed(chain: Chain, p) -> tuple[int, bytes]:
    seq, wire = chain.sign(p["alice"], EntryKind.ADD, ["carol"])
    return seq, wire + b"\x00"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("make", "poster", "reason"),
    [
        (forged, "alice", "group_entry_forged"),
        (signed_by_another_account, "bobby", "not_this_account"),
        (alices_entry_relayed, "bobby", "not_this_account"),
        (add_by_non_admin, "bobby", "group_not_admin"),
        (broken_previous, "alice", "group_chain_broken"),
        (entry_at_another_seq, "alice", "wrong_seq"),
        (entry_of_another_group, "alice", "wrong_group"),
        (add_of_a_member, "alice", "group_rule_broken"),
        (second_create, "alice", "group_chain_broken"),
        (names_a_non_username, "alice", "malformed_account"),
        (malformed, "alice", "malformed_message"),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_an_entry_section_25_refuses_is_a_409_naming_the_check_and_stores_nothing(
    people, make, poster, reason
):
    chain = Chain()
    chain.write(people["alice"], EntryKind.CREATE, ["alice", "bobby"], name="g")
    seq, wire = make(chain, people)
    assert refusal(post(people[poster].transport, seq, wire)) == (
        409,
        "group_entry_refused",
        reason,
    )
    assert stored() == [0]
    assert stored(bytes(16)) == []
    chain.write(people["alice"], EntryKind.ADD, ["carol"])


@pytest.mark.django_db
def test_an_entry_signed_by_a_logged_out_device_of_the_account_is_refused(people):
    laptop = link(people["_"], CompanionActor(DjangoTransport()))
    chain = Chain()
    chain.write(people["alice"], EntryKind.CREATE, ["alice"], name="g")
    people["_"].revoke(laptop.device_id)
    _, wire = chain.sign(writer(laptop, "alice"), EntryKind.ADD, ["bobby"])
    answer = post(people["alice"].transport, 1, wire)
    assert refusal(answer) == (409, "group_entry_refused", "group_signer_unlisted")
    assert stored() == [0]


def large_create(alice: Writer, members: int) -> bytes:
    names = [f"member{n:03d}-" + "x" * 60 for n in range(members)]  # 72 bytes encoded each
    return Chain().sign(alice, EntryKind.CREATE, ["alice", *names], name="big")[1]


@pytest.mark.django_db
def test_an_entry_over_16_kib_is_a_413_before_it_is_checked(people):
    alice = people["alice"]
    wire = large_create(alice, 230)
    assert GROUP_ENTRY_MAX_BYTES < len(wire) < GROUP_ENTRY_MAX_BYTES + 1024
    status, body = post(alice.transport, 0, wire)
    assert (status, body["error"]["code"], body["error"]["data"]) == (
        413,
        "too_large",
        {"field": "entry", "limit": GROUP_ENTRY_MAX_BYTES},
    )
    larger = large_create(alice, 255)  # a body over the endpoint's limit: refused unread
    assert len(larger) <= groups.MAX_GROUP_ENTRY_BYTES
    assert post(alice.transport, 0, larger)[1]["error"]["code"] == "too_large"
    assert stored() == []
    names = [f"member{n:03d}_" + "x" * 22 for n in range(255)]  # 32 characters, the longest
    seq, largest = Chain().sign(alice, EntryKind.CREATE, ["alice", *names], name="n" * 256)
    assert post(alice.transport, 0, largest)[0] == 201  # the largest entry of 256 members


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"seq": 0},
        {"entry": "AAAA"},
        {"seq": -1, "entry": "AAAA"},
        {"seq": True, "entry": "AAAA"},
        {"seq": "0", "entry": "AAAA"},
        {"seq": 0, "entry": "A"},
        {"seq": 0, "entry": ["AAAA"]},
    ],
    ids=str,
)
def test_a_malformed_write_is_a_400_and_stores_nothing(people, body):
    assert post_body(people["alice"].transport, body)[0] == 400
    assert stored() == []


@pytest.mark.django_db
@pytest.mark.parametrize("group_id", ["short", "A" * 23, "AAAAAAAAAAAAAAAAAAAAA+", "%E2%98%83"])
def test_a_malformed_group_id_is_a_400_naming_it(people, group_id):
    response = people["alice"].transport.client.get(f"/api/groups/{group_id}/entries")
    assert (response.status_code, response.json()["error"]["data"]) == (400, {"field": "group_id"})


@pytest.mark.django_db
@pytest.mark.parametrize("after", ["-2", "abc", "1.5", "9" * 17, "--1"])
def test_a_malformed_after_is_a_400_naming_it(people, after):
    chain = Chain()
    chain.write(people["alice"], EntryKind.CREATE, ["alice"], name="g")
    status, body = read(people["alice"].transport, after)  # type: ignore[arg-type]
    assert (status, body["error"]["data"]) == (400, {"field": "after"})


@pytest.mark.django_db
def test_writes_are_rate_limited_per_device(people, settings):
    settings.PARLEY_RATE_LIMITS = {**settings.PARLEY_RATE_LIMITS, "groups": (2, 60)}
    alice, bobby = people["alice"], people["bobby"]
    chain = Chain()
    chain.write(alice, EntryKind.CREATE, ["alice", "bobby"], name="g")
    chain.write(alice, EntryKind.PROMOTE, ["bobby"])
    seq, wire = chain.sign(alice, EntryKind.ADD, ["carol"])
    status, body = post(alice.transport, seq, wire)
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert body["error"]["data"]["retry_after_ms"] > 0
    assert stored() == [0, 1]
    chain.write(bobby, EntryKind.ADD, ["carol"])  # another device, its own budget


@pytest.mark.django_db
def test_a_removed_member_reads_up_to_its_removal_and_a_stranger_gets_404(people):
    alice, bobby, carol = people["alice"], people["bobby"], people["carol"]
    dave = writer(make_primary("dave1"))
    chain = Chain()
    chain.write(alice, EntryKind.CREATE, ["alice", "bobby", "carol"], name="g")
    chain.write(alice, EntryKind.REMOVE, ["bobby"])
    chain.write(alice, EntryKind.PROMOTE, ["carol"])
    chain.write(carol, EntryKind.LEAVE)
    chain.write(alice, EntryKind.RENAME, name="later")
    status, page = read(bobby.transport)
    assert (status, page["head"], seqs(page), page["more"]) == (200, 1, [0, 1], False)
    assert read(bobby.transport, after=1)[1] == {"head": 1, "entries": [], "more": False}
    assert read(carol.transport)[1]["head"] == 3  # carol's own leave, nothing after
    assert read(alice.transport)[1]["head"] == 4
    missing = read(dave.transport, group_id=bytes(16))
    for answer in (
        read(dave.transport),
        post(dave.transport, 5, chain.sign(dave, EntryKind.LEAVE)[1]),
    ):
        assert (answer[0], answer[1]["error"]) == (404, missing[1]["error"])
    assert missing[0] == 404 and missing[1]["error"]["code"] == "group_not_found"
    chain.write(alice, EntryKind.ADD, ["bobby"])  # back in: the whole log again
    assert read(bobby.transport)[1]["head"] == 5


@pytest.mark.django_db
def test_pages_hold_500_entries_and_more_says_to_ask_again(people):
    alice = people["alice"]
    chain = Chain()
    chain.write(alice, EntryKind.CREATE, ["alice"], name="g")
    entries = []
    for n in range(1, GROUP_PAGE_ENTRIES + 20):
        seq, wire = chain.sign(alice, EntryKind.RENAME, name=f"name {n}")
        entries.append(
            GroupEntry(group_id=b64u_encode(GROUP), seq=seq, entry=wire, created_at=timezone.now())
        )
        chain.seq, chain.head = seq, groups.entry_hash(wire)
    GroupEntry.objects.bulk_create(entries)  # read only: the stored state stays at seq 0
    first = read(alice.transport)[1]
    assert (len(first["entries"]), first["more"], first["entries"][-1]["seq"]) == (500, True, 499)
    second = read(alice.transport, after=499)[1]
    assert (seqs(second), second["more"]) == (list(range(500, 520)), False)


def at_once(posts: list[tuple[Writer, int, bytes]]) -> list[tuple[int, dict]]:
    """Each post from its own thread and database connection, released together."""
    answers: list[tuple[int, dict]] = []
    barrier = threading.Barrier(len(posts))

    def device(by: Writer, seq: int, wire: bytes) -> None:
        try:
            barrier.wait(timeout=30)
            answers.append(post(by.transport, seq, wire))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=device, args=p) for p in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


@pytest.mark.django_db(transaction=True)
def test_two_devices_writing_at_the_same_seq_at_once_get_one_201_and_one_409():
    """Real concurrent requests, one thread and database connection each, on SQLite."""
    primary = make_primary("alice")
    laptop = link(primary, CompanionActor(DjangoTransport()))
    devices = [writer(primary), writer(laptop, "alice")]
    chain = Chain()
    creates = [
        chain.sign(d, EntryKind.CREATE, ["alice"], name=f"by {i}") for i, d in enumerate(devices)
    ]
    answers = at_once([(d, *s) for d, s in zip(devices, creates, strict=True)])
    assert sorted(s for s, _ in answers) == [201, 409], answers  # no row to lock: the key decides
    won = b64u_decode(read(devices[0].transport)[1]["entries"][0]["entry"])
    chain.seq, chain.head = 0, groups.entry_hash(won)
    for round_ in range(10):
        signed = [
            chain.sign(d, EntryKind.RENAME, name=f"{round_} by {i}") for i, d in enumerate(devices)
        ]
        answers = at_once([(d, *s) for d, s in zip(devices, signed, strict=True)])
        assert sorted(s for s, _ in answers) == [201, 409], answers
        assert [b["error"]["data"] for s, b in answers if s == 409] == [{"head": chain.seq + 1}]
        won = b64u_decode(read(devices[0].transport, after=chain.seq)[1]["entries"][0]["entry"])
        assert won in {wire for _, wire in signed}
        chain.seq, chain.head = chain.seq + 1, groups.entry_hash(won)
    assert stored() == list(range(11))


@pytest.mark.django_db(transaction=True)
async def test_an_entry_rings_members_and_the_removed_through_redis_not_the_writer(
    redis_channel_layer,
):
    alice, bobby, carol, dave = [
        writer(await sync_to_async(make_primary)(n)) for n in ("alice", "bobby", "carol", "dave1")
    ]
    at = {w.account: await device_socket(w.transport) for w in (alice, bobby, carol, dave)}
    chain = Chain()
    await sync_to_async(chain.write)(alice, EntryKind.CREATE, ["alice", "bobby", "carol"], name="g")
    ring = {"type": "group_changed", "v": 1, "group_id": b64u_encode(GROUP), "seq": 0}
    for name in ("bobby", "carol"):
        assert await at[name].receive_json_from(timeout=5) == ring
    await sync_to_async(chain.write)(alice, EntryKind.REMOVE, ["bobby"])
    for name in ("bobby", "carol"):
        assert await at[name].receive_json_from(timeout=5) == {**ring, "seq": 1}
    await sync_to_async(chain.write)(alice, EntryKind.RENAME, name="h")
    assert await at["carol"].receive_json_from(timeout=5) == {**ring, "seq": 2}
    for socket in at.values():
        assert await socket.receive_nothing(timeout=0.5)  # the writer, bob now, dave ever
        await socket.disconnect()


def listed(transport: DjangoTransport) -> list[tuple[str, int]]:
    response = transport.client.get("/api/groups")
    assert response.status_code == 200, response.json()
    return [(g["group_id"], g["head"]) for g in response.json()["groups"]]


@pytest.mark.django_db
def test_the_groups_an_account_may_read_are_listed_with_the_head_it_may_read_to(people):
    alice, bobby, carol = people["alice"], people["bobby"], people["carol"]
    other = Chain(group_id=bytes(range(1, 17)))
    chain = Chain()
    chain.write(alice, EntryKind.CREATE, ["alice", "bobby"], name="Climbing")
    chain.write(alice, EntryKind.ADD, ["carol"])
    other.write(bobby, EntryKind.CREATE, ["bobby"], name="Alone")
    assert listed(carol.transport) == [(b64u_encode(GROUP), 1)]
    chain.write(alice, EntryKind.REMOVE, ["carol"])
    chain.write(alice, EntryKind.RENAME, name="Bouldering")
    assert listed(alice.transport) == [(b64u_encode(GROUP), 3)]
    assert sorted(listed(bobby.transport)) == sorted(
        [(b64u_encode(GROUP), 3), (b64u_encode(other.group_id), 0)]
    )
    assert listed(carol.transport) == [(b64u_encode(GROUP), 2)]  # up to her removal
    stranger = make_primary("dave")
    assert listed(stranger.transport) == []
    anonymous = DjangoTransport().client.get("/api/groups")
    assert anonymous.status_code in (401, 403)
