"""One protocol, two implementations: Python (protocol/) talks to JavaScript
(static/js/protocol/, run by node through tests/support/jsdriver.mjs) in both directions."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.encoding import b64u_decode, b64u_encode
from protocol.exceptions import InvalidJson
from protocol.fanout import encrypt_for_devices
from protocol.inbound import accept_prekey_message
from protocol.keys import (
    DeviceKeys,
    PrekeyBundle,
    generate_device_keys,
    generate_kem_prekey,
    make_prekey_bundle,
)
from protocol.primitives import hash32
from protocol.ratchet import Session
from protocol.rng import Rng, TestRng
from protocol.strictjson import parse_json

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "support" / "jsdriver.mjs"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


class JsError(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


class JsDriver:
    """The JavaScript side: a node process answering one JSON line per command."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            ["node", str(DRIVER)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def __call__(self, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, "the JavaScript driver exited"
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise JsError(answer["error"], answer["message"])
        return answer

    def close(self) -> None:
        assert self._process.stdin
        self._process.stdin.close()
        self._process.wait(timeout=10)


@pytest.fixture(scope="module")
def js() -> Iterator[JsDriver]:
    driver = JsDriver()
    yield driver
    driver.close()


def seed(name: str) -> bytes:
    return hash32("Parley v1 test seed", name.encode("utf-8"))


class PyDevice:
    """The Python side: keys, an rng and the used base keys of one device."""

    def __init__(self, name: str, *, one_time_prekey_ids: tuple[int, ...] = (1, 2)):
        self.rng: Rng = TestRng(seed(name))
        self.keys = generate_device_keys(
            self.rng, signed_prekey_id=1, one_time_prekey_ids=one_time_prekey_ids
        )
        self.used_base_keys: set[bytes] = set()

    @property
    def identity_key(self) -> str:
        return b64u_encode(self.keys.identity.public)

    def bundle(self, device_id: str) -> dict[str, Any]:
        return make_prekey_bundle(device_id, self.keys, self.keys.one_time_prekeys[0]).to_dict()

    def initiate(self, bundle: dict[str, Any], listed_identity_key: str) -> Session:
        return Session.initiate(
            identity=self.keys.identity,
            bundle=PrekeyBundle.from_dict(bundle),
            listed_identity_key=b64u_decode(listed_identity_key, length=32),
            rng=self.rng,
        )

    def accept(self, message: bytes, sender_identity_key: str) -> tuple[Session, bytes]:
        inbound = accept_prekey_message(
            message,
            identity=self.keys.identity,
            signed_prekeys={self.keys.signed_prekey.id: self.keys.signed_prekey.key},
            one_time_prekeys={k.id: k.key for k in self.keys.one_time_prekeys},
            sender_identity_key=b64u_decode(sender_identity_key, length=32),
            used_base_keys=self.used_base_keys,
            rng=self.rng,
        )
        self.used_base_keys.add(inbound.base_key)
        return inbound.session, inbound.plaintext


def js_device(js: JsDriver, name: str, *, seeded: bool = True, version_2: bool = False) -> str:
    """Create a JS device (`version_2`: with one-time KEM prekey 9 and last-resort one 10);
    returns its identity key (base64url)."""
    answer = js(
        "generate_keys",
        device=name,
        seed=seed(name).hex() if seeded else None,
        signed_prekey_id=1,
        one_time_prekey_ids=[1, 2],
        **({"kem_prekey_ids": [9], "last_resort_kem_prekey_id": 10} if version_2 else {}),
    )
    keys = DeviceKeys.from_dict(answer["device_keys"])  # Python reads the JS key format
    assert (keys.last_resort_kem_prekey is not None) == version_2
    return answer["identity_key"]


def js_encrypt(js: JsDriver, session: str, plaintext: bytes) -> bytes:
    answer = js("encrypt", session=session, plaintext=b64u_encode(plaintext))
    return b64u_decode(answer["message"])


def js_decrypt(js: JsDriver, session: str, message: bytes) -> bytes:
    return b64u_decode(js("decrypt", session=session, message=b64u_encode(message))["plaintext"])


