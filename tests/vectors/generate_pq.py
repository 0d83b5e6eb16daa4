"""Generator of tests/vectors/pq.json (docs/protocol.md section 27.7, version 2 sessions).

Run: .venv/bin/python tests/vectors/generate_pq.py
Bob: generate_device_keys(TestRng(seed("pq bob")), signed_prekey_id=7, one_time_prekey_ids=[100]),
then from the same rng a one-time KEM prekey (id 9) and the last-resort one (id 10). Each
session case: Alice's keys from TestRng(seed("pq alice <case>")), then Session.initiate from the
same rng (base key 32, m 32, first ratchet key 32), and the first message (nonce 24); Bob
accepts it with TestRng(seed("pq bob <case>")). `refills`: plan_kem_refill cases (section 27.1), each
upload given by its ids and H("Parley v1 test digest", its canonical JSON). `device_lists`: a list
whose entries say which versions they speak (keys from TestRng(seed("pq device list"))), with
the versions each device signature covers, and lists changed in one way (re-signed by the
account when `resign`) with the error each gives. The conversation continues the first case; each
party draws from its own rng, steps in order. Encapsulations come from `encapsulations`, keyed
by H("Parley v2 kem public key", public key) and m: the rows are libsodium's
deterministic encapsulation (made through node when missing), which Python cannot reproduce.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from protocol import primitives  # noqa: E402
from protocol.devicelist import (  # noqa: E402
    DeviceEntry,
    DeviceList,
    device_list_bytes,
    device_signature_bytes,
    sign_device,
    sign_device_list,
    verify_device_list,
)
from protocol.inbound import accept_prekey_message  # noqa: E402
from protocol.keys import (  # noqa: E402
    DeviceKeys,
    PrekeyBundle,
    generate_device_keys,
    generate_kem_prekey,
    kem_prekey_bytes,
    make_prekey_bundle,
    plan_kem_refill,
    verify_prekey_bundle,
)
from protocol.message import PrekeyMessage, decode_message  # noqa: E402
from protocol.ratchet import Session  # noqa: E402
from protocol.rng import TestRng  # noqa: E402
from protocol.strictjson import canonical_json  # noqa: E402
from tests.vectors.generate import error_name, seed  # noqa: E402

VECTORS = Path(__file__).resolve().parent
FILE = VECTORS / "pq.json"
TURNS = (2, 1, 3, 1, 2, 4, 1, 1, 2, 3)


def key_hash(public_key: bytes) -> str:
    return primitives.hash32("Parley v2 kem public key", public_key).hex()


class RecordedKem:
    """The encapsulation of (public key, m) from the table, asking node for missing rows."""

    def __init__(self, rows: list[dict[str, str]], *, may_ask: bool = True):
        self.rows = {(r["public_key_hash"], r["m"]): r for r in rows}
        self.used: dict[tuple[str, str], dict[str, str]] = {}
        self.may_ask = may_ask

    def __call__(self, public_key: bytes, m: bytes) -> tuple[bytes, bytes]:
        key = (key_hash(public_key), m.hex())
        row = self.rows.get(key)
        if row is None:
            if not self.may_ask:
                raise LookupError(f"no recorded encapsulation for {key}")
            answer = json.loads(
                subprocess.run(
                    ["node", str(VECTORS / "mlkem_encapsulate.mjs")],
                    input=json.dumps([{"public_key": public_key.hex(), "m": m.hex()}]),
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                ).stdout
            )[0]
            row = {"public_key_hash": key[0], "m": key[1], **answer}
            self.rows[key] = row
        self.used[key] = row
        return bytes.fromhex(row["ciphertext"]), bytes.fromhex(row["shared"])


def bob_keys() -> tuple[DeviceKeys, TestRng]:
    rng = TestRng(seed("pq bob"))
    keys = generate_device_keys(rng, signed_prekey_id=7, one_time_prekey_ids=[100])
    one_time = generate_kem_prekey(keys.identity, 9, rng)
    last_resort = generate_kem_prekey(keys.identity, 10, rng, last_resort=True)
    keys = DeviceKeys(
        identity=keys.identity,
        signed_prekey=keys.signed_prekey,
        one_time_prekeys=keys.one_time_prekeys,
        kem_prekeys=(one_time,),
        last_resort_kem_prekey=last_resort,
    )
    return keys, rng


def bundles(bob: DeviceKeys) -> dict[str, PrekeyBundle]:
    assert bob.last_resort_kem_prekey is not None
    return {
        "one_time": make_prekey_bundle("dev-bob", bob, bob.one_time_prekeys[0], bob.kem_prekeys[0]),
        "last_resort": make_prekey_bundle("dev-bob", bob, None, bob.last_resort_kem_prekey),
        "none": make_prekey_bundle("dev-bob", bob, bob.one_time_prekeys[0]),
    }


def accept(
    bob: DeviceKeys, data: bytes, alice_key: bytes, rng: TestRng, kem: RecordedKem, **kw: Any
):
    assert bob.last_resort_kem_prekey is not None
    return accept_prekey_message(
        data,
        identity=bob.identity,
        signed_prekeys={7: bob.signed_prekey.key},
        one_time_prekeys={100: bob.one_time_prekeys[0].key},
        kem_prekeys=kw.pop("kem_prekeys", {9: bob.kem_prekeys[0], 10: bob.last_resort_kem_prekey}),
        sender_identity_key=alice_key,
        used_base_keys=set(),
        rng=rng,
        encapsulate=kem,
        **kw,
    )


def session_case(name: str, bundle: PrekeyBundle, bob: DeviceKeys, kem: RecordedKem):
    alice_rng = TestRng(seed(f"pq alice {name}"))
    alice = generate_device_keys(alice_rng)
    session = Session.initiate(
        identity=alice.identity,
        bundle=bundle,
        listed_identity_key=bob.identity.public,
        rng=alice_rng,
        encapsulate=kem,
    )
    first = session.encrypt(b"hello, quantum-safe bob", alice_rng)
    bob_rng = TestRng(seed(f"pq bob {name}"))
    inbound = accept(bob, first, alice.identity.public, bob_rng, kem)
    assert inbound.plaintext == b"hello, quantum-safe bob"
    message = decode_message(first)
    case = {
        "name": name,
        "bundle": bundle.to_dict(),
        "binding": session.binding.hex(),
        "associated_data": session.associated_data.hex(),
        "kem_ciphertext": (message.kem_ciphertext or b"").hex(),  # type: ignore[union-attr]
        "first_message": first.hex(),
        "one_time_kem_prekey_id": inbound.one_time_kem_prekey_id,
        "alice_session": session.to_dict(),
        "bob_session": inbound.session.to_dict(),
    }
    return case, alice, session, alice_rng, inbound.session, bob_rng


def conversation(parties: dict[str, Any], rngs: dict[str, TestRng], kem: RecordedKem):
    """Turns of TURNS[i % 10] messages; the first message of a turn that carries a KEM field is
    held back (the first such turn: lost for good; the second: delivered after the next turn);
    every third other turn is delivered in reverse."""
    steps: list[dict[str, Any]] = []
    messages: dict[str, bytes] = {}
    held: list[tuple[str, str]] = []
    lost = late = 0

    def deliver(who: str, name: str) -> None:
        plaintext = parties[who].decrypt(messages[name], rngs[who], kem)
        steps.append(
            {
                "op": "decrypt",
                "party": who,
                "name": name,
                "plaintext": plaintext.hex(),
                "expected_error": None,
            }
        )

    for turn in range(60):
        sender, receiver = ("alice", "bob") if turn % 2 == 0 else ("bob", "alice")
        names = []
        for k in range(TURNS[turn % len(TURNS)]):
            name = f"{sender[0]}{turn}.{k}"
            plaintext = f"{name}: turn {turn} from {sender}".encode()
            messages[name] = parties[sender].encrypt(plaintext, rngs[sender])
            steps.append(
                {
                    "op": "encrypt",
                    "party": sender,
                    "name": name,
                    "plaintext": plaintext.hex(),
                    "message": messages[name].hex(),
                }
            )
            names.append(name)
        decoded = decode_message(messages[names[0]])
        header = (decoded.message if isinstance(decoded, PrekeyMessage) else decoded).header
        carries = header.kem_offer is not None or header.kem_answer is not None
        later = held
        held = []
        if carries and len(names) > 1 and lost < 1:
            lost += 1
            names = names[1:]
        elif carries and len(names) > 1 and late < 1:
            late += 1
            held = [(receiver, names[0])]
            names = names[1:]
        elif turn % 3 == 0:
            names = names[::-1]
        for who, name in [(receiver, n) for n in names] + later:
            deliver(who, name)
    for who, name in held:
        deliver(who, name)
    replayed = next(s for s in reversed(steps) if s["op"] == "decrypt")
    error = error_name(
        lambda: parties[replayed["party"]].decrypt(
            messages[replayed["name"]], rngs[replayed["party"]], kem
        )
    )
    assert error == "ReplayDetected"
    steps.append({**replayed, "plaintext": None, "expected_error": error})
    assert lost == 1 and late == 1, (lost, late)
    for who in ("alice", "bob"):
        assert parties[who].kem.next_id >= 2 and parties[who].kem.answered >= 1, who
    return steps


def refusals(bob: DeviceKeys, cases: dict[str, Any], steps: list[dict[str, Any]], kem: RecordedKem):
    """Each case names its call; every input is here, so both suites replay it as is."""
    first = bytes.fromhex(cases["one_time"]["first_message"])
    alice_key = Session.from_dict(cases["one_time"]["alice_session"]).local_identity_key
    ct_at = 2 + 32 + 32 + 4 + 1 + 4 + 4
    altered = bytearray(first)
    altered[ct_at + 100] ^= 1

    downgrade_rng = TestRng(seed("pq alice downgrade"))
    downgrader = generate_device_keys(downgrade_rng)
    v1_session = Session.initiate(
        identity=downgrader.identity,
        bundle=bundles(bob)["none"],
        listed_identity_key=bob.identity.public,
        rng=downgrade_rng,
    )
    v1_first = v1_session.encrypt(b"hello from version 1", downgrade_rng)

    flipped = bundles(bob)["one_time"].to_dict()
    flipped["kem_prekey"]["last_resort"] = True

    ratchet = next(
        bytes.fromhex(st["message"])
        for st in steps
        if st["op"] == "encrypt"
        and st["message"][2:4] == "02"
        and decode_message(bytes.fromhex(st["message"])).header.kem_offer is None  # type: ignore[union-attr]
    )
    with_offer = next(
        bytes.fromhex(st["message"])
        for st in steps
        if st["op"] == "encrypt"
        and st["message"][2:4] == "02"
        and decode_message(bytes.fromhex(st["message"])).header.kem_offer is not None  # type: ignore[union-attr]
    )
    as_v1 = b"\x01" + ratchet[1:42] + ratchet[43:]
    flags_4 = ratchet[:42] + b"\x04" + ratchet[43:]
    bob_session = cases["one_time"]["bob_session"]
    out: list[dict[str, Any]] = []

    def case(name: str, call: str, run: Any, **fields: Any) -> None:
        out.append({"name": name, "call": call, **fields, "expected_error": error_name(run)})

    def accepting(data: bytes, **kw: Any) -> Any:
        return lambda: accept(
            bob, data, kw.pop("key", alice_key), TestRng(seed("pq refusal")), kem, **kw
        )

    case(
        "altered KEM ciphertext",
        "accept",
        accepting(bytes(altered)),
        message=bytes(altered).hex(),
        sender=alice_key.hex(),
        sender_speaks_v2=True,
        kem_prekey_ids=[9, 10],
    )
    case(
        "unknown KEM prekey (the one-time one already used)",
        "accept",
        accepting(first, kem_prekeys={10: bob.last_resort_kem_prekey}),
        message=first.hex(),
        sender=alice_key.hex(),
        sender_speaks_v2=True,
        kem_prekey_ids=[10],
    )
    case(
        "version-1 prekey message from a device that lists version 2",
        "accept",
        accepting(v1_first, key=downgrader.identity.public, sender_speaks_v2=True),
        message=v1_first.hex(),
        sender=downgrader.identity.public.hex(),
        sender_speaks_v2=True,
        kem_prekey_ids=[9, 10],
    )
    case(
        "the same from a device that does not list version 2",
        "accept",
        accepting(v1_first, key=downgrader.identity.public),
        message=v1_first.hex(),
        sender=downgrader.identity.public.hex(),
        sender_speaks_v2=False,
        kem_prekey_ids=[9, 10],
    )
    case(
        "bundle without a KEM prekey for a device that lists version 2",
        "initiate",
        lambda: Session.initiate(
            identity=downgrader.identity,
            bundle=bundles(bob)["none"],
            listed_identity_key=bob.identity.public,
            rng=TestRng(seed("pq refusal")),
            device_speaks_v2=True,
        ),
        bundle=bundles(bob)["none"].to_dict(),
        device_speaks_v2=True,
    )
    case(
        "KEM prekey with its last_resort flag flipped",
        "verify_bundle",
        lambda: verify_prekey_bundle(
            PrekeyBundle.from_dict(flipped), listed_identity_key=bob.identity.public
        ),
        bundle=flipped,
    )
    case(
        "version-1 message to a version-2 session",
        "decrypt",
        lambda: Session.from_dict(bob_session).decrypt(as_v1, TestRng(seed("pq refusal")), kem),
        session=bob_session,
        message=as_v1.hex(),
    )
    case("kem_flags 4", "decode", lambda: decode_message(flags_4), message=flags_4.hex())
    cut = with_offer[: 2 + 41 + 4 + 1000]
    case("offer cut short", "decode", lambda: decode_message(cut), message=cut.hex())
    cut_first = first[: ct_at + 500]
    case(
        "prekey message cut inside its KEM ciphertext",
        "decode",
        lambda: decode_message(cut_first),
        message=cut_first.hex(),
    )
    return out


REFILLS = (
    # name, whose keys (a new device's or Bob's), stored, last_resort_stored, next_id, target
    ("a device with no KEM prekey yet", "new", 0, None, 1, 50),
    ("the server lost the last-resort key", "bob", 30, None, 11, 50),
    ("the pool below half", "bob", 12, 10, 11, 25),
    ("nothing to do", "bob", 25, 10, 11, 50),
)


def upload_digest(body: dict[str, Any]) -> str:
    return primitives.hash32("Parley v1 test digest", canonical_json(body)).hex()


def refills(bob: DeviceKeys) -> list[dict[str, Any]]:
    """plan_kem_refill, each case from TestRng(seed("pq refill <name>")); a new device's keys
    are generate_device_keys of the same rng."""
    out = []
    for name, whose, stored, last_stored, next_id, target in REFILLS:
        rng = TestRng(seed(f"pq refill {name}"))
        keys = generate_device_keys(rng) if whose == "new" else bob
        plan = plan_kem_refill(
            keys,
            stored=stored,
            last_resort_stored=last_stored,
            next_id=next_id,
            target=target,
            rng=rng,
        )
        out.append(
            {
                "name": name,
                "keys": whose,
                "stored": stored,
                "last_resort_stored": last_stored,
                "next_id": next_id,
                "target": target,
                "plan": None
                if plan is None
                else {
                    "keys": plan.keys.to_dict(),
                    "next_id": plan.next_id,
                    "uploads": [
                        {
                            "ids": [k["id"] for k in body["kem_prekeys"]],
                            "last_resort_id": body.get("last_resort_kem_prekey", {}).get("id"),
                            "digest": upload_digest(body),
                        }
                        for body in plan.uploads
                    ],
                },
            }
        )
    return out


def list_vectors() -> dict[str, Any]:
    """Device lists whose entries say which versions they speak (section 27.5): a primary and
    a companion of version 2, a companion of version 1 only; and the refusals."""
    rng = TestRng(seed("pq device list"))
    primary, laptop, old = (generate_device_keys(rng).identity for _ in range(3))
    account = "acct-pq"
    laptop_sig = sign_device(
        laptop, account_id=account, account_key=primary.public, protocols=(1, 2)
    )
    old_sig = sign_device(old, account_id=account, account_key=primary.public)
    entries = [
        DeviceEntry("dev-a-primary", primary.public, 1_700_000_000_000, None, (1, 2)),
        DeviceEntry("dev-b-laptop", laptop.public, 1_700_000_000_001, laptop_sig, (1, 2)),
        DeviceEntry("dev-c-old", old.public, 1_700_000_000_002, old_sig),
    ]
    signed = sign_device_list(
        primary, account_id=account, version=4, timestamp=1_700_000_000_009, devices=entries
    )
    data = signed.to_dict()

    def case(name: str, mutate: Any, *, resign: bool = False) -> dict[str, Any]:
        changed = json.loads(json.dumps(data))
        mutate(changed)

        def run() -> None:
            parsed = DeviceList.from_dict(changed)
            if resign:  # the account signs what it was given (a server changed the link's data)
                parsed = sign_device_list(
                    primary,
                    account_id=account,
                    version=parsed.version,
                    timestamp=parsed.timestamp,
                    devices=parsed.devices,
                )
            verify_device_list(parsed, expected_account_key=primary.public)

        return {"name": name, "list": changed, "resign": resign, "expected_error": error_name(run)}

    def strip(d: dict[str, Any]) -> None:
        del d["devices"][1]["protocols"]

    def v1_signature_as_v2(d: dict[str, Any]) -> None:
        d["devices"][2]["protocols"] = [1, 2]

    def set_protocols(value: Any) -> Any:
        def mutate(d: dict[str, Any]) -> None:
            d["devices"][2]["protocols"] = value

        return mutate

    def nothing(d: dict[str, Any]) -> None:
        return None

    return {
        "list": data,
        "list_bytes": device_list_bytes(signed).hex(),
        "hash": signed.hash.hex(),
        "laptop_signed_bytes": device_signature_bytes(
            account, primary.public, laptop.public, (1, 2)
        ).hex(),
        "signature_protocols": [
            {"device": "dev-b-laptop", "signature": laptop_sig.hex(), "protocols": [1, 2]},
            {"device": "dev-c-old", "signature": old_sig.hex(), "protocols": [1]},
        ],
        "cases": [
            case("as signed", nothing),
            case("version 2 taken out of an entry (the account's signature breaks)", strip),
            case(
                "the account re-signs an entry without version 2 its device signed",
                strip,
                resign=True,
            ),
            case(
                "a version-1 device signature in an entry that lists version 2",
                v1_signature_as_v2,
                resign=True,
            ),
            case("protocols written as [1]", set_protocols([1])),
            case("protocols without 1", set_protocols([2])),
            case("protocols repeated", set_protocols([1, 1, 2])),
            case("protocols out of order", set_protocols([2, 1])),
            case("a version 0", set_protocols([0, 1])),
            case("not a list", set_protocols("1,2")),
        ],
    }


def build(*, may_ask: bool = True) -> dict[str, Any]:
    """`may_ask=False` (the regeneration test): refuse rather than ask node for a new row."""
    kept = json.loads(FILE.read_text("utf-8"))["encapsulations"] if FILE.exists() else []
    kem = RecordedKem(kept, may_ask=may_ask)
    bob, _ = bob_keys()
    assert bob.last_resort_kem_prekey is not None
    all_bundles = bundles(bob)
    cases = {}
    live: dict[str, Any] = {}
    for name in ("one_time", "last_resort"):
        case, alice, alice_session, alice_rng, bob_session, bob_rng = session_case(
            name, all_bundles[name], bob, kem
        )
        cases[name] = case
        live[name] = (alice, alice_session, alice_rng, bob_session, bob_rng)
    alice, alice_session, alice_rng, bob_session, bob_rng = live["one_time"]
    steps = conversation(
        {"alice": alice_session, "bob": bob_session}, {"alice": alice_rng, "bob": bob_rng}, kem
    )
    kem_prekeys = [
        {
            "id": k.id,
            "last_resort": k.last_resort,
            "seed": k.seed.hex(),
            "public_key": k.public.hex(),
            "signed_bytes": kem_prekey_bytes(k.id, k.last_resort, k.public).hex(),
            "signature": k.signature.hex(),
        }
        for k in (bob.kem_prekeys[0], bob.last_resort_kem_prekey)
    ]
    return {
        "description": __doc__.split("\n\n", 1)[1].strip(),
        "bob_device_keys": bob.to_dict(),
        "kem_prekeys": kem_prekeys,
        "sessions": [cases["one_time"], cases["last_resort"]],
        "conversation": {
            "steps": steps,
            "final_sessions": {"alice": alice_session.to_dict(), "bob": bob_session.to_dict()},
        },
        "refusals": refusals(bob, cases, steps, kem),
        "refills": refills(bob),
        "device_lists": list_vectors(),
        "encapsulations": sorted(kem.used.values(), key=lambda r: (r["public_key_hash"], r["m"])),
    }


def render(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    FILE.write_text(render(build()), encoding="utf-8")
