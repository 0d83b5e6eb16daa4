"""Scenarios of retry requests, resends and the resend cache (docs/protocol.md 24.2, 24.3).

Alice's phone is the requester when an envelope from bob does not decrypt, and the sender
when one of bob's devices asks her for an envelope again. The expected effects are written
out by hand: 24.2's backoff at 0, 10, 30, 70 and 150 s, failed at 310 s.
"""

from __future__ import annotations

from typing import Any

from protocol.content import ContentType, encode_content, new_content
from protocol.keys import generate_kem_prekey, generate_signed_prekey
from protocol.rng import TestRng
from tests.vectors.scenarios.builders import BOB, BOB_V2, T0, b64, scenario, seed
from tests.vectors.scenarios.receive_rules import decrypted, receiving_state

RNG = TestRng(seed("scenario retries"))
M1, M2, M3, M4, M5, M6, M7, M8, M9, M10 = (b64(RNG(16)) for _ in range(10))
SENT = T0 - 60_000  # the deliver entry's sent_at: a minute before the failure
S = 1000  # ms

RETRY_REQUEST, RESEND = int(ContentType.RETRY_REQUEST), int(ContentType.RESEND)


def signed_prekey() -> dict[str, Any]:
    prekey = generate_signed_prekey(BOB, 3, TestRng(seed("scenario retry prekey")))
    return {"id": 3, "public_key": b64(prekey.key.public), "signature": b64(prekey.signature)}


def kem_prekey() -> dict[str, Any]:
    """Bob's last-resort KEM prekey as a version-2 retry request carries it (27.5)."""
    key = generate_kem_prekey(BOB, 4, TestRng(seed("scenario retry kem prekey")), last_resort=True)
    return key.to_public().to_dict()


def inner(kind: ContentType, body: dict[str, Any], name: str) -> tuple[str, str]:
    """An encoded content of bob's (b64u) and its message id, as a resend carries it."""
    content = new_content(
        kind,
        body,
        timestamp=SENT,
        sender_list_version=BOB_V2.version,
        sender_list_hash=BOB_V2.hash,
        rng=TestRng(seed(f"scenario retry {name}")),
    )
    return b64(encode_content(content)), b64(content.message_id)


def record(
    envelope_id: str,
    *,
    count: int,
    asked_at: int,
    state: str = "waiting",
    device: str = "bob-phone",
    sender: str = "bob",
) -> dict[str, Any]:
    return {
        "sender": sender,
        "sender_device": device,
        "envelope_id": envelope_id,
        "sent_at": SENT,
        "count": count,
        "asked_at": asked_at,
        "state": state,
    }


def retries(*records: dict[str, Any]) -> dict[str, Any]:
    return {f"{r['sender_device']}/{r['envelope_id']}": r for r in records}


def failed(
    envelope_id: str, now: int, device: str = "bob-phone", sender: str = "bob"
) -> dict[str, Any]:
    return {
        "type": "decrypt_failed",
        "sender": sender,
        "sender_device": device,
        "envelope_id": envelope_id,
        "sent_at": SENT,
        "reason": "decryption_failed",
        "now": now,
    }


def due(now: int) -> dict[str, Any]:
    return {"type": "retry_due", "now": now}


def store(rec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "store_retry", "record": rec}


def ask(
    envelope_id: str, count: int, device: str = "bob-phone", sender: str = "bob"
) -> dict[str, Any]:
    return {
        "type": "send_retry_request",
        "recipient": sender,
        "device": device,
        "envelope_id": envelope_id,
        "count": count,
    }


def refused(device: str, reason: str, sender: str = "bob") -> dict[str, Any]:
    return {
        "type": "content_verdict",
        "sender": sender,
        "sender_device": device,
        "verdict": "refuse",
        "reason": reason,
    }