def test_python_initiates_and_javascript_answers_out_of_order_across_ratchet_steps(js):
    alice = PyDevice("cross py alice")
    bob_key = js_device(js, "cross js bob")
    bundle = js("bundle", device="cross js bob", device_id="dev-bob", one_time_prekey_id=1)
    a = alice.initiate(bundle["bundle"], listed_identity_key=bob_key)
    a1, a2, a3 = (a.encrypt(f"a{i}".encode(), alice.rng) for i in (1, 2, 3))

    accepted = js(
        "accept",
        device="cross js bob",
        session="py-js",
        message=b64u_encode(a2),
        sender_identity_key=alice.identity_key,
    )
    assert b64u_decode(accepted["plaintext"]) == b"a2"
    assert js_decrypt(js, "py-js", a1) == b"a1"

    b1, b2 = js_encrypt(js, "py-js", b"b1"), js_encrypt(js, "py-js", b"b2")
    assert a.decrypt(b2, alice.rng) == b"b2"  # Alice's DH ratchet step, out of order
    assert a.decrypt(b1, alice.rng) == b"b1"
    assert a.pending_prekey is None

    a4, a5 = a.encrypt(b"a4", alice.rng), a.encrypt(b"a5", alice.rng)
    assert a4[1] == 2  # a ratchet message now
    assert js_decrypt(js, "py-js", a5) == b"a5"  # Bob's DH ratchet step
    assert js_decrypt(js, "py-js", a3) == b"a3"  # skipped key from the previous chain
    assert js_decrypt(js, "py-js", a4) == b"a4"
    with pytest.raises(JsError) as replay:
        js_decrypt(js, "py-js", a4)
    assert replay.value.name == "ReplayDetected"

    for i in range(3):
        assert a.decrypt(js_encrypt(js, "py-js", f"b{i + 3}".encode()), alice.rng) == (
            f"b{i + 3}".encode()
        )
        assert js_decrypt(js, "py-js", a.encrypt(f"a{i + 6}".encode(), alice.rng)) == (
            f"a{i + 6}".encode()
        )


def test_javascript_initiates_and_python_answers_out_of_order_across_ratchet_steps(js):
    alice_key = js_device(js, "cross js alice")
    bob = PyDevice("cross py bob")
    js(
        "initiate",
        device="cross js alice",
        session="js-py",
        bundle=bob.bundle("dev-bob"),
        listed_identity_key=bob.identity_key,
    )
    a1, a2, a3 = (js_encrypt(js, "js-py", f"a{i}".encode()) for i in (1, 2, 3))
    assert a1[1] == a2[1] == 1  # prekey messages

    b, plaintext = bob.accept(a3, alice_key)
    assert plaintext == b"a3"
    assert b.decrypt(a1, bob.rng) == b"a1"

    b1, b2, b3 = (b.encrypt(f"b{i}".encode(), bob.rng) for i in (1, 2, 3))
    assert js_decrypt(js, "js-py", b3) == b"b3"
    assert js_decrypt(js, "js-py", b1) == b"b1"

    a4 = js_encrypt(js, "js-py", b"a4")
    assert a4[1] == 2
    assert b.decrypt(a4, bob.rng) == b"a4"  # Bob's DH ratchet step
    assert b.decrypt(a2, bob.rng) == b"a2"  # skipped key from the first chain
    assert js_decrypt(js, "js-py", b2) == b"b2"

    b4 = b.encrypt(b"b4", bob.rng)
    assert js_decrypt(js, "js-py", b4) == b"b4"  # Alice's second DH ratchet step
    with pytest.raises(JsError) as replay:
        js_decrypt(js, "js-py", b4)
    assert replay.value.name == "ReplayDetected"

    with pytest.raises(Exception) as prekey_replay:
        bob.accept(a1, alice_key)
    assert type(prekey_replay.value).__name__ == "ReplayDetected"


def _conversation(send_a: Any, send_b: Any, recv_a: Any, recv_b: Any, accept_b: Any) -> list[bytes]:
    """A fixed script; every wire message in order."""
    wire = [send_a(b"one"), send_a(b"two")]
    accept_b(wire[1])
    recv_b(wire[0])
    wire += [send_b(b"three"), send_b(b"four")]
    recv_a(wire[3])
    recv_a(wire[2])
    wire += [send_a(b"five")]
    recv_b(wire[4])
    wire += [send_b(b"six")]
    recv_a(wire[5])
    return wire


