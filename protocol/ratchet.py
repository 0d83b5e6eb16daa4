"""Double Ratchet sessions (docs/protocol.md sections 6 and 8): the state machine of one
pairwise session and its serialized form. The KDFs and skipped keys are in
protocol.ratchetkeys; a responder's session starts in protocol.inbound."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from protocol import primitives, x3dh
from protocol.encoding import MAX_SAFE_INTEGER, b64u_decode, b64u_encode, is_uint
from protocol.exceptions import (
    DecryptionFailed,
    DowngradeRefused,
    MalformedMessage,
    ReplayDetected,
    TooManySkippedMessages,
    UnknownSession,
)
from protocol.keys import IdentityKeyPair, PrekeyBundle, X25519KeyPair, verify_prekey_bundle
from protocol.message import Header, PrekeyMessage, RatchetMessage, decode_message
from protocol.pqratchet import KemState
from protocol.ratchetkeys import MAX_SKIP, SkippedKeys, kdf_ck, kdf_rk
from protocol.rng import Rng
from protocol.x3dh import Encapsulate, random_encapsulate

MAX_PREVIOUS_DH_REMOTE = 16
# sessions with one device that newer ones replaced, kept and tried, newest first, when the
# current one cannot decrypt (docs/protocol.md 7.1 and 24.5)
ARCHIVED_SESSIONS = 10


@dataclass(frozen=True)
class PendingPrekey:
    """What the initiator repeats in every message until it hears back (section 6.2)."""

    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None
    kem_prekey_id: int | None = None  # version 2 (section 27.3)
    kem_ciphertext: bytes | None = None


@dataclass
class Session:
    """One pairwise session with one remote device. Mutated by encrypt/decrypt.

    decrypt() commits its changes only when the message authenticates, so a refused message
    leaves the session unchanged.
    """

    role: str  # "initiator" | "responder"
    local_identity_key: bytes
    remote_identity_key: bytes
    base_key: bytes
    root_key: bytes
    dh_self: X25519KeyPair
    dh_remote: bytes | None
    send_chain_key: bytes | None
    recv_chain_key: bytes | None
    send_n: int = 0
    recv_n: int = 0
    prev_n: int = 0
    skipped: SkippedKeys = field(default_factory=SkippedKeys)
    previous_dh_remote: list[bytes] = field(default_factory=list)
    pending_prekey: PendingPrekey | None = None
    version: int = 1
    binding: bytes = b""  # version 2: the first message's fields, in AD (section 27.2)
    kem: KemState | None = None  # version 2: the KEM steps (section 27.4)

    @property
    def associated_data(self) -> bytes:
        if self.role == "initiator":
            return self.local_identity_key + self.remote_identity_key + self.binding
        return self.remote_identity_key + self.local_identity_key + self.binding

    @classmethod
    def initiate(
        cls,
        *,
        identity: IdentityKeyPair,
        bundle: PrekeyBundle,
        listed_identity_key: bytes,
        rng: Rng,
        encapsulate: Encapsulate = random_encapsulate,
        device_speaks_v2: bool = False,
    ) -> Session:
        """Verify `bundle` against the key in the signed list, run X3DH (PQXDH for a bundle
        with a KEM prekey: a version-2 session), start as Alice. For a device whose signed
        entry lists version 2 (`device_speaks_v2`), a bundle without a KEM prekey is
        DowngradeRefused (section 27.5).

        Draws rng(32) for the base key, rng(32) for the encapsulation (version 2), then rng(32)
        for the first ratchet key.
        """
        verify_prekey_bundle(bundle, listed_identity_key=listed_identity_key)
        if device_speaks_v2 and bundle.kem_prekey is None:
            raise DowngradeRefused(
                f"prekey bundle for device {bundle.device_id!r}: no KEM prekey, and its signed "
                "entry lists version 2"
            )
        agreement = x3dh.initiate(
            identity=identity, bundle=bundle, rng=rng, encapsulate=encapsulate
        )
        assert agreement.base_key is not None
        dh_self = X25519KeyPair.generate(rng)
        root_key, send_chain_key = kdf_rk(
            agreement.shared_secret, primitives.dh(dh_self.private, bundle.signed_prekey)
        )
        return cls(
            role="initiator",
            local_identity_key=identity.public,
            remote_identity_key=bundle.identity_key,
            base_key=agreement.base_key.public,
            root_key=root_key,
            dh_self=dh_self,
            dh_remote=bundle.signed_prekey,
            send_chain_key=send_chain_key,
            recv_chain_key=None,
            pending_prekey=PendingPrekey(
                ephemeral_key=agreement.base_key.public,
                signed_prekey_id=bundle.signed_prekey_id,
                one_time_prekey_id=bundle.one_time_prekey_id,
                kem_prekey_id=None if bundle.kem_prekey is None else bundle.kem_prekey.id,
                kem_ciphertext=agreement.kem_ciphertext,
            ),
            version=agreement.version,
            binding=agreement.binding,
            kem=None if agreement.version == 1 else KemState(),
        )

    def encrypt(self, plaintext: bytes, rng: Rng) -> bytes:
        """Encrypt one message (section 6.3); draws rng(24) for the nonce.

        The state changes only once the message is encoded, so a counter or prekey id that
        does not fit its u32 field (MalformedMessage) leaves the session as it was.
        """
        if self.send_chain_key is None:
            raise UnknownSession(
                "session: expected a sending chain; the responder cannot send first"
            )
        message_key, next_chain_key = kdf_ck(self.send_chain_key)
        header = Header(
            dh=self.dh_self.public,
            pn=self.prev_n,
            n=self.send_n,
            **({} if self.kem is None else self.kem.header_fields()),
        )
        header_bytes = header.encode()
        nonce = rng(24)
        ciphertext = primitives.aead_encrypt(
            message_key, nonce, plaintext, self.associated_data + header_bytes
        )
        message = RatchetMessage(header=header, nonce=nonce, ciphertext=ciphertext)
        if self.pending_prekey is None:
            wire = message.encode()
        else:
            wire = PrekeyMessage(
                identity_key=self.local_identity_key,
                base_key=self.pending_prekey.ephemeral_key,
                signed_prekey_id=self.pending_prekey.signed_prekey_id,
                one_time_prekey_id=self.pending_prekey.one_time_prekey_id,
                message=message,
                kem_prekey_id=self.pending_prekey.kem_prekey_id,
                kem_ciphertext=self.pending_prekey.kem_ciphertext,
            ).encode()
        self.send_chain_key = next_chain_key
        self.send_n += 1
        if self.kem is not None:
            self.kem = self.kem.counted()
        return wire

    def decrypt(
        self, data: bytes, rng: Rng, encapsulate: Encapsulate = random_encapsulate
    ) -> bytes:
        """Decrypt wire bytes (ratchet or prekey message) for this session (section 6.4).

        May draw rng(32) for a new ratchet key (and, version 2, rng(32) for an answer and
        rng(64) for an offer, section 27.4). Raises ReplayDetected, TooManySkippedMessages,
        DecryptionFailed, UnknownSession or MalformedMessage and then changes nothing.
        """
        message = decode_message(data)
        if message.version != self.version:
            raise UnknownSession(  # another session's (the device may hold both, 27.3)
                f"message: expected version {self.version} for this session, got {message.version}"
            )
        if isinstance(message, PrekeyMessage):
            if (
                self.role != "responder"
                or message.base_key != self.base_key
                or message.identity_key != self.remote_identity_key
            ):
                raise UnknownSession(
                    "prekey message: expected this session's base key and identity"
                )
            message = message.message
        return self.decrypt_ratchet_message(message, rng, encapsulate)

    def decrypt_ratchet_message(
        self, message: RatchetMessage, rng: Rng, encapsulate: Encapsulate = random_encapsulate
    ) -> bytes:
        if message.version != self.version:
            raise UnknownSession(  # another session's (the device may hold both, 27.3)
                f"message: expected version {self.version} for this session, got {message.version}"
            )
        work = self._copy()
        plaintext = work._decrypt(message, rng, encapsulate)
        work.pending_prekey = None
        if work.kem is not None:
            work.kem = work.kem.counted()
        self.__dict__.update(work.__dict__)
        return plaintext

    def _decrypt(self, message: RatchetMessage, rng: Rng, encapsulate: Encapsulate) -> bytes:
        header = message.header
        ad = self.associated_data + header.encode()
        skipped_key = self.skipped.pop(header.dh, header.n)
        if skipped_key is not None:
            return primitives.aead_decrypt(skipped_key, message.nonce, message.ciphertext, ad)
        if header.dh in self.previous_dh_remote or (
            header.dh == self.dh_remote and header.n < self.recv_n
        ):
            raise ReplayDetected(
                f"ratchet message {header.n}: already decrypted (or its key was discarded)"
            )
        if header.dh != self.dh_remote:
            self._skip(header.pn)
            self._dh_ratchet(header, rng, encapsulate)
        if self.recv_chain_key is None:
            # The initiator before its first reply: DHr is the responder's signed prekey, which
            # the responder never sends with, and there is no receiving chain. Deriving a key
            # from "no chain" would make a key anyone can compute (a forgery), so refuse.
            raise DecryptionFailed(
                "ratchet message: no receiving chain for this ratchet key (never sent with)"
            )
        self._skip(header.n)
        message_key, self.recv_chain_key = kdf_ck(self.recv_chain_key)
        self.recv_n += 1
        return primitives.aead_decrypt(message_key, message.nonce, message.ciphertext, ad)

    def _skip(self, until: int) -> None:
        if self.recv_chain_key is None:
            return
        if until > self.recv_n + MAX_SKIP:
            raise TooManySkippedMessages(
                f"ratchet: expected to skip at most {MAX_SKIP} messages, got {until - self.recv_n}"
            )
        assert self.dh_remote is not None
        while self.recv_n < until:
            message_key, self.recv_chain_key = kdf_ck(self.recv_chain_key)
            self.skipped.add(self.dh_remote, self.recv_n, message_key)
            self.recv_n += 1
        self.skipped.drop_oldest()

    def _dh_ratchet(self, header: Header, rng: Rng, encapsulate: Encapsulate) -> None:
        """Section 6.4 step 3; in a version-2 session with the KEM steps of section 27.4."""
        remote = header.dh
        kem_in = kem_out = b""
        if self.kem is not None:
            self.kem, kem_in = self.kem.take_answer(header)
        self.prev_n = self.send_n
        self.send_n = 0
        self.recv_n = 0
        if self.dh_remote is not None:
            self.previous_dh_remote = (self.previous_dh_remote + [self.dh_remote])[
                -MAX_PREVIOUS_DH_REMOTE:
            ]
        self.dh_remote = remote
        self.root_key, self.recv_chain_key = kdf_rk(
            self.root_key, primitives.dh(self.dh_self.private, remote) + kem_in
        )
        self.dh_self = X25519KeyPair.generate(rng)
        if self.kem is not None:
            self.kem, kem_out = self.kem.answer_offer(header, rng, encapsulate)
        self.root_key, self.send_chain_key = kdf_rk(
            self.root_key, primitives.dh(self.dh_self.private, remote) + kem_out
        )
        if self.kem is not None:
            self.kem = self.kem.maybe_offer(rng)

    def _copy(self) -> Session:
        return replace(
            self, skipped=self.skipped.copy(), previous_dh_remote=list(self.previous_dh_remote)
        )

    def to_dict(self) -> dict[str, Any]:
        """Section 8. Contains private keys: store it like one."""

        def opt(value: bytes | None) -> str | None:
            return None if value is None else b64u_encode(value)

        pending: dict[str, Any] | None = None
        if self.pending_prekey is not None:
            pending = {
                "ephemeral_key": b64u_encode(self.pending_prekey.ephemeral_key),
                "signed_prekey_id": self.pending_prekey.signed_prekey_id,
                "one_time_prekey_id": self.pending_prekey.one_time_prekey_id,
            }
            if self.version == 2:
                assert self.pending_prekey.kem_ciphertext is not None
                pending["kem_prekey_id"] = self.pending_prekey.kem_prekey_id
                pending["kem_ciphertext"] = b64u_encode(self.pending_prekey.kem_ciphertext)
        data: dict[str, Any] = {
            "version": self.version,
            "role": self.role,
            "local_identity_key": b64u_encode(self.local_identity_key),
            "remote_identity_key": b64u_encode(self.remote_identity_key),
            "base_key": b64u_encode(self.base_key),
            "root_key": b64u_encode(self.root_key),
            "dh_self_private": b64u_encode(self.dh_self.private),
            "dh_self_public": b64u_encode(self.dh_self.public),
            "dh_remote": opt(self.dh_remote),
            "send_chain_key": opt(self.send_chain_key),
            "recv_chain_key": opt(self.recv_chain_key),
            "send_n": self.send_n,
            "recv_n": self.recv_n,
            "prev_n": self.prev_n,
            "skipped": self.skipped.to_list(),
            "previous_dh_remote": [b64u_encode(k) for k in self.previous_dh_remote],
            "pending_prekey": pending,
        }
        if self.kem is not None:
            data["binding"] = b64u_encode(self.binding)
            data["kem"] = self.kem.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Session:
        """Parse the section 8 JSON object; anything else is MalformedMessage.

        Counters must be integers in 0..2^53-1 and prekey ids in 0..2^32-1 (not bools,
        floats or strings), as in the JS mirror.
        """
        try:
            if not isinstance(data, dict):
                raise MalformedMessage(f"session: expected an object, got {type(data).__name__}")
            version = data["version"]
            if not is_uint(version) or version not in (1, 2):
                raise MalformedMessage(f"session: expected version 1 or 2, got {version!r}")
            if version == 1 and ("kem" in data or "binding" in data):
                raise MalformedMessage("session: version 1 has no KEM state")
            if data["role"] not in ("initiator", "responder"):
                raise MalformedMessage(f"session: expected a role, got {data['role']!r}")

            def key(name: str) -> bytes:
                return b64u_decode(data[name], length=32, what=f"session {name}")

            def opt(name: str) -> bytes | None:
                return None if data[name] is None else key(name)

            dh_self = X25519KeyPair.from_private(key("dh_self_private"))
            if dh_self.public != key("dh_self_public"):
                raise MalformedMessage("session: dh_self_public does not match dh_self_private")
            if data["recv_chain_key"] is not None and data["dh_remote"] is None:
                raise MalformedMessage("session: a receiving chain needs a remote ratchet key")
            pending = data["pending_prekey"]
            if pending is not None and not isinstance(pending, dict):
                raise MalformedMessage("session pending_prekey: expected an object or null")
            kem_id = kem_ct = None
            if pending is not None and version == 2:
                kem_id = _counter(pending["kem_prekey_id"], "kem_prekey_id", 0xFFFFFFFF)
                kem_ct = b64u_decode(
                    pending["kem_ciphertext"],
                    length=primitives.MLKEM768_CIPHERTEXT_BYTES,
                    what="kem ciphertext",
                )
            return cls(
                role=data["role"],
                local_identity_key=key("local_identity_key"),
                remote_identity_key=key("remote_identity_key"),
                base_key=key("base_key"),
                root_key=key("root_key"),
                dh_self=dh_self,
                dh_remote=opt("dh_remote"),
                send_chain_key=opt("send_chain_key"),
                recv_chain_key=opt("recv_chain_key"),
                send_n=_counter(data["send_n"], "send_n"),
                recv_n=_counter(data["recv_n"], "recv_n"),
                prev_n=_counter(data["prev_n"], "prev_n"),
                skipped=SkippedKeys.from_list(_list(data["skipped"], "skipped")),
                previous_dh_remote=[
                    b64u_decode(k, length=32, what="previous dh")
                    for k in _list(data["previous_dh_remote"], "previous_dh_remote")
                ],
                pending_prekey=None
                if pending is None
                else PendingPrekey(
                    ephemeral_key=b64u_decode(
                        pending["ephemeral_key"], length=32, what="ephemeral"
                    ),
                    signed_prekey_id=_counter(
                        pending["signed_prekey_id"], "signed_prekey_id", 0xFFFFFFFF
                    ),
                    one_time_prekey_id=None
                    if pending["one_time_prekey_id"] is None
                    else _counter(pending["one_time_prekey_id"], "one_time_prekey_id", 0xFFFFFFFF),
                    kem_prekey_id=kem_id,
                    kem_ciphertext=kem_ct,
                ),
                version=version,
                binding=b""
                if version == 1
                else b64u_decode(data["binding"], length=32, what="session binding"),
                kem=None if version == 1 else KemState.from_dict(data["kem"]),
            )
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"session: missing or mistyped field {exc}") from exc


def _counter(value: Any, what: str, maximum: int = MAX_SAFE_INTEGER) -> int:
    if not is_uint(value, maximum):
        raise MalformedMessage(
            f"session {what}: expected an integer in 0..{maximum}, got {value!r}"
        )
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedMessage(f"session {what}: expected a list")
    return value


def outdated_for(session: Session, speaks_v2: bool) -> bool:
    """A version-1 session with a device whose signed entry lists version 2 is used for no new
    message: a version-2 session from the device's bundle replaces it (section 27.5)."""
    return speaks_v2 and session.version == 1