def decrypt_failed_asks() -> dict[str, Any]:
    return scenario(
        "An envelope from a listed device that did not decrypt is asked for once: a waiting record (count 1, asked now) and one retry request to that device; the server redelivering the envelope asks nothing more, another envelope is its own record, and an envelope from a blocked account asks nothing (the own account is never blocked).",
        receiving_state(blocked=["alice", "carol"]),
        [
            (
                "bob's phone's e-1 did not decrypt: a waiting record, the first ask",
                failed("e-1", T0),
                [store(record("e-1", count=1, asked_at=T0)), ask("e-1", 1)],
            ),
            (
                "the server delivers e-1 again and it fails again: nothing (the record is held)",
                failed("e-1", T0 + 2 * S),
                [],
            ),
            (
                "e-2 from bob's laptop: its own record and ask",
                failed("e-2", T0 + 3 * S, device="bob-laptop"),
                [
                    store(record("e-2", count=1, asked_at=T0 + 3 * S, device="bob-laptop")),
                    ask("e-2", 1, device="bob-laptop"),
                ],
            ),
            (
                "carol, blocked: nothing stored, nothing asked",
                failed("e-3", T0 + 4 * S, device="carol-phone", sender="carol"),
                [],
            ),
            (
                "alice's laptop (the own account, listed as blocked by mistake): asked as any",
                failed("e-4", T0 + 5 * S, device="alice-laptop", sender="alice"),
                [
                    store(
                        record(
                            "e-4",
                            count=1,
                            asked_at=T0 + 5 * S,
                            device="alice-laptop",
                            sender="alice",
                        )
                    ),
                    ask("e-4", 1, device="alice-laptop", sender="alice"),
                ],
            ),
        ],
    )


def decrypt_failed_waiting_cap() -> dict[str, Any]:
    waiting = [record(f"w-{i:03}", count=1, asked_at=T0) for i in range(100)]
    return scenario(
        "At most MAX_WAITING (100) records per sender device wait for an answer: with 100 of bob's phone's waiting, its next failure is stored failed at once and asks nothing; failed records do not count, and another device of bob's is asked as usual.",
        receiving_state(
            retries=retries(*waiting, record("f-1", count=5, asked_at=T0 - 400 * S, state="failed"))
        ),
        [
            (
                "a 101st envelope of bob's phone fails: failed at once, nothing sent",
                failed("e-1", T0 + S),
                [store(record("e-1", count=0, asked_at=T0 + S, state="failed"))],
            ),
            (
                "bob's laptop has none waiting: asked",
                failed("e-2", T0 + S, device="bob-laptop"),
                [
                    store(record("e-2", count=1, asked_at=T0 + S, device="bob-laptop")),
                    ask("e-2", 1, device="bob-laptop"),
                ],
            ),
        ],
    )


def backoff_then_failed() -> dict[str, Any]:
    def at(count: int, asked_at: int) -> dict[str, Any]:
        return record("e-1", count=count, asked_at=asked_at)

    return scenario(
        "retry_due asks a waiting record again once RETRY_AFTER_MS × 2^(count − 1) passed since its last ask: at 10, 30, 70 and 150 s after the first, five asks in all; 160 s after the fifth (310 s) it turns failed and asks nothing more. Records due together go in key order.",
        receiving_state(),
        [
            ("e-1 fails: the first ask", failed("e-1", T0), [store(at(1, T0)), ask("e-1", 1)]),
            ("9.999 s later: not due", due(T0 + 10 * S - 1), []),
            ("10 s: the second ask", due(T0 + 10 * S), [store(at(2, T0 + 10 * S)), ask("e-1", 2)]),
            ("29.999 s: not due (20 s after the second)", due(T0 + 30 * S - 1), []),
            ("30 s: the third ask", due(T0 + 30 * S), [store(at(3, T0 + 30 * S)), ask("e-1", 3)]),
            ("70 s: the fourth ask", due(T0 + 70 * S), [store(at(4, T0 + 70 * S)), ask("e-1", 4)]),
            ("149.999 s: not due", due(T0 + 150 * S - 1), []),
            (
                "150 s: the fifth ask",
                due(T0 + 150 * S),
                [store(at(5, T0 + 150 * S)), ask("e-1", 5)],
            ),
            ("309.999 s: not due", due(T0 + 310 * S - 1), []),
            (
                "310 s: no answer to the fifth ask: failed, nothing sent",
                due(T0 + 310 * S),
                [store(record("e-1", count=5, asked_at=T0 + 150 * S, state="failed"))],
            ),
            ("later: a failed record is not asked again by the timer", due(T0 + 1000 * S), []),
            (
                "e-3 from bob's phone and e-2 from bob's laptop fail together",
                failed("e-3", T0 + 2000 * S),
                [store(record("e-3", count=1, asked_at=T0 + 2000 * S)), ask("e-3", 1)],
            ),
            (
                "e-2 from bob's laptop",
                failed("e-2", T0 + 2000 * S, device="bob-laptop"),
                [
                    store(record("e-2", count=1, asked_at=T0 + 2000 * S, device="bob-laptop")),
                    ask("e-2", 1, device="bob-laptop"),
                ],
            ),
            (
                "both due: asked in key order (bob-laptop/e-2 before bob-phone/e-3)",
                due(T0 + 2010 * S),
                [
                    store(record("e-2", count=2, asked_at=T0 + 2010 * S, device="bob-laptop")),
                    ask("e-2", 2, device="bob-laptop"),
                    store(record("e-3", count=2, asked_at=T0 + 2010 * S)),
                    ask("e-3", 2),
                ],
            ),
        ],
    )