def test_same_seeds_give_identical_wire_bytes_in_both_implementations(js):
    # Reference: both sides in Python.
    alice, bob = PyDevice("same alice"), PyDevice("same bob")
    a = alice.initiate(bob.bundle("dev-bob"), bob.identity_key)
    sessions: dict[str, Session] = {}

    def py_accept(m: bytes) -> None:
        sessions["b"] = bob.accept(m, alice.identity_key)[0]

    reference = _conversation(
        lambda m: a.encrypt(m, alice.rng),
        lambda m: sessions["b"].encrypt(m, bob.rng),
        lambda m: a.decrypt(m, alice.rng),
        lambda m: sessions["b"].decrypt(m, bob.rng),
        py_accept,
    )

    # The same script with Bob in JavaScript, over the same seeds.
    alice = PyDevice("same alice")
    js_bob_key = js_device(js, "same bob")
    assert js_bob_key == PyDevice("same bob").identity_key
    bundle = js("bundle", device="same bob", device_id="dev-bob", one_time_prekey_id=1)
    assert bundle["bundle"] == PyDevice("same bob").bundle("dev-bob")
    a = alice.initiate(bundle["bundle"], js_bob_key)

    def js_accept(m: bytes) -> None:
        js(
            "accept",
            device="same bob",
            session="same",
            message=b64u_encode(m),
            sender_identity_key=alice.identity_key,
        )

    mixed = _conversation(
        lambda m: a.encrypt(m, alice.rng),
        lambda m: js_encrypt(js, "same", m),
        lambda m: a.decrypt(m, alice.rng),
        lambda m: js_decrypt(js, "same", m),
        js_accept,
    )
    assert [m.hex() for m in mixed] == [m.hex() for m in reference]
    assert js("serialize", session="same")["state"] == sessions["b"].to_dict()


def test_session_state_moves_between_implementations(js):
    alice = PyDevice("move alice")
    bob_key = js_device(js, "move bob")
    bundle = js("bundle", device="move bob", device_id="dev-bob", one_time_prekey_id=2)
    a = alice.initiate(bundle["bundle"], bob_key)
    js(
        "accept",
        device="move bob",
        session="move",
        message=b64u_encode(a.encrypt(b"hello", alice.rng)),
        sender_identity_key=alice.identity_key,
    )
    late = a.encrypt(b"late", alice.rng)
    assert js_decrypt(js, "move", a.encrypt(b"ahead", alice.rng)) == b"ahead"

    # Bob's JS session continues in Python (with a skipped key inside), and back again.
    state = js("serialize", session="move")["state"]
    assert len(state["skipped"]) == 1
    bob_rng = TestRng(seed("move bob rng"))
    b = Session.from_dict(json.loads(json.dumps(state)))
    assert b.decrypt(late, bob_rng) == b"late"
    assert a.decrypt(b.encrypt(b"from python bob", bob_rng), alice.rng) == b"from python bob"
    js("restore", device="move bob", session="move-back", state=b.to_dict())
    assert js_decrypt(js, "move-back", a.encrypt(b"to js bob", alice.rng)) == b"to js bob"

    # Alice's Python session continues in JS.
    js("restore", device="move bob", session="alice-in-js", state=a.to_dict())
    message = js_encrypt(js, "alice-in-js", b"from js alice")
    assert js_decrypt(js, "move-back", message) == b"from js alice"


def test_fan_out_from_javascript_to_nine_python_devices(js):
    sender_key = js_device(js, "fan sender", seeded=False)
    receivers = {f"dev-{i}": PyDevice(f"fan receiver {i}") for i in range(9)}
    theirs: dict[str, Session] = {}
    for device_id, device in receivers.items():
        js(
            "initiate",
            device="fan sender",
            session=f"fan {device_id}",
            bundle=device.bundle(device_id),
            listed_identity_key=device.identity_key,
        )
        first = js_encrypt(js, f"fan {device_id}", b"setup")
        theirs[device_id], _ = device.accept(first, sender_key)
        js_decrypt(js, f"fan {device_id}", theirs[device_id].encrypt(b"ack", device.rng))

    answer = js(
        "encrypt_for_devices",
        sessions={device_id: f"fan {device_id}" for device_id in receivers},
        plaintext=b64u_encode(b"one message"),
    )
    assert list(answer["messages"]) == sorted(receivers)
    for device_id, device in receivers.items():
        message = b64u_decode(answer["messages"][device_id])
        assert theirs[device_id].decrypt(message, device.rng) == b"one message"


