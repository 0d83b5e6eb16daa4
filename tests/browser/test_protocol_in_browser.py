"""The JavaScript protocol runs in real Chromium on the app's page (import map, strict CSP,
libsodium WebAssembly) and talks to the Python implementation in both directions: sessions,
ML-KEM-768 (docs/protocol.md section 1) and version-2 sessions with their KEM steps (27)."""

from __future__ import annotations

from typing import Any

from protocol.encoding import b64u_decode, b64u_encode
from protocol.inbound import accept_prekey_message
from protocol.keys import generate_device_keys, generate_kem_prekey, make_prekey_bundle
from protocol.primitives import (
    hash32,
    mlkem768_decapsulate,
    mlkem768_encapsulate,
    mlkem768_public,
)
from protocol.ratchet import Session
from protocol.rng import TestRng

# Runs in the page. The browser device initiates a session to the Python device's bundle,
# keeps the session in IndexedDB as the app will (plain JSON), and sends a prekey message.
START = """async ({ bundle, listedIdentityKey }) => {
  const p = await import("/static/js/protocol/index.js");
  await p.ready();
  const { b64uDecode, b64uEncode } = p.encoding;
  const keys = p.generateDeviceKeys(p.systemRng, { oneTimePrekeyIds: [1] });
  const session = p.Session.initiate({
    identity: keys.identity,
    bundle: p.PrekeyBundle.fromJSON(bundle),
    listedIdentityKey: b64uDecode(listedIdentityKey, { length: 32 }),
    rng: p.systemRng,
  });
  const message = session.encrypt(new TextEncoder().encode("hello from the browser"), p.systemRng);
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("parley-protocol-test", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("sessions");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  await new Promise((resolve, reject) => {
    const tx = db.transaction("sessions", "readwrite");
    tx.objectStore("sessions").put(session.toJSON(), "python-bob");
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
  return { identityKey: b64uEncode(keys.identity.public), message: b64uEncode(message) };
}"""

# Runs in the page: restore the session from IndexedDB, decrypt Python's replies (out of
# order, with a DH ratchet step), answer, and refuse a replay.
CONTINUE = """async ({ replies }) => {
  const p = await import("/static/js/protocol/index.js");
  await p.ready();
  const { b64uDecode, b64uEncode } = p.encoding;
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("parley-protocol-test", 1);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const stored = await new Promise((resolve, reject) => {
    const request = db.transaction("sessions").objectStore("sessions").get("python-bob");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  db.close();
  const session = p.Session.fromJSON(stored);
  const decoder = new TextDecoder();
  const received = replies.map((r) => decoder.decode(session.decrypt(b64uDecode(r), p.systemRng)));
  let replay = null;
  try {
    session.decrypt(b64uDecode(replies[0]), p.systemRng);
  } catch (error) {
    replay = error.name;
  }
  const answer = session.encrypt(new TextEncoder().encode("the browser got it"), p.systemRng);
  return { received, replay, answer: b64uEncode(answer) };
}"""


def _python_device() -> tuple[Any, TestRng]:
    rng = TestRng(hash32("Parley v1 test seed", b"browser python bob"))
    return generate_device_keys(rng, signed_prekey_id=3, one_time_prekey_ids=[10]), rng


def test_browser_and_python_exchange_messages_both_ways(new_device):
    page = new_device().new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/")

    bob, bob_rng = _python_device()
    bundle = make_prekey_bundle("dev-python-bob", bob, bob.one_time_prekeys[0])
    started = page.evaluate(
        START,
        {"bundle": bundle.to_dict(), "listedIdentityKey": b64u_encode(bob.identity.public)},
    )

    inbound = accept_prekey_message(
        b64u_decode(started["message"]),
        identity=bob.identity,
        signed_prekeys={3: bob.signed_prekey.key},
        one_time_prekeys={10: bob.one_time_prekeys[0].key},
        sender_identity_key=b64u_decode(started["identityKey"], length=32),
        used_base_keys=set(),
        rng=bob_rng,
    )
    assert inbound.plaintext == b"hello from the browser"
    session: Session = inbound.session
    first = session.encrypt(b"python says one", bob_rng)
    second = session.encrypt(b"python says two", bob_rng)

    continued = page.evaluate(CONTINUE, {"replies": [b64u_encode(second), b64u_encode(first)]})

    assert continued["received"] == ["python says two", "python says one"]
    assert continued["replay"] == "ReplayDetected"
    assert session.decrypt(b64u_decode(continued["answer"]), bob_rng) == b"the browser got it"
    assert errors == []  # no CSP violation, no failed module or WebAssembly load