def ask_again() -> dict[str, Any]:
    def again(envelope_id: str, now: int) -> dict[str, Any]:
        return {
            "type": "retry_again",
            "sender_device": "bob-phone",
            "envelope_id": envelope_id,
            "now": now,
        }

    return scenario(
        "retry_again (the person's \"Ask again\" on a failed line) starts a failed record over: count 1, waiting, one ask, and the timer's backoff from there; a waiting record or one this device does not hold asks nothing.",
        receiving_state(
            retries=retries(
                record("e-1", count=5, asked_at=T0 - 400 * S, state="failed"),
                record("e-2", count=2, asked_at=T0 - 5 * S),
            )
        ),
        [
            (
                "ask again for failed e-1: waiting, the first ask again",
                again("e-1", T0),
                [store(record("e-1", count=1, asked_at=T0)), ask("e-1", 1)],
            ),
            ("ask again for e-1, now waiting: nothing", again("e-1", T0 + S), []),
            ("ask again for e-2, waiting: nothing", again("e-2", T0 + S), []),
            ("ask again for e-9, unknown: nothing", again("e-9", T0 + S), []),
            (
                "10 s later the timer asks e-1 a second time",
                due(T0 + 10 * S),
                [store(record("e-1", count=2, asked_at=T0 + 10 * S)), ask("e-1", 2)],
            ),
        ],
    )