def test_fan_out_from_python_to_javascript_devices(js):
    sender = PyDevice("fan py sender")
    ours: dict[str, Session] = {}
    for i in range(3):
        name = f"fan js receiver {i}"
        key = js_device(js, name)
        bundle = js("bundle", device=name, device_id=f"dev-{i}", one_time_prekey_id=1)
        ours[f"dev-{i}"] = sender.initiate(bundle["bundle"], key)
    messages = encrypt_for_devices(b"to every js device", ours, sender.rng)
    for i, (device_id, message) in enumerate(messages.items()):
        answer = js(
            "accept",
            device=f"fan js receiver {i}",
            session=f"fan js {device_id}",
            message=b64u_encode(message),
            sender_identity_key=sender.identity_key,
        )
        assert b64u_decode(answer["plaintext"]) == b"to every js device"


def test_tampered_messages_are_refused_with_the_same_error_on_both_sides(js):
    alice = PyDevice("tamper alice")
    bob_key = js_device(js, "tamper bob")
    bundle = js("bundle", device="tamper bob", device_id="dev-bob", one_time_prekey_id=1)
    a = alice.initiate(bundle["bundle"], bob_key)
    js(
        "accept",
        device="tamper bob",
        session="tamper",
        message=b64u_encode(a.encrypt(b"hello", alice.rng)),
        sender_identity_key=alice.identity_key,
    )
    a.decrypt(js_encrypt(js, "tamper", b"hi"), alice.rng)
    message = a.encrypt(b"short", alice.rng)
    python_bob = Session.from_dict(js("serialize", session="tamper")["state"])
    for bit in range(0, len(message) * 8, 7):
        flipped = bytearray(message)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(JsError) as js_error:
            js_decrypt(js, "tamper", bytes(flipped))
        with pytest.raises(Exception) as py_error:
            python_bob.decrypt(bytes(flipped), TestRng(seed("tamper rng")))
        assert js_error.value.name == type(py_error.value).__name__, bit
    assert js_decrypt(js, "tamper", message) == b"short"


# Fragments of JSON text, valid and not, that the two decoders must judge alike.
JSON_FRAGMENTS = [
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    " ",
    '"',
    "\\",
    '"a"',
    '"b"',
    '"\\u0061"',
    '"\\ud800"',
    '"\\udc00"',
    '"\\ud83d\\ude00"',
    '"\\"',
    "1",
    "-1",
    "0",
    "-0",
    "1.5",
    "1e5",
    "1E-2",
    "9007199254740991",
    "9007199254740992",
    "-9007199254740992",
    "99999999999999999999",
    "NaN",
    "Infinity",
    "-Infinity",
    "true",
    "false",
    "null",
    "x",
    "é",
    "\ud800",
    "\t",
]
json_texts = st.one_of(
    st.lists(st.sampled_from(JSON_FRAGMENTS), max_size=40).map("".join),
    st.recursive(
        st.sampled_from(JSON_FRAGMENTS[9:35]),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(
                st.tuples(st.sampled_from(['"a"', '"b"', '"\\u0061"']), inner), max_size=3
            ).map(lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"),
        ),
        max_leaves=30,
    ),
    st.integers(min_value=28, max_value=40).map(lambda n: "[" * n + "]" * n),
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    text=json_texts,
    as_bytes=st.booleans(),
    max_bytes=st.sampled_from([8, 64, 4096]),
    max_depth=st.sampled_from([2, 32]),
)
def test_parse_json_and_parseJson_agree_on_any_text(js, text, as_bytes, max_bytes, max_depth):
    raw = text.encode("utf-8", "surrogatepass" if as_bytes else "replace")
    data: str | bytes = raw if as_bytes else raw.decode("utf-8")
    try:
        expected = {
            "reason": None,
            "value": parse_json(data, max_bytes=max_bytes, max_depth=max_depth),
        }
    except InvalidJson as error:
        expected = {"reason": error.reason, "value": None}
    got = js(
        "parse_json", hex=raw.hex(), as_text=not as_bytes, max_bytes=max_bytes, max_depth=max_depth
    )
    assert got == expected, text


