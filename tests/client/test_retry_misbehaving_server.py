"""A misbehaving server against retry requests (docs/protocol.md 24.3, "a replayed request
gains nothing"): a server that delivers an old retry request again, or a requester that
sends an old one again, makes the sender send nothing it has not already sent to that
device, and a device asking again and again gets the content at most MAX_RETRIES times.
Deliveries are rewritten and injected on the device socket (tests.support.rewriting)."""

from __future__ import annotations

import random
import secrets
from pathlib import Path
from typing import Any

import pytest

from client.events import Duplicate, MessageWaiting, Refused
from client.messenger import Messenger, TextMessage
from client.store import now_ms
from protocol.content import ContentType, encode_content, new_content
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import MAX_RETRIES
from protocol.exceptions import ReplayDetected
from protocol.rng import system_rng
from tests.support.actors import person
from tests.support.devices import Device, primary_messenger
from tests.support.rewriting import flip_byte


@pytest.fixture
def pair(live_app, tmp_path: Path) -> tuple[Messenger, Messenger]:
    alice, bob = person(live_app, "alice"), person(live_app, "bob")
    return primary_messenger(alice, tmp_path), primary_messenger(bob, tmp_path)


def first_from(sender: Messenger) -> Any:
    """A rule for deliver frames: the first envelope from `sender`'s device is corrupted."""
    done: list[str] = []

    def rewrite(frame: dict[str, Any]) -> dict[str, Any]:
        for envelope in frame.get("envelopes") or []:
            if not done and envelope.get("sender_device") == sender.device.device_id:
                envelope["ciphertext"] = flip_byte(envelope["ciphertext"], random.Random(7))
                done.append(envelope["id"])
        return frame

    return rewrite


def resends(device: Device) -> list[dict[str, Any]]:
    """The partial sends (retry requests, resends) a device's socket sent."""
    return [f for f in device.connection.sent if f.get("type") == "send" and f.get("partial")]


def replayed(entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deliver frame holding `entry` again, at a queue position never used."""
    return {
        "type": "deliver",
        "envelopes": [entry | {"seq": 2**62 + secrets.randbelow(2**30)} | changes],
    }


async def recovered_once(alice: Messenger, bob: Messenger) -> tuple[Device, Device]:
    """Alice's first message reaches Bob corrupted; he asks, she sends it again."""
    alice_phone = await Device(alice).connect(rewrite=lambda frame: frame)
    bob_phone = await Device(bob).connect(rewrite=first_from(alice))
    await alice_phone.connection.send_text(bob.account_id, "one")
    await bob_phone.wait_for(MessageWaiting)
    [shown] = await bob_phone.wait_for(TextMessage)
    assert shown.text == "one" and len(resends(alice_phone)) == 1
    return alice_phone, bob_phone


async def test_a_replayed_retry_request_makes_the_sender_resend_nothing(pair):
    alice, bob = pair
    alice_phone, bob_phone = await recovered_once(alice, bob)
    [request] = [
        e for e in alice_phone.connection.delivered if e["sender_device"] == bob.device.device_id
    ]
    before = len(alice_phone.events)

    # the server delivers the old request again: the ratchet refuses it as a replay
    await alice_phone.connection.inject(replayed(request))
    await alice_phone.connection.inject(replayed(request, id=secrets.token_urlsafe(8)))
    refusals = alice_phone.of(Refused)
    assert len(refusals) == 2 and all(isinstance(r.error, ReplayDetected) for r in refusals)

    # a requester sending its old request again in a new ciphertext (a restored copy): the
    # same content id, dropped as a duplicate
    [asked] = resends(bob_phone)
    cached = bob.store.cached_send(asked["id"])
    assert cached is not None
    session = bob.store.session(alice.device.device_id)
    again = session.encrypt(b64u_decode(cached.targets[alice.device.device_id]), system_rng)
    bob.store.save_session(
        account_id=alice.account_id, device_id=alice.device.device_id, session=session
    )
    await alice_phone.connection.inject(
        replayed(
            request, id=secrets.token_urlsafe(8), ciphertext=b64u_encode(again), sent_at=now_ms()
        )
    )
    assert [type(e) for e in alice_phone.events[before:]] == [Refused, Refused, Duplicate]
    assert len(resends(alice_phone)) == 1  # nothing sent again
    await alice_phone.connection.send_text(bob.account_id, "two")  # the sessions are in step
    await bob_phone.wait_for(TextMessage, 2)
    await alice_phone.close()
    await bob_phone.close()


async def test_a_device_asking_again_and_again_gets_the_content_at_most_five_times(pair):
    """Fresh requests (new content ids, as a requester's own device could make them) for
    one envelope: the sender resends its content MAX_RETRIES times in all, then says it
    holds it no more; and a request for an envelope that device was never sent gets nothing."""
    alice, bob = pair
    alice_phone, bob_phone = await recovered_once(alice, bob)
    [sent] = [
        f for f in alice_phone.connection.sent if f.get("type") == "send" and not f.get("partial")
    ]
    own = bob.store.device_list(bob.account_id)
    prekey = bob.store.signed_prekeys()[-1]

    async def ask(envelope_id: str) -> None:
        body = {
            "envelope_id": envelope_id,
            "count": 1,
            "signed_prekey": {
                "id": prekey.id,
                "public_key": b64u_encode(prekey.key.public),
                "signature": b64u_encode(prekey.signature),
            },
        }
        content = new_content(
            ContentType.RETRY_REQUEST,
            body,
            timestamp=now_ms(),
            sender_list_version=own.version,
            sender_list_hash=own.hash,
            rng=system_rng,
        )
        session = bob.store.session(alice.device.device_id)
        ciphertext = session.encrypt(encode_content(content), system_rng)
        bob.store.save_session(
            account_id=alice.account_id, device_id=alice.device.device_id, session=session
        )
        entry = {
            "id": secrets.token_urlsafe(8),
            "sender": bob.account_id,
            "sender_device": bob.device.device_id,
            "ciphertext": b64u_encode(ciphertext),
            "sent_at": now_ms(),
        }
        await alice_phone.connection.inject(replayed(entry))

    for _ in range(MAX_RETRIES + 2):
        await ask(sent["id"])
    cached = alice.store.cached_send(sent["id"])
    assert cached is not None and cached.resends == {bob.device.device_id: MAX_RETRIES}
    answers = resends(alice_phone)[1:]
    assert len(answers) == MAX_RETRIES + 2
    with_content = [a for a in answers if alice.store.cached_send(a["id"]) is not None]
    assert len(with_content) == MAX_RETRIES - 1  # the first resend was the honest ask's

    await ask("an-envelope-bob-never-got")
    [answer] = resends(alice_phone)[len(answers) + 1 :]
    assert alice.store.cached_send(answer["id"]) is None  # an answer without content
    await alice_phone.close()
    await bob_phone.close()
