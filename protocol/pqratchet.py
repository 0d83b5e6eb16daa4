"""The KEM steps of a version-2 session (docs/protocol.md section 27.4): one side offers a
fresh ML-KEM key every so often, the other answers with an encapsulation, and each secret is
mixed into the root key at a DH ratchet step. protocol.ratchet calls these at its steps."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from protocol import primitives
from protocol.encoding import MAX_SAFE_INTEGER, b64u_decode, b64u_encode, is_uint
from protocol.exceptions import DecryptionFailed, MalformedMessage
from protocol.message import Header, KemAnswer, KemOffer
from protocol.rng import Rng
from protocol.x3dh import Encapsulate

KEM_INTERVAL = 32


@dataclass(frozen=True)
class OwnOffer:
    id: int
    seed: bytes
    public_key: bytes

    @classmethod
    def from_seed(cls, offer_id: int, seed: bytes) -> OwnOffer:
        return cls(id=offer_id, seed=seed, public_key=primitives.mlkem768_public(seed))


@dataclass(frozen=True)
class KemState:
    """Section 27.4's fields of a version-2 session; replaced, never changed in place."""

    offer: OwnOffer | None = None
    answer: KemAnswer | None = None
    next_id: int = 1
    answered: int = 0
    count: int = 0

    def header_fields(self) -> dict[str, Any]:
        offer = None if self.offer is None else KemOffer(self.offer.id, self.offer.public_key)
        return {"version": 2, "kem_offer": offer, "kem_answer": self.answer}

    def counted(self) -> KemState:
        return replace(self, count=self.count + 1)

    def take_answer(self, header: Header) -> tuple[KemState, bytes]:
        """At a step into the other side's new chain: the secret of its answer (b"" if none)."""
        answer = header.kem_answer
        if answer is None:
            return self, b""
        if self.offer is None or answer.id != self.offer.id:
            raise DecryptionFailed(
                f"ratchet message: an answer to KEM offer {answer.id}, which this side did not make"
            )
        shared = primitives.mlkem768_decapsulate(self.offer.seed, answer.ciphertext)
        return replace(self, offer=None, count=0), shared

    def answer_offer(
        self, header: Header, rng: Rng, encapsulate: Encapsulate
    ) -> tuple[KemState, bytes]:
        """At the same step, for this side's new sending chain: the answer to the other side's
        offer, if it made one not answered yet (b"" if none)."""
        state = replace(self, answer=None)
        offer = header.kem_offer
        if offer is None or offer.id <= self.answered:
            return state, b""
        ciphertext, shared = encapsulate(offer.public_key, rng(32))
        answer = KemAnswer(id=offer.id, ciphertext=ciphertext)
        return replace(state, answer=answer, answered=offer.id, count=0), shared

    def maybe_offer(self, rng: Rng) -> KemState:
        """At the start of a sending chain: offer a fresh key when it is time (draws rng(64))."""
        if self.offer is not None or self.answer is not None or self.count < KEM_INTERVAL:
            return self
        offer = OwnOffer.from_seed(self.next_id, rng(64))
        return replace(self, offer=offer, next_id=self.next_id + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer": None
            if self.offer is None
            else {"id": self.offer.id, "seed": b64u_encode(self.offer.seed)},
            "answer": None
            if self.answer is None
            else {"id": self.answer.id, "ciphertext": b64u_encode(self.answer.ciphertext)},
            "next_id": self.next_id,
            "answered": self.answered,
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, data: Any) -> KemState:
        if not isinstance(data, dict):
            raise MalformedMessage("session kem: expected an object")
        offer, answer = data["offer"], data["answer"]
        if not (offer is None or isinstance(offer, dict)) or not (
            answer is None or isinstance(answer, dict)
        ):
            raise MalformedMessage("session kem: expected offer and answer objects or null")
        return cls(
            offer=None
            if offer is None
            else OwnOffer.from_seed(
                _uint(offer["id"], "offer id", 0xFFFFFFFF),
                b64u_decode(
                    offer["seed"], length=primitives.MLKEM768_SEED_BYTES, what="kem offer seed"
                ),
            ),
            answer=None
            if answer is None
            else KemAnswer(
                id=_uint(answer["id"], "answer id", 0xFFFFFFFF),
                ciphertext=b64u_decode(
                    answer["ciphertext"],
                    length=primitives.MLKEM768_CIPHERTEXT_BYTES,
                    what="kem answer",
                ),
            ),
            next_id=_uint(data["next_id"], "next_id", 0xFFFFFFFF),
            answered=_uint(data["answered"], "answered", 0xFFFFFFFF),
            count=_uint(data["count"], "count", MAX_SAFE_INTEGER),
        )


def _uint(value: Any, what: str, maximum: int) -> int:
    if not is_uint(value, maximum):
        raise MalformedMessage(f"session kem {what}: expected an integer in 0..{maximum}")
    return value