def test_a_group_conversation_between_the_python_and_the_javascript_group_machines(js):
    """docs/protocol.md 25.8: alice's Python group machine and bob's JavaScript one, on one
    verified chain; each takes the other's sender key and decrypts its messages (out of order
    too), and after alice removes carol, alice's next message is under a new key."""
    from protocol.engine import (
        GroupContent,
        GroupKeyReceived,
        GroupMessageReceived,
        GroupRecord,
        GroupSend,
        GroupSendWanted,
        handle_group,
    )
    from protocol.engine.groupstate import lists_to_dict
    from protocol.groups import EntryKind, entry_hash, sign_entry, verify_chain
    from protocol.keys import IdentityKeyPair

    group_id = seed("cross group id")[:16]
    keys = {d: IdentityKeyPair.from_seed(seed(f"cross group {d}")) for d in ("a1", "b1", "c1")}
    accounts = {"a1": "alice", "b1": "bob", "c1": "carol"}
    lists = {accounts[d]: {d: k.public} for d, k in keys.items()}
    raw = {a: list(ds.values()) for a, ds in lists.items()}
    create = sign_entry(
        group_id=group_id,
        seq=0,
        previous=bytes(32),
        kind=EntryKind.CREATE,
        actor="alice",
        identity=keys["a1"],
        timestamp=0,
        accounts=["alice", "bob", "carol"],
        name="Cross",
    )
    chain = verify_chain([create], device_lists=raw)
    alice = GroupRecord("alice", "a1", group_id, chain=chain)
    bob_state = GroupRecord("bob", "b1", group_id, chain=chain).to_dict()
    wire_lists = lists_to_dict(lists)

    def text(words: str) -> bytes:
        return words.encode().ljust(64, b"\0")

    def bob(event: dict[str, Any], **more: Any) -> list[dict[str, Any]]:
        return js("group", record="bob", event={"lists": wire_lists, "now": 0, **event}, **more)[
            "effects"
        ]

    # alice (Python) sends: bob (JS) takes the key that rode along, then the message
    alice, effects = handle_group(
        alice, GroupSendWanted("s1", text("hello bob"), lists, 0, seed("cross s1"))
    )
    [send] = [e for e in effects if isinstance(e, GroupSend)]
    body = {d: b for _, d, b in send.distributions}["b1"]
    assert (
        bob(
            {
                "type": "group_key_received",
                "sender": "alice",
                "sender_device": "a1",
                "body": dict(body),
            },
            state=bob_state,
        )
        == []
    )
    [content] = bob({"type": "group_message_received", "message": b64u_encode(send.message)})
    assert (content["type"], b64u_decode(content["plaintext"])) == (
        "group_content",
        text("hello bob"),
    )

    # bob (JS) sends three; alice (Python) takes his key, then decrypts them out of order
    sent = []
    for n in range(3):
        event = {
            "type": "group_send_wanted",
            "send_id": f"b{n}",
            "plaintext": b64u_encode(text(f"bob {n}")),
            "seed": b64u_encode(seed(f"cross b{n}")),
        }
        [planned] = [e for e in bob(event) if e["type"] == "group_send"]
        sent.append(planned)
    [to_alice] = [d for d in sent[0]["distributions"] if d["device_id"] == "a1"]
    alice, effects = handle_group(alice, GroupKeyReceived("bob", "b1", to_alice["body"], lists, 0))
    assert effects == []
    for n in (2, 0, 1):
        alice, effects = handle_group(
            alice, GroupMessageReceived(b64u_decode(sent[n]["message"]), lists, 0)
        )
        [got] = effects
        assert isinstance(got, GroupContent) and got.plaintext == text(f"bob {n}")

    # alice removes carol; bob's machine reads the entry; alice's next message is rotated
    remove = sign_entry(
        group_id=group_id,
        seq=1,
        previous=entry_hash(create),
        kind=EntryKind.REMOVE,
        actor="alice",
        identity=keys["a1"],
        timestamp=0,
        accounts=["carol"],
    )
    alice = GroupRecord(
        alice.account_id,
        alice.device_id,
        group_id,
        chain=verify_chain([remove], device_lists=raw, state=alice.chain),
        sending=alice.sending,
        receiving=alice.receiving,
    )
    [request] = bob({"type": "group_fetch_wanted"})
    page = {"head": 1, "entries": [{"seq": 1, "entry": b64u_encode(remove)}], "more": False}
    [changed] = bob(
        {"type": "group_answered", "request_id": request["request_id"], "status": 200, "body": page}
    )
    assert changed["data"]["kind"] == "remove"
    alice, effects = handle_group(
        alice, GroupSendWanted("s2", text("carol is out"), lists, 0, seed("cross s2"))
    )
    [rotated] = [e for e in effects if isinstance(e, GroupSend)]
    assert rotated.rotated and {d for _, d, _ in rotated.distributions} == {"b1"}
    body = {d: b for _, d, b in rotated.distributions}["b1"]
    bob(
        {"type": "group_key_received", "sender": "alice", "sender_device": "a1", "body": dict(body)}
    )
    [content] = bob({"type": "group_message_received", "message": b64u_encode(rotated.message)})
    assert b64u_decode(content["plaintext"]) == text("carol is out")


