"""Scenarios of the group machine (docs/protocol.md section 25.8): reading and verifying the log,
taking distributions and messages only from members' listed devices, holding what comes
early, refusing what a misbehaving server or member sends, and planning sends with rotation.

Entries, distributions and messages are built here with the pure functions of sections 25.1
to 25.5 (protocol/groups.py, protocol/senderkeys.py), the sends from each event's seed in the
order the machine draws (a first sender key, a rotation, the nonce); nothing here imports the
engine.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from protocol import primitives
from protocol.content import Content, ContentType, encode_content
from protocol.encoding import b64u_decode
from protocol.groups import (
    ZERO_HASH,
    EntryKind,
    GroupEntry,
    GroupState,
    decode_entry,
    entry_bytes,
    sign_entry,
    verify_chain,
)
from protocol.keys import IdentityKeyPair
from protocol.rng import TestRng
from protocol.senderkeys import (
    ReceivingKey,
    SenderKey,
    distribution_body,
    encrypt_group,
    new_sender_key,
    prepare_send,
    receiving_key,
)
from tests.vectors.scenarios.builders import (
    ALICE,
    ALICE_LAPTOP,
    BOB,
    BOB_LAPTOP,
    INTRUDER,
    SEEDS,
    T0,
    b64,
    identity,
    seed,
)

GROUP_ID = TestRng(seed("scenario group id"))(16)
GID = b64(GROUP_ID)
CAROL, DAVE = identity("carol phone"), identity("dave phone")
KEYS: dict[str, IdentityKeyPair] = {
    "alice-phone": ALICE,
    "alice-laptop": ALICE_LAPTOP,
    "bob-phone": BOB,
    "bob-laptop": BOB_LAPTOP,
    "carol-phone": CAROL,
    "dave-phone": DAVE,
}
ACCOUNT = {device: device.split("-")[0] for device in KEYS}
T1, T2, T3 = T0 + 1000, T0 + 2000, T0 + 3000


def lists(*accounts: str, drop: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    """The lists the adapter passes: each account's devices but `drop`."""
    return {
        a: {d: b64(k.public) for d, k in sorted(KEYS.items()) if ACCOUNT[d] == a and d not in drop}
        for a in accounts
    }


def raw_lists(json_lists: dict[str, dict[str, str]]) -> dict[str, list[bytes]]:
    return {a: [b64u_decode(k) for k in ds.values()] for a, ds in json_lists.items()}


class Log:
    """A membership log signed entry by entry (section 25.1)."""

    def __init__(self) -> None:
        self.wires: list[bytes] = []
        self.states: list[GroupState] = []

    def write(
        self,
        kind: EntryKind,
        device: str,
        accounts: tuple[str, ...] = (),
        name: str = "",
        key: IdentityKeyPair | None = None,
    ) -> bytes:
        seq = len(self.wires)
        wire = sign_entry(
            group_id=GROUP_ID,
            seq=seq,
            previous=self.states[-1].head if self.states else ZERO_HASH,
            kind=kind,
            actor=ACCOUNT[device],
            identity=key or KEYS[device],
            timestamp=T0 + seq,
            accounts=accounts,
            name=name,
        )
        everyone = raw_lists(lists("alice", "bob", "carol", "dave"))
        previous = self.states[-1] if self.states else None
        if key is None:
            self.states.append(verify_chain([wire], device_lists=everyone, state=previous))
        self.wires.append(wire)
        return wire

    def state(self, seq: int) -> dict[str, Any]:
        return self.states[seq].to_dict()

    def head(self, seq: int) -> tuple[int, bytes]:
        return seq, self.states[seq].head


def main_log() -> Log:
    """0 create (alice, bob, carol) by alice's phone; 1 rename by alice's laptop; 2 add dave
    by alice's phone; 3 remove bob by alice's laptop."""
    log = Log()
    log.write(EntryKind.CREATE, "alice-phone", ("alice", "bob", "carol"), "Trip")
    log.write(EntryKind.RENAME, "alice-laptop", name="Trip 2027")
    log.write(EntryKind.ADD, "alice-phone", ("dave",))
    log.write(EntryKind.REMOVE, "alice-laptop", ("bob",))
    return log


def record(
    log: Log | None = None,
    seq: int | None = None,
    *,
    device: str = "alice-laptop",
    receiving: dict[str, list[ReceivingKey]] | None = None,
    sending: SenderKey | None = None,
) -> dict[str, Any]:
    """The record of `device` holding the chain up to `seq` (none: nothing yet)."""
    return {
        "account_id": ACCOUNT[device],
        "device_id": device,
        "group_id": GID,
        "chain": None if log is None or seq is None else log.state(seq),
        "wanted": -1,
        "conflict": None,
        "withheld": False,
        "request": None,
        "next_request": 1,
        "fetch_again": False,
        "page": [],
        "page_more": False,
        "sending": None if sending is None else sending.to_dict(),
        "receiving": {d: [k.to_dict() for k in ks] for d, ks in (receiving or {}).items()},
        "held": [],
        "sends": [],
    }


def text(words: str) -> bytes:
    return encode_content(Content(ContentType.TEXT, bytes(16), T0, 1, bytes(32), {"text": words}))