def resend_received() -> dict[str, Any]:
    text, _ = inner(ContentType.TEXT, {"text": "the lost one"}, "text")
    late, _ = inner(ContentType.TEXT, {"text": "late"}, "late")
    request, _ = inner(
        ContentType.RETRY_REQUEST,
        {"envelope_id": "e-9", "count": 1, "signed_prekey": signed_prekey()},
        "nested request",
    )
    nested, _ = inner(ContentType.RESEND, {"envelope_id": "e-9", "content": None}, "nested resend")
    not_content = b64(bytes(64))  # version 0: does not decode

    def resend(message_id: str, envelope_id: str, content: str | None, device: str = "bob-phone"):
        body = {"envelope_id": envelope_id, "content": content}
        return decrypted("bob", device, RESEND, message_id, body)

    def accepted(envelope_id: str, content: str) -> list[dict[str, Any]]:
        return [
            {"type": "forget_retry", "sender_device": "bob-phone", "envelope_id": envelope_id},
            {
                "type": "accept_resend",
                "sender": "bob",
                "sender_device": "bob-phone",
                "envelope_id": envelope_id,
                "content": content,
            },
        ]

    return scenario(
        "A resend (type 10) answers an ask of this device: its content forgets the record and is applied as a content from that device; content null turns the record failed at once (a failed one stays as it is); a resend nobody asked for, or whose inner content does not decode or is itself a resend, is refused; a retry request inside one (a lost ask, asked for) is applied as that device's ask. A failed record is answered the same way (a late resend still shows the message).",
        receiving_state(
            retries=retries(
                record("e-1", count=1, asked_at=T0),
                record("e-2", count=2, asked_at=T0),
                record("e-3", count=1, asked_at=T0),
                record("e-4", count=5, asked_at=T0 - 400 * S, state="failed"),
                record("e-5", count=1, asked_at=T0, device="bob-laptop"),
            )
        ),
        [
            (
                "bob's phone resends e-1: the record forgotten, the content applied",
                resend(M1, "e-1", text),
                accepted("e-1", text),
            ),
            (
                "the same resend again (same message id): a duplicate",
                resend(M1, "e-1", text),
                [
                    {
                        "type": "drop_duplicate",
                        "sender": "bob",
                        "sender_device": "bob-phone",
                        "message_id": M1,
                    }
                ],
            ),
            (
                "another resend of e-1 (a new message id): not asked any more",
                resend(M2, "e-1", text),
                [refused("bob-phone", "not_asked")],
            ),
            (
                "bob's phone no longer holds e-2: failed now",
                resend(M3, "e-2", None),
                [store(record("e-2", count=2, asked_at=T0, state="failed"))],
            ),
            (
                "a second null for e-2, now failed: nothing more",
                resend(M10, "e-2", None),
                [],
            ),
            (
                "a resend of e-7, never asked for: refused",
                resend(M4, "e-7", text),
                [refused("bob-phone", "not_asked")],
            ),
            (
                "e-5 was asked of bob's laptop, not of his phone: refused",
                resend(M5, "e-5", text),
                [refused("bob-phone", "not_asked")],
            ),
            (
                "a resend of e-3 whose content does not decode: refused, still waiting",
                resend(M6, "e-3", not_content),
                [refused("bob-phone", "malformed_resend")],
            ),
            (
                "a resend of e-3 holding a resend: refused",
                resend(M8, "e-3", nested),
                [refused("bob-phone", "malformed_resend")],
            ),
            (
                "a resend of e-3 holding a retry request (an ask of bob's phone that was lost and asked for): applied, it is that device's ask",
                resend(M7, "e-3", request),
                accepted("e-3", request),
            ),
            (
                "a late resend for failed e-4: applied",
                resend(M9, "e-4", late),
                accepted("e-4", late),
            ),
        ],
    )


def retry_request_received() -> dict[str, Any]:
    body = {"envelope_id": "a-1", "count": 1, "signed_prekey": signed_prekey()}
    return scenario(
        "A retry request (type 9) from any device, a contact's or an own one, goes to the adapter, which looks its envelope up in the resend cache and feeds retry_requested; from a blocked account it is dropped as any content.",
        receiving_state(blocked=["carol"]),
        [
            (
                "bob's phone asks for a-1",
                decrypted("bob", "bob-phone", RETRY_REQUEST, M1, body),
                [
                    {
                        "type": "accept_retry_request",
                        "sender": "bob",
                        "sender_device": "bob-phone",
                        "body": body,
                    }
                ],
            ),
            (
                "alice's laptop asks for a-1",
                decrypted("alice", "alice-laptop", RETRY_REQUEST, M2, body),
                [
                    {
                        "type": "accept_retry_request",
                        "sender": "alice",
                        "sender_device": "alice-laptop",
                        "body": body,
                    }
                ],
            ),
            (
                "the same request again: a duplicate",
                decrypted("bob", "bob-phone", RETRY_REQUEST, M1, body),
                [
                    {
                        "type": "drop_duplicate",
                        "sender": "bob",
                        "sender_device": "bob-phone",
                        "message_id": M1,
                    }
                ],
            ),
            (
                "carol, blocked, asks: dropped",
                decrypted("carol", "carol-phone", RETRY_REQUEST, M3, body),
                [
                    {
                        "type": "drop_blocked",
                        "sender": "carol",
                        "sender_device": "carol-phone",
                        "message_id": M3,
                    }
                ],
            ),
        ],
    )