def _kem_turns(send: Any, receive: Any, turns: int) -> int:
    """Alternate turns of 1 to 3 messages, each turn delivered last first; returns how many
    messages carried a KEM offer or answer."""
    carried = 0
    for turn in range(turns):
        side = turn % 2
        wires = [send[side](f"t{turn}.{k}".encode()) for k in range(1 + turn % 3)]
        carried += sum(len(w) > 1000 for w in wires)
        for k in reversed(range(len(wires))):
            assert receive[1 - side](wires[k]) == f"t{turn}.{k}".encode()
    return carried


def test_version_2_sessions_between_python_and_javascript_with_kem_steps(js):
    """PQXDH both ways, and conversations long enough for KEM exchanges in both directions;
    Python encapsulates with OpenSSL's randomness, JS with libsodium's."""
    bob_key = js_device(js, "cross js pq bob", version_2=True)
    alice = PyDevice("cross py pq alice")
    bundle = js(
        "bundle",
        device="cross js pq bob",
        device_id="dev-bob",
        one_time_prekey_id=1,
        kem_prekey_id=9,
    )["bundle"]
    a = alice.initiate(bundle, listed_identity_key=bob_key)
    assert a.version == 2
    first = a.encrypt(b"t-first", alice.rng)
    js(
        "accept",
        device="cross js pq bob",
        session="pq-py-js",
        message=b64u_encode(first),
        sender_identity_key=alice.identity_key,
    )
    carried = _kem_turns(
        [lambda m: a.encrypt(m, alice.rng), lambda m: js_encrypt(js, "pq-py-js", m)],
        [lambda w: a.decrypt(w, alice.rng), lambda w: js_decrypt(js, "pq-py-js", w)],
        5 * 32 // 2,
    )
    state = js("serialize", session="pq-py-js")["state"]
    assert carried >= 4 and state["version"] == 2
    assert a.kem is not None and a.kem.next_id >= 2 and state["kem"]["next_id"] >= 2

    # JS initiates to a Python device with a last-resort KEM prekey only.
    alice_key = js_device(js, "cross js pq alice")
    bob = PyDevice("cross py pq bob")
    keys = bob.keys
    last = generate_kem_prekey(keys.identity, 10, bob.rng, last_resort=True)
    js(
        "initiate",
        device="cross js pq alice",
        session="pq-js-py",
        bundle=make_prekey_bundle("dev-bob", keys, None, last).to_dict(),
        listed_identity_key=bob.identity_key,
    )
    first = js_encrypt(js, "pq-js-py", b"t-first")
    inbound = accept_prekey_message(
        first,
        identity=keys.identity,
        signed_prekeys={keys.signed_prekey.id: keys.signed_prekey.key},
        one_time_prekeys={},
        kem_prekeys={10: last},
        sender_identity_key=b64u_decode(alice_key, length=32),
        used_base_keys=set(),
        rng=bob.rng,
    )
    assert inbound.plaintext == b"t-first" and inbound.one_time_kem_prekey_id is None
    b = inbound.session
    carried = _kem_turns(
        [lambda m: js_encrypt(js, "pq-js-py", m), lambda m: b.encrypt(m, bob.rng)],
        [lambda w: js_decrypt(js, "pq-js-py", w), lambda w: b.decrypt(w, bob.rng)],
        5 * 32 // 2,
    )
    assert carried >= 4 and b.kem is not None and b.kem.next_id >= 2 and b.kem.answered >= 1