def sender_key(device: str, name: str) -> SenderKey:
    return new_sender_key(
        TestRng(seed(f"scenario group sender {name}")),
        group_id=GROUP_ID,
        sender=ACCOUNT[device],
        device=device,
    )


# ---------------------------------------------------------------- events and effects


def fetch_wanted(now: int) -> dict[str, Any]:
    return {"type": "group_fetch_wanted", "now": now}


def get(request_id: str, after: int) -> dict[str, Any]:
    return {
        "type": "http_request",
        "request_id": request_id,
        "method": "GET",
        "path": f"/api/groups/{GID}/entries?after={after}",
        "body": None,
    }


def page(log: Log, first: int, last: int, more: bool = False) -> dict[str, Any]:
    return {
        "head": last if more else len(log.wires) - 1,
        "entries": [{"seq": n, "entry": b64(log.wires[n])} for n in range(first, last + 1)],
        "more": more,
    }


def answered(
    request_id: str, body: Any, known: dict[str, Any], now: int, status: int = 200
) -> dict[str, Any]:
    return {
        "type": "group_answered",
        "request_id": request_id,
        "status": status,
        "body": body,
        "lists": known,
        "now": now,
    }


def changed(log: Log, seq: int) -> dict[str, Any]:
    entry = decode_entry(log.wires[seq])
    return notice(
        "group_changed",
        seq=seq,
        kind=entry.kind.name.lower(),
        actor=entry.actor,
        accounts=list(entry.accounts),
        name=entry.name,
        timestamp=entry.timestamp,
    )


def notice(what: str, **data: Any) -> dict[str, Any]:
    return {"type": "group_notice", "code": what, "data": data}


def lists_wanted(*accounts: str) -> dict[str, Any]:
    return {"type": "group_lists_wanted", "accounts": list(accounts)}


def lists_known(known: dict[str, Any], now: int, name: str) -> dict[str, Any]:
    return {
        "type": "group_lists_known",
        "lists": known,
        "now": now,
        "seed": b64(seed(f"scenario group event {name}")),
    }


def key_received(
    device: str, body: dict[str, Any], known: dict[str, Any], now: int
) -> dict[str, Any]:
    return {
        "type": "group_key_received",
        "sender": ACCOUNT[device],
        "sender_device": device,
        "body": body,
        "lists": known,
        "now": now,
    }


def message_received(message: bytes, known: dict[str, Any], now: int) -> dict[str, Any]:
    return {"type": "group_message_received", "message": b64(message), "lists": known, "now": now}


def content(device: str, plaintext: bytes, head_seq: int) -> dict[str, Any]:
    return {
        "type": "group_content",
        "sender": ACCOUNT[device],
        "sender_device": device,
        "plaintext": b64(plaintext),
        "head_seq": head_seq,
    }


TEXT_ID = b64(bytes(16))  # the message id of every text() here


def receipt_body(kind: str, ids: list[str], group_id: str = GID) -> dict[str, Any]:
    return {"kind": kind, "message_ids": ids, "group_id": group_id}


def receipt_sent(account: str, kind: str, ids: list[str]) -> dict[str, Any]:
    return {
        "type": "send_content",
        "recipient": account,
        "content_type": int(ContentType.RECEIPT),
        "body": receipt_body(kind, ids),
    }


def delivered(device: str) -> dict[str, Any]:
    """The delivery receipt a member's text is answered with, to its sender (25.10)."""
    return receipt_sent(ACCOUNT[device], "delivered", [TEXT_ID])


def receipt_received(device: str, body: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "group_receipt_received",
        "sender": ACCOUNT[device],
        "sender_device": device,
        "body": body,
        "lists": known,
        "now": T2,
    }


def read(account: str, ids: list[str], *, receipts: bool = True) -> dict[str, Any]:
    return {
        "type": "group_messages_read",
        "sender": account,
        "message_ids": ids,
        "read_receipts": receipts,
        "now": T2,
    }


def refused(code: str, device: str | None, error: str) -> dict[str, Any]:
    if device is None:
        return notice(code, error=error)
    return notice(code, sender=ACCOUNT[device], sender_device=device, error=error)


def send_wanted(send_id: str, plaintext: bytes, known: dict[str, Any], now: int) -> dict[str, Any]:
    return {
        "type": "group_send_wanted",
        "send_id": send_id,
        "plaintext": b64(plaintext),
        "lists": known,
        "now": now,
        "seed": b64(seed(f"scenario group event {send_id}")),
    }