# Runs in the page: encapsulate to a Python device's ML-KEM-768 key, and open Python's
# encapsulation to the page's own key (docs/protocol.md section 1).
MLKEM = """async ({ theirs }) => {
  const p = await import("/static/js/protocol/index.js");
  await p.ready();
  const { b64uDecode, b64uEncode } = p.encoding;
  const seed = p.systemRng(64);
  const [sent, shared] = p.primitives.mlkem768Encapsulate(b64uDecode(theirs), p.systemRng);
  return {
    ciphertext: b64uEncode(sent),
    shared: b64uEncode(shared),
    seed: b64uEncode(seed),
    public: b64uEncode(p.primitives.mlkem768Public(seed)),
  };
}"""
OPEN = """async ({ seed, ciphertext }) => {
  const p = await import("/static/js/protocol/index.js");
  await p.ready();
  const { b64uDecode, b64uEncode } = p.encoding;
  return b64uEncode(p.primitives.mlkem768Decapsulate(b64uDecode(seed), b64uDecode(ciphertext)));
}"""


def test_browser_and_python_agree_on_ml_kem_768_both_ways(new_device):
    page = new_device().new_page()
    page.goto("/")
    python_seed = TestRng(hash32("test", b"mlkem in the browser"))(64)
    theirs = mlkem768_public(python_seed)
    made = page.evaluate(MLKEM, {"theirs": b64u_encode(theirs)})
    assert mlkem768_decapsulate(python_seed, b64u_decode(made["ciphertext"])) == b64u_decode(
        made["shared"]
    )
    ciphertext, shared = mlkem768_encapsulate(b64u_decode(made["public"]))
    opened = page.evaluate(OPEN, {"seed": made["seed"], "ciphertext": b64u_encode(ciphertext)})
    assert b64u_decode(opened) == shared


# Runs in the page: a version-2 session (docs/protocol.md section 27) kept in the page between
# calls; each turn opens Python's messages in the order given and answers with `count` messages.
PQ_START = """async ({ bundle, listedIdentityKey }) => {
  const p = await import("/static/js/protocol/index.js");
  await p.ready();
  const { b64uDecode, b64uEncode } = p.encoding;
  const keys = p.generateDeviceKeys(p.systemRng);
  const session = p.Session.initiate({
    identity: keys.identity,
    bundle: p.PrekeyBundle.fromJSON(bundle),
    listedIdentityKey: b64uDecode(listedIdentityKey, { length: 32 }),
    rng: p.systemRng,
    deviceSpeaksV2: true,
  });
  window.pqSession = session;
  const message = session.encrypt(new TextEncoder().encode("quantum-safe hello"), p.systemRng);
  return { identityKey: b64uEncode(keys.identity.public), message: b64uEncode(message),
           version: session.version };
}"""
PQ_TURN = """async ({ incoming, count, turn }) => {
  const p = await import("/static/js/protocol/index.js");
  const { b64uDecode, b64uEncode } = p.encoding;
  const session = window.pqSession;
  const decoder = new TextDecoder();
  const received = incoming.map((m) => decoder.decode(session.decrypt(b64uDecode(m), p.systemRng)));
  const replies = [];
  for (let k = 0; k < count; k++) {
    const text = new TextEncoder().encode(`browser ${turn}.${k}`);
    replies.push(b64uEncode(session.encrypt(text, p.systemRng)));
  }
  return { received, replies, kem: session.kem.toJSON() };
}"""


def test_a_version_2_session_between_chromium_and_python_heals_with_kem_steps(new_device):
    page = new_device().new_page()
    page.goto("/")
    bob, bob_rng = _python_device()
    assert bob.kem_prekeys == ()
    kem = generate_kem_prekey(bob.identity, 4, bob_rng)
    bundle = make_prekey_bundle("dev-python-bob", bob, None, kem)
    started = page.evaluate(
        PQ_START,
        {"bundle": bundle.to_dict(), "listedIdentityKey": b64u_encode(bob.identity.public)},
    )
    assert started["version"] == 2
    inbound = accept_prekey_message(
        b64u_decode(started["message"]),
        identity=bob.identity,
        signed_prekeys={3: bob.signed_prekey.key},
        one_time_prekeys={},
        kem_prekeys={4: kem},
        sender_identity_key=b64u_decode(started["identityKey"], length=32),
        used_base_keys=set(),
        rng=bob_rng,
        sender_speaks_v2=True,
    )
    assert inbound.plaintext == b"quantum-safe hello" and inbound.one_time_kem_prekey_id == 4
    session = inbound.session
    pending: list[bytes] = []
    carried = 0
    for turn in range(80):
        sent = [session.encrypt(f"python {turn}.{k}".encode(), bob_rng) for k in range(turn % 3)]
        carried += sum(len(m) > 1000 for m in sent)
        answer = page.evaluate(
            PQ_TURN,
            {
                "incoming": [b64u_encode(m) for m in reversed(sent)],
                "count": 1 + turn % 2,
                "turn": turn,
            },
        )
        assert answer["received"] == [f"python {turn}.{k}" for k in reversed(range(turn % 3))]
        pending = [b64u_decode(r) for r in answer["replies"]]
        carried += sum(len(m) > 1000 for m in pending)
        for k, message in enumerate(pending):
            assert session.decrypt(message, bob_rng) == f"browser {turn}.{k}".encode()
    assert carried >= 4  # KEM offers and answers went both ways
    assert session.kem is not None and session.kem.answered >= 1 and session.kem.next_id >= 2
    assert answer["kem"]["answered"] >= 1 and answer["kem"]["next_id"] >= 2