def resend_answered() -> dict[str, Any]:
    prekey = signed_prekey()
    rng = TestRng(seed("scenario resend cache"))  # per call: two builds give the same file
    to_bob = b64(rng(64))  # the encoded contents cached per target (opaque to the engine)
    to_laptop = b64(rng(128))
    sent_at = T0 - 3600 * S

    def cached(resends: dict[str, int], sent: int = sent_at) -> dict[str, Any]:
        return {
            "envelope_id": "a-1",
            "recipient": "bob",
            "sent_at": sent,
            "targets": {"bob-phone": to_bob, "bob-laptop": to_bob, "alice-laptop": to_laptop},
            "resends": resends,
        }

    kem = kem_prekey()

    def requested(
        count: int,
        entry: dict[str, Any] | None,
        now: int = T0,
        device: str = "bob-phone",
        v2: bool = False,
    ) -> dict[str, Any]:
        sender = "alice" if device.startswith("alice") else "bob"
        body = {"envelope_id": "a-1", "count": count, "signed_prekey": prekey}
        return {
            "type": "retry_requested",
            "sender": sender,
            "sender_device": device,
            "body": {**body, "kem_prekey": kem} if v2 else body,
            "cached": entry,
            "now": now,
        }

    def resend(
        content: str | None,
        new_session: bool = False,
        device: str = "bob-phone",
        recipient: str = "bob",
        v2: bool = False,
    ) -> dict[str, Any]:
        return {
            "type": "resend",
            "recipient": recipient,
            "device": device,
            "envelope_id": "a-1",
            "content": content,
            "new_session": new_session,
            "signed_prekey": prekey if new_session else None,
            "kem_prekey": kem if new_session and v2 else None,
        }

    def counted(count: int, device: str = "bob-phone") -> dict[str, Any]:
        return {
            "type": "store_resend_count",
            "envelope_id": "a-1",
            "device": device,
            "count": count,
        }

    return scenario(
        "The sender answers a retry request from its resend cache (24.3): the content that very device was sent, its count raised, in the current session for the first ask and in a new session from the request's signed prekey from the second on; content null and nothing else (in a new session from the second ask on, too) when the cache holds no entry, the entry is older than RESEND_CACHE_MS, the device was no target, or it was resent MAX_RETRIES times already.",
        receiving_state(),
        [
            (
                "bob's phone asks once: counted, resent in the current session",
                requested(1, cached({})),
                [counted(1), resend(to_bob, new_session=False)],
            ),
            (
                "bob's phone asks a second time: resent in a new session from its signed prekey",
                requested(2, cached({"bob-phone": 1})),
                [counted(2), resend(to_bob, new_session=True)],
            ),
            (
                "bob's phone, of version 2, asks a second time with its KEM prekey: the new session is made from both (27.5)",
                requested(2, cached({"bob-phone": 1}), v2=True),
                [counted(2), resend(to_bob, new_session=True, v2=True)],
            ),
            (
                "its first ask with a KEM prekey goes in the current session: no prekey passed on",
                requested(1, cached({}), v2=True),
                [counted(1), resend(to_bob, v2=True)],
            ),
            (
                "alice's laptop got the sent transcript: that is what it gets again",
                requested(1, cached({"bob-phone": 2}), device="alice-laptop"),
                [
                    counted(1, device="alice-laptop"),
                    resend(to_laptop, device="alice-laptop", recipient="alice"),
                ],
            ),
            (
                "the fourth resend to bob's phone (count 3 so far)",
                requested(5, cached({"bob-phone": 3})),
                [counted(4), resend(to_bob, new_session=True)],
            ),
            ("no entry in the cache: null", requested(1, None), [resend(None)]),
            (
                "an entry exactly RESEND_CACHE_MS old: still resent",
                requested(1, cached({}), now=sent_at + 86_400_000),
                [counted(1), resend(to_bob)],
            ),
            (
                "one ms older: expired, null",
                requested(1, cached({}), now=sent_at + 86_400_001),
                [resend(None)],
            ),
            (
                "bob's tablet was no target of a-1: null",
                requested(1, cached({}), device="bob-tablet"),
                [resend(None, device="bob-tablet")],
            ),
            (
                "bob's phone was resent a-1 MAX_RETRIES (5) times: null, even from a new ask (in a new session: from the second ask on, the session may be what broke)",
                requested(2, cached({"bob-phone": 5})),
                [resend(None, new_session=True)],
            ),
        ],
    )


SCENARIOS = {
    "retry_decrypt_failed_asks.json": decrypt_failed_asks,
    "retry_waiting_cap.json": decrypt_failed_waiting_cap,
    "retry_backoff_then_failed.json": backoff_then_failed,
    "retry_ask_again.json": ask_again,
    "retry_resend_received.json": resend_received,
    "retry_request_received.json": retry_request_received,
    "retry_resend_answered.json": resend_answered,
}