class Sender:
    """The sending side as section 25.4 draws it, to write the expected `group_send`."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.key: SenderKey | None = None
        self.last: frozenset[bytes] = frozenset()

    def take_back(self, given: frozenset[bytes]) -> None:
        """The server refused the send that gave these devices the key."""
        assert self.key is not None
        self.key = replace(self.key, distributed=self.key.distributed - given)

    def send(
        self,
        send_id: str,
        plaintext: bytes,
        known: dict[str, dict[str, str]],
        chain: GroupState,
        rng_name: str | None = None,
    ) -> dict[str, Any]:
        rng = TestRng(seed(f"scenario group event {rng_name or send_id}"))
        account = ACCOUNT[self.device]
        targets = [
            (m, d, b64u_decode(k))
            for m in sorted(chain.members)
            for d, k in sorted(known[m].items())
            if (m, d) != (account, self.device)
        ]
        key = self.key or new_sender_key(rng, group_id=GROUP_ID, sender=account, device=self.device)
        plan = prepare_send(key, [k for _, _, k in targets], rng)
        body = distribution_body(plan.key, head_seq=chain.seq, head_hash=chain.head)
        self.key, message = encrypt_group(
            plan.key, plaintext, head_seq=chain.seq, head_hash=chain.head, rng=rng
        )
        wanted = set(plan.distribute_to)
        self.last = frozenset(wanted)
        return {
            "type": "group_send",
            "send_id": send_id,
            "message": b64(message),
            "targets": [{"account": m, "device_id": d} for m, d, _ in targets],
            "distributions": [
                {"account": m, "device_id": d, "body": body} for m, d, k in targets if k in wanted
            ],
            "rotated": plan.rotated,
        }


def group_scenario(
    description: str,
    initial: dict[str, Any],
    steps: list[tuple[str, dict[str, Any], list[dict[str, Any]]]],
) -> dict[str, Any]:
    return {
        "description": description,
        "machine": "group",
        "seeds": {
            **SEEDS,
            "carol-phone": "scenario carol phone",
            "dave-phone": "scenario dave phone",
            "group id": "scenario group id",
            "sender keys": "scenario group sender <name>",
            "events": "scenario group event <send id or name>",
        },
        "state": initial,
        "steps": [{"note": n, "event": e, "effects": fx} for n, e, fx in steps],
    }


# ---------------------------------------------------------------- the scenarios

EVERYONE = lists("alice", "bob", "carol", "dave")


def group_log_read() -> dict[str, Any]:
    log = main_log()
    known = EVERYONE
    return group_scenario(
        "A device reads a group's log page by page and verifies it against the lists it verified; one fetch is in flight at a time, a second want waits for its answer, an answer to nothing asked is ignored, and a refusal by the server is told.",
        record(),
        [
            ("a doorbell: the whole log is read", fetch_wanted(T1), [get("g1", -1)]),
            ("a second want while the first is in flight", fetch_wanted(T1), []),
            (
                "the first page: two entries, more to come; the second want is the next page",
                answered("g1", page(log, 0, 1, more=True), known, T1),
                [changed(log, 0), changed(log, 1), get("g2", 1)],
            ),
            (
                "the last page",
                answered("g2", page(log, 2, 3), known, T1),
                [changed(log, 2), changed(log, 3)],
            ),
            (
                "an answer to a request no longer in flight",
                answered("g1", page(log, 0, 1), known, T1),
                [],
            ),
            ("another doorbell: after the head", fetch_wanted(T2), [get("g3", 3)]),
            (
                "nothing new",
                answered("g3", {"head": 3, "entries": [], "more": False}, known, T2),
                [],
            ),
            ("and again", fetch_wanted(T3), [get("g4", 3)]),
            (
                "the server refuses: told, the chain kept",
                answered(
                    "g4",
                    {"error": {"code": "group_not_found", "message": "no such group"}},
                    known,
                    T3,
                    status=404,
                ),
                [notice("group_unavailable", status=404, code="group_not_found")],
            ),
        ],
    )


def group_log_refused() -> dict[str, Any]:
    log = main_log()
    forged = Log()
    forged.write(EntryKind.CREATE, "alice-phone", ("alice", "bob", "carol"), "Trip")
    # the server's own entry: an add of the intruder "by alice", signed with a key not listed
    forged.wires.append(
        sign_entry(
            group_id=GROUP_ID,
            seq=1,
            previous=log.states[0].head,
            kind=EntryKind.ADD,
            actor="alice",
            identity=INTRUDER,
            timestamp=T0 + 1,
            accounts=("mallory",),
        )
    )
    carol_admin = Log()
    carol_admin.write(EntryKind.CREATE, "alice-phone", ("alice", "bob", "carol"), "Trip")
    carol_admin.write(EntryKind.PROMOTE, "alice-phone", ("carol",))
    carol_admin.write(EntryKind.RENAME, "carol-phone", name="Carol's trip")
    without_carol = lists("alice", "bob")
    return group_scenario(
        "A page the chain refuses changes nothing: an entry the server wrote itself (signed by a key no list holds), entries numbered out of order, bytes that are no entry. A page signed by an account whose list the device lacks waits for that list, and is verified once it is known.",
        record(log, 0),
        [
            ("read", fetch_wanted(T1), [get("g1", 0)]),
            (
                "an entry signed by a key in no list: refused, the chain kept at 0",
                answered("g1", page(forged, 1, 1), EVERYONE, T1),
                [notice("group_refused", error="GroupSignerUnlisted", seq=0)],
            ),
            ("read again", fetch_wanted(T1), [get("g2", 0)]),
            (
                "an entry at the wrong position",
                answered(
                    "g2",
                    {"head": 2, "entries": [{"seq": 2, "entry": b64(log.wires[1])}], "more": False},
                    EVERYONE,
                    T1,
                ),
                [notice("group_refused", error="MalformedMessage", seq=0)],
            ),
            ("read again", fetch_wanted(T1), [get("g3", 0)]),
            (
                "bytes that are no entry",
                answered(
                    "g3",
                    {
                        "head": 1,
                        "entries": [{"seq": 1, "entry": b64(b"not an entry")}],
                        "more": False,
                    },
                    EVERYONE,
                    T1,
                ),
                [notice("group_refused", error="MalformedMessage", seq=0)],
            ),
            ("read again", fetch_wanted(T2), [get("g4", 0)]),
            (
                "a rename by carol, whose list the adapter did not pass: the page waits",
                answered("g4", page(carol_admin, 1, 2), without_carol, T2),
                [lists_wanted("carol")],
            ),
            (
                "carol's list is known: the page is verified",
                lists_known(EVERYONE, T2, "carol known"),
                [changed(carol_admin, 1), changed(carol_admin, 2)],
            ),
        ],
    )


def group_messages_taken() -> dict[str, Any]:
    log = main_log()
    bob = sender_key("bob-phone", "bob")
    bob_body = distribution_body(bob, head_seq=0, head_hash=log.states[0].head)
    rng = TestRng(seed("scenario group nonces bob"))
    messages = []
    key = bob
    for i in range(6):
        key, m = encrypt_group(
            key, text(f"bob {i}"), head_seq=0, head_hash=log.states[0].head, rng=rng
        )
        messages.append(m)
    carol = sender_key("carol-phone", "carol")
    carol_body = distribution_body(carol, head_seq=0, head_hash=log.states[0].head)
    _, carol_0 = encrypt_group(
        carol, text("carol 0"), head_seq=0, head_hash=log.states[0].head, rng=rng
    )
    tampered = bytearray(messages[2])
    tampered[-70] ^= 1  # a ciphertext byte: the signature no longer verifies
    ahead = log.head(1)
    _, bob_ahead = encrypt_group(
        key, text("bob after the rename"), head_seq=ahead[0], head_hash=ahead[1], rng=rng
    )
    known = lists("alice", "bob", "carol")
    return group_scenario(
        "Bob's phone's distribution comes over its pairwise session, then its messages: decrypted in any order (the skipped keys kept), a replay and a tampered message refused. Carol's message comes before her distribution: it is held and decrypted when the key comes. A message whose head is ahead of the chain is held, the log read, and then it is decrypted.",
        record(log, 0),
        [
            ("bob's distribution", key_received("bob-phone", bob_body, known, T1), []),
            (
                "bob's message 0",
                message_received(messages[0], known, T1),
                [content("bob-phone", text("bob 0"), 0), delivered("bob-phone")],
            ),
            (
                "bob's message 5",
                message_received(messages[5], known, T1),
                [content("bob-phone", text("bob 5"), 0), delivered("bob-phone")],
            ),
            (
                "bob's message 1, from the skipped keys",
                message_received(messages[1], known, T1),
                [content("bob-phone", text("bob 1"), 0), delivered("bob-phone")],
            ),
            (
                "message 1 again: a replay",
                message_received(messages[1], known, T1),
                [refused("group_message_refused", "bob-phone", "ReplayDetected")],
            ),
            (
                "message 2 with a byte changed",
                message_received(bytes(tampered), known, T1),
                [refused("group_message_refused", "bob-phone", "InvalidSignature")],
            ),
            (
                "bob's distribution again: nothing changes",
                key_received("bob-phone", bob_body, known, T1),
                [],
            ),
            ("carol's message before her key: held", message_received(carol_0, known, T2), []),
            (
                "carol's distribution: the held message is decrypted",
                key_received("carol-phone", carol_body, known, T2),
                [content("carol-phone", text("carol 0"), 0), delivered("carol-phone")],
            ),
            (
                "bob's message names head 1, which this device has not read: held, the log read",
                message_received(bob_ahead, known, T3),
                [get("g1", 0)],
            ),
            (
                "the rename: the held message is decrypted",
                answered("g1", page(log, 1, 1), known, T3),
                [
                    changed(log, 1),
                    content("bob-phone", text("bob after the rename"), 1),
                    delivered("bob-phone"),
                ],
            ),
            (
                "garbage",
                message_received(b"\x01\x03 not a group message", known, T3),
                [refused("group_message_refused", None, "MalformedMessage")],
            ),
        ],
    )


def group_members_only() -> dict[str, Any]:
    log = main_log()
    h0 = log.head(0)
    dave = sender_key("dave-phone", "dave")
    dave_body = distribution_body(dave, head_seq=h0[0], head_hash=h0[1])
    bob_laptop = sender_key("bob-laptop", "bob laptop")
    laptop_body = distribution_body(bob_laptop, head_seq=h0[0], head_hash=h0[1])
    bob = sender_key("bob-phone", "bob")
    bob_body = distribution_body(bob, head_seq=h0[0], head_hash=h0[1])
    rng = TestRng(seed("scenario group nonces members"))
    _, dave_message = encrypt_group(dave, text("dave"), head_seq=h0[0], head_hash=h0[1], rng=rng)
    forked_head = (0, bytes(32))
    _, forked = encrypt_group(
        bob, text("forked"), head_seq=forked_head[0], head_hash=forked_head[1], rng=rng
    )
    known = lists("alice", "bob", "carol", "dave", drop=("bob-laptop",))
    bob_key = receiving_key(bob_body, sender="bob", device="bob-phone")
    return group_scenario(
        "Only members' listed devices count: dave, not a member at the chain's head, is refused, key and message; a device that is not in its account's verified list is refused. A message whose head has another hash at a known seq is a fork: told once, refused, and the device stops sending to the group.",
        record(log, 0, receiving={"bob-phone": [bob_key]}),
        [
            (
                "dave's distribution: not a member at seq 0",
                key_received("dave-phone", dave_body, known, T1),
                [refused("group_key_refused", "dave-phone", "not_a_member")],
            ),
            (
                "dave's message: not a member (and no key)",
                message_received(dave_message, known, T1),
                [refused("group_message_refused", "dave-phone", "not_a_member")],
            ),
            (
                "bob's laptop is not in bob's verified list",
                key_received("bob-laptop", laptop_body, known, T1),
                [refused("group_key_refused", "bob-laptop", "device_unlisted")],
            ),
            (
                "bob's message names another entry at seq 0",
                message_received(forked, known, T2),
                [
                    notice("group_forked", seq=0),
                    refused("group_message_refused", "bob-phone", "GroupChainForked"),
                ],
            ),
            (
                "a send now is refused",
                send_wanted("s1", text("hello"), known, T2),
                [notice("group_send_refused", send_id="s1", reason="forked")],
            ),
        ],
    )


def group_entry_withheld() -> dict[str, Any]:
    log = main_log()
    bob = sender_key("bob-phone", "bob")
    h0 = log.head(0)
    bob_body = distribution_body(bob, head_seq=h0[0], head_hash=h0[1])
    rng = TestRng(seed("scenario group nonces withheld"))
    h2 = log.head(2)
    _, bob_at_2 = encrypt_group(
        bob, text("after dave joined"), head_seq=h2[0], head_hash=h2[1], rng=rng
    )
    known = EVERYONE
    return group_scenario(
        "Bob's signed message names head 2; the server serves the log only up to 1 (it keeps back an entry): the device says the server withholds an entry and sends nothing to the group until it has the entry.",
        record(log, 0),
        [
            ("bob's distribution", key_received("bob-phone", bob_body, known, T1), []),
            (
                "bob's message names head 2: held, the log read",
                message_received(bob_at_2, known, T1),
                [get("g1", 0)],
            ),
            (
                "the server serves entry 1 only",
                answered(
                    "g1",
                    {"head": 1, "entries": [{"seq": 1, "entry": b64(log.wires[1])}], "more": False},
                    known,
                    T1,
                ),
                [changed(log, 1), notice("group_withheld", wanted=2, served=1)],
            ),
            (
                "a send is refused while an entry is withheld",
                send_wanted("s1", text("hello"), known, T2),
                [notice("group_send_refused", send_id="s1", reason="withheld")],
            ),
            ("a doorbell", fetch_wanted(T2), [get("g2", 1)]),
            (
                "entry 2 comes: the held message is decrypted",
                answered("g2", page(log, 2, 2), known, T2),
                [
                    changed(log, 2),
                    content("bob-phone", text("after dave joined"), 2),
                    delivered("bob-phone"),
                ],
            ),
        ],
    )


def group_send_planned() -> dict[str, Any]:
    log = main_log()
    me = Sender("alice-laptop")
    known = EVERYONE
    first = me.send("s1", text("first"), known, log.states[1])
    second = me.send("s2", text("second"), known, log.states[1])
    dave_first = me.send("s3", text("dave is in"), known, log.states[2])
    after_removal = me.send("s4", text("bob is out"), known, log.states[3])
    without_dave = lists("alice", "carol")
    waited = me.send("s5", text("waited"), known, log.states[3], rng_name="dave known")
    bob_key = receiving_key(
        distribution_body(sender_key("bob-phone", "bob"), head_seq=0, head_hash=log.states[0].head),
        sender="bob",
        device="bob-phone",
    )
    return group_scenario(
        "Alice's laptop sends to the group: the first message distributes a new sender key to every other member device (its own phone included), the next one to nobody, after dave's add only to dave's phone, and after bob's removal the key rotates and goes to everyone left, so bob's devices read nothing after it (and bob's chains are dropped). A send that lacks a member's list waits for it.",
        record(log, 1, receiving={"bob-phone": [bob_key]}),
        [
            ("the first send", send_wanted("s1", text("first"), known, T1), [first]),
            ("the second: no distribution", send_wanted("s2", text("second"), known, T1), [second]),
            ("read", fetch_wanted(T1), [get("g1", 1)]),
            ("dave added", answered("g1", page(log, 2, 2), known, T1), [changed(log, 2)]),
            (
                "to dave's phone only",
                send_wanted("s3", text("dave is in"), known, T2),
                [dave_first],
            ),
            ("read", fetch_wanted(T2), [get("g2", 2)]),
            ("bob removed", answered("g2", page(log, 3, 3), known, T2), [changed(log, 3)]),
            ("rotated", send_wanted("s4", text("bob is out"), known, T2), [after_removal]),
            (
                "dave's list is not passed: the send waits for it",
                send_wanted("s5", text("waited"), without_dave, T3),
                [lists_wanted("dave")],
            ),
            ("dave's list known: sent", lists_known(known, T3, "dave known"), [waited]),
            (
                "alice's laptop left alice's list: nothing is sent",
                send_wanted(
                    "s6", text("gone"), lists("alice", "carol", "dave", drop=("alice-laptop",)), T3
                ),
                [notice("group_send_refused", send_id="s6", reason="device_removed")],
            ),
        ],
    )


def group_not_yet_member() -> dict[str, Any]:
    log = main_log()
    h2 = log.head(2)
    key = sender_key("alice-phone", "alice phone")
    body = distribution_body(key, head_seq=h2[0], head_hash=h2[1])
    rng = TestRng(seed("scenario group nonces newcomer"))
    _, hello = encrypt_group(key, text("welcome dave"), head_seq=h2[0], head_hash=h2[1], rng=rng)
    known = EVERYONE
    return group_scenario(
        "Dave's phone holds nothing of the group when alice's phone's distribution comes (it names head 2): it is held and the log read from the start; the message that follows is held too, and both are taken once the chain shows dave as a member. A send before any chain is refused.",
        record(device="dave-phone"),
        [
            (
                "a send before the device holds the group",
                send_wanted("s1", text("hi"), known, T1),
                [notice("group_send_refused", send_id="s1", reason="not_a_member")],
            ),
            (
                "alice's distribution: held, the log read",
                key_received("alice-phone", body, known, T1),
                [get("g1", -1)],
            ),
            (
                "alice's message: held, a second fetch wanted",
                message_received(hello, known, T1),
                [],
            ),
            (
                "the log up to dave's add: the key is taken, then the message",
                answered("g1", page(log, 0, 2), known, T1),
                [
                    changed(log, 0),
                    changed(log, 1),
                    changed(log, 2),
                    content("alice-phone", text("welcome dave"), 2),
                    delivered("alice-phone"),
                    get("g2", 2),
                ],
            ),
        ],
    )


def change_wanted(
    change_id: str,
    change: str,
    known: dict[str, Any],
    now: int,
    accounts: tuple[str, ...] = (),
    name: str = "",
    device: str = "alice-laptop",
) -> dict[str, Any]:
    return {
        "type": "group_change_wanted",
        "change_id": change_id,
        "change": change,
        "accounts": list(accounts),
        "name": name,
        "identity_key": b64(KEYS[device].public),
        "lists": known,
        "now": now,
    }


def unsigned(
    kind: EntryKind,
    seq: int,
    previous: bytes,
    now: int,
    accounts: tuple[str, ...] = (),
    name: str = "",
    device: str = "alice-laptop",
) -> bytes:
    return entry_bytes(
        GroupEntry(
            GROUP_ID,
            seq,
            previous,
            kind,
            ACCOUNT[device],
            KEYS[device].public,
            now,
            tuple(sorted(accounts)),
            name,
            b"",
        )
    )


def sign_asked(change_id: str, data: bytes) -> dict[str, Any]:
    return {"type": "group_sign", "change_id": change_id, "data": b64(data)}


def signed_event(
    change_id: str, data: bytes, known: dict[str, Any], now: int, device: str = "alice-laptop"
) -> dict[str, Any]:
    return {
        "type": "group_signed",
        "change_id": change_id,
        "signature": b64(primitives.ed25519_sign(KEYS[device].secret, data)),
        "lists": known,
        "now": now,
    }


def post(request_id: str, seq: int, wire: bytes) -> dict[str, Any]:
    return {
        "type": "http_request",
        "request_id": request_id,
        "method": "POST",
        "path": f"/api/groups/{GID}/entries",
        "body": {"seq": seq, "entry": b64(wire)},
    }


def wire_of(data: bytes, device: str = "alice-laptop") -> bytes:
    return data + primitives.ed25519_sign(KEYS[device].secret, data)


def group_created() -> dict[str, Any]:
    known = EVERYONE
    data = unsigned(EntryKind.CREATE, 0, ZERO_HASH, T1, ("bob", "alice"), "Trip", "alice-phone")
    log = Log()
    log.wires.append(wire_of(data, "alice-phone"))
    log.states.append(verify_chain(log.wires, device_lists=raw_lists(known)))
    created = {"seq": 0}
    return group_scenario(
        "Alice's phone creates a group: the machine builds the create entry, the adapter signs its bytes with the device's identity key, the machine checks the signed entry as every device will and writes it at seq 0; the server's 201 makes it the chain. A second create of the same group is refused.",
        record(device="alice-phone"),
        [
            (
                "create, with bob (alice named twice counts once)",
                change_wanted(
                    "c1", "create", known, T1, ("bob", "alice", "alice"), "Trip", "alice-phone"
                ),
                [sign_asked("c1", data)],
            ),
            (
                "signed: written at seq 0",
                signed_event("c1", data, known, T1, "alice-phone"),
                [post("g1", 0, log.wires[0])],
            ),
            (
                "a signature for nothing asked",
                signed_event("c9", data, known, T1, "alice-phone"),
                [],
            ),
            (
                "stored",
                answered("g1", created, known, T1, status=201),
                [changed(log, 0), notice("group_written", change_id="c1", seq=0)],
            ),
            (
                "create again",
                change_wanted("c2", "create", known, T2, ("bob", "alice"), "Trip", "alice-phone"),
                [notice("group_change_refused", change_id="c2", reason="exists")],
            ),
        ],
    )


def group_change_head_moved() -> dict[str, Any]:
    log = main_log()
    known = EVERYONE
    first = unsigned(EntryKind.ADD, 2, log.states[1].head, T1, ("dave",))
    theirs = Log()
    theirs.write(EntryKind.CREATE, "alice-phone", ("alice", "bob", "carol"), "Trip")
    theirs.write(EntryKind.RENAME, "alice-laptop", name="Trip 2027")
    theirs.write(EntryKind.RENAME, "alice-phone", name="Trip 2028")
    again = unsigned(EntryKind.ADD, 3, theirs.states[2].head, T1, ("dave",))
    theirs.wires.append(wire_of(again))
    theirs.states.append(
        verify_chain(theirs.wires[3:], device_lists=raw_lists(known), state=theirs.states[2])
    )
    moved = {"error": {"code": "group_head_moved", "message": "fetch", "data": {"head": 2}}}
    not_member = unsigned(EntryKind.REMOVE, 4, theirs.states[3].head, T2, ("mallory",))
    return group_scenario(
        "Alice's laptop adds dave while her phone renames the group: the server answers the laptop's write at seq 2 with group_head_moved, the machine reads the log, signs the same change again on the new head and writes it at seq 3. A second change while one is out is refused; a change the rules refuse is refused before it is written, and a name too long before it is signed.",
        record(log, 1),
        [
            (
                "add dave",
                change_wanted("c1", "add", known, T1, ("dave",)),
                [sign_asked("c1", first)],
            ),
            (
                "a second change while the first is out",
                change_wanted("c2", "rename", known, T1, name="Other"),
                [notice("group_change_refused", change_id="c2", reason="busy")],
            ),
            (
                "signed: written at seq 2",
                signed_event("c1", first, known, T1),
                [post("g1", 2, wire_of(first))],
            ),
            (
                "the head moved: the log is read",
                answered("g1", moved, known, T1, status=409),
                [get("g2", 1)],
            ),
            (
                "the phone's rename; the add is signed again on it",
                answered("g2", page(theirs, 2, 2), known, T1),
                [changed(theirs, 2), sign_asked("c1", again)],
            ),
            (
                "signed: written at seq 3",
                signed_event("c1", again, known, T1),
                [post("g3", 3, theirs.wires[3])],
            ),
            (
                "stored",
                answered("g3", {"seq": 3}, known, T1, status=201),
                [changed(theirs, 3), notice("group_written", change_id="c1", seq=3)],
            ),
            (
                "remove someone who is not a member",
                change_wanted("c3", "remove", known, T2, ("mallory",)),
                [sign_asked("c3", not_member)],
            ),
            (
                "refused by the rules before it is written",
                signed_event("c3", not_member, known, T2),
                [notice("group_change_refused", change_id="c3", reason="GroupRuleBroken")],
            ),
            (
                "a name over 256 bytes",
                change_wanted("c4", "rename", known, T2, name="x" * 257),
                [notice("group_change_refused", change_id="c4", reason="MalformedMessage")],
            ),
        ],
    )


def send_answered(
    frame: dict[str, Any], known: dict[str, Any], now: int, name: str
) -> dict[str, Any]:
    return {
        "type": "group_send_answered",
        "frame": frame,
        "lists": known,
        "now": now,
        "seed": b64(seed(f"scenario group event {name}")),
    }


def mismatched(ref: str, missing: list[str] = (), extra: list[str] = ()) -> dict[str, Any]:
    return {
        "type": "error",
        "v": 1,
        "code": "mismatched_devices",
        "ref": ref,
        "message": "refresh the device lists",
        "data": {"missing": list(missing), "extra": list(extra), "stale": []},
    }


def group_send_mismatched() -> dict[str, Any]:
    log = main_log()
    chain = log.states[1]
    before = lists("alice", "bob", "carol", drop=("bob-laptop",))
    after = lists("alice", "bob", "carol")
    me = Sender("alice-laptop")
    first = me.send("s1", text("hello"), before, chain)
    given = me.last
    me.take_back(given)
    again = me.send("s1", text("hello"), after, chain, rng_name="s1 again")
    second = me.send("s2", text("second"), after, chain)
    third = me.send("s3", text("third"), after, chain)
    replans = []
    for n in range(3):
        me.take_back(me.last)
        replans.append(me.send("s3", text("third"), after, chain, rng_name=f"s3 again {n}"))
    accepted = {"type": "accepted", "v": 1, "id": "s1"}
    full = {
        "type": "error",
        "v": 1,
        "code": "recipient_queue_full",
        "ref": "s2",
        "message": "later",
    }
    return group_scenario(
        "Bob linked a laptop that alice's laptop did not know of: the server refuses the group send (mismatched_devices), the adapter fetches and verifies the lists again, and the machine plans the same text again: the key goes to every device once more (the refused send gave it to nobody), the laptop included. Another refusal is told; after three re-plans the send is given up.",
        record(log, 1),
        [
            (
                "the first send, without bob's laptop",
                send_wanted("s1", text("hello"), before, T1),
                [first],
            ),
            (
                "missing bob's laptop: planned again on the lists verified again",
                send_answered(mismatched("s1", missing=["bob-laptop"]), after, T1, "s1 again"),
                [again],
            ),
            ("accepted", send_answered(accepted, after, T1, "accepted"), []),
            ("accepted again: nothing out", send_answered(accepted, after, T1, "accepted"), []),
            ("the next send", send_wanted("s2", text("second"), after, T2), [second]),
            (
                "refused for another reason: told",
                send_answered(full, after, T2, "full"),
                [notice("group_send_refused", send_id="s2", reason="recipient_queue_full")],
            ),
            ("a third send", send_wanted("s3", text("third"), after, T3), [third]),
            *[
                (
                    f"mismatched again: re-plan {n + 1}",
                    send_answered(mismatched("s3", extra=["gone"]), after, T3, f"s3 again {n}"),
                    [replans[n]],
                )
                for n in range(3)
            ],
            (
                "and a fourth time: given up",
                send_answered(mismatched("s3", extra=["gone"]), after, T3, "s3 given up"),
                [notice("group_send_refused", send_id="s3", reason="mismatched_devices")],
            ),
        ],
    )


def group_device_removed_rotates() -> dict[str, Any]:
    log = main_log()
    chain = log.states[1]
    me = Sender("alice-laptop")
    everyone = lists("alice", "bob", "carol")
    first = me.send("s1", text("hello"), everyone, chain)
    without_laptop = lists("alice", "bob", "carol", drop=("bob-laptop",))
    rotated = me.send("s2", text("after bob's laptop left"), without_laptop, chain)
    own_gone = lists("alice", "bob", "carol", drop=("bob-laptop", "alice-phone"))
    again = me.send("s3", text("after my phone left"), own_gone, chain)
    return group_scenario(
        "A member's device leaves its account's list (bob logged his laptop out), and then one of the sender's own devices: each time the sender's next message is under a new key, distributed to the devices left, so a device that left reads nothing sent after.",
        record(log, 1),
        [
            (
                "the first send: every device gets the key",
                send_wanted("s1", text("hello"), everyone, T1),
                [first],
            ),
            (
                "bob's laptop is gone from his verified list: rotated",
                send_wanted("s2", text("after bob's laptop left"), without_laptop, T2),
                [rotated],
            ),
            (
                "alice's phone is gone from her own list: rotated again",
                send_wanted("s3", text("after my phone left"), own_gone, T3),
                [again],
            ),
        ],
    )


def group_receipts() -> dict[str, Any]:
    log = main_log()
    known = lists("alice", "bob", "carol", "dave", drop=("bob-laptop",))
    ids = [b64(bytes([i]) * 16) for i in range(150)]
    applied = {"type": "group_receipt", "sender": "bob", "receipt": "delivered"}
    return group_scenario(
        "Receipts for group messages (section 25.10) count from a listed device of a current member, for this group: bob's delivery and read receipts are applied; dave's (not a member at seq 0), one from bob's unlisted laptop and one naming another group change nothing, and nothing is told. Messages read are answered with read receipts to a sender who is a member, at most 100 ids a receipt, only when the setting is on.",
        record(log, 0),
        [
            (
                "bob's phone: delivered",
                receipt_received("bob-phone", receipt_body("delivered", ids[:2]), known),
                [{**applied, "message_ids": ids[:2]}],
            ),
            (
                "bob's phone: read",
                receipt_received("bob-phone", receipt_body("read", ids[:1]), known),
                [{**applied, "receipt": "read", "message_ids": ids[:1]}],
            ),
            (
                "dave is no member at seq 0",
                receipt_received("dave-phone", receipt_body("delivered", ids[:1]), known),
                [],
            ),
            (
                "bob's laptop is not in bob's verified list",
                receipt_received("bob-laptop", receipt_body("delivered", ids[:1]), known),
                [],
            ),
            (
                "a receipt naming another group",
                receipt_received("bob-phone", receipt_body("read", ids[:1], b64(bytes(16))), known),
                [],
            ),
            (
                "150 of carol's messages read",
                read("carol", ids),
                [
                    receipt_sent("carol", "read", ids[:100]),
                    receipt_sent("carol", "read", ids[100:]),
                ],
            ),
            ("read receipts off", read("carol", ids[:1], receipts=False), []),
            ("dave's messages: no member, no receipt", read("dave", ids[:1]), []),
            ("the own account's messages", read("alice", ids[:1]), []),
        ],
    )


SCENARIOS = {
    "group_receipts.json": group_receipts,
    "group_device_removed_rotates.json": group_device_removed_rotates,
    "group_send_mismatched.json": group_send_mismatched,
    "group_created.json": group_created,
    "group_change_head_moved.json": group_change_head_moved,
    "group_log_read.json": group_log_read,
    "group_log_refused.json": group_log_refused,
    "group_messages_taken.json": group_messages_taken,
    "group_members_only.json": group_members_only,
    "group_entry_withheld.json": group_entry_withheld,
    "group_send_planned.json": group_send_planned,
    "group_not_yet_member.json": group_not_yet_member,
}
