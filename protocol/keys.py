"""Device keys and prekey bundles (docs/protocol.md section 3)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from protocol import primitives
from protocol.encoding import b64u_decode, b64u_encode, is_uint, label, u8, u32
from protocol.exceptions import InvalidKey, MalformedMessage, UntrustedIdentity
from protocol.rng import Rng


@dataclass(frozen=True)
class IdentityKeyPair:
    """Ed25519 identity key; its X25519 form is derived for X3DH."""

    public: bytes
    secret: bytes  # 64 bytes: seed ‖ public

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKeyPair:
        public, secret = primitives.ed25519_keypair(seed)
        return cls(public=public, secret=secret)

    @property
    def x25519_public(self) -> bytes:
        return primitives.ed25519_pk_to_x25519(self.public)

    @property
    def x25519_private(self) -> bytes:
        return primitives.ed25519_sk_to_x25519(self.secret)

    def sign(self, message: bytes) -> bytes:
        return primitives.ed25519_sign(self.secret, message)


@dataclass(frozen=True)
class X25519KeyPair:
    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> X25519KeyPair:
        return cls(private=private, public=primitives.x25519_public(private))

    @classmethod
    def generate(cls, rng: Rng) -> X25519KeyPair:
        return cls.from_private(rng(32))


@dataclass(frozen=True)
class SignedPrekey:
    id: int
    key: X25519KeyPair
    signature: bytes


@dataclass(frozen=True)
class OneTimePrekey:
    id: int
    key: X25519KeyPair


@dataclass(frozen=True)
class PublicKemPrekey:
    """A KEM prekey as a bundle carries it (section 27.1)."""

    id: int
    public_key: bytes
    signature: bytes
    last_resort: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "public_key": b64u_encode(self.public_key),
            "signature": b64u_encode(self.signature),
            "last_resort": self.last_resort,
        }

    @classmethod
    def from_dict(cls, data: Any) -> PublicKemPrekey:
        if not isinstance(data, dict) or not isinstance(data.get("last_resort"), bool):
            raise MalformedMessage("kem prekey: expected an object with a boolean last_resort")
        return cls(
            id=_u32_field(data["id"], "kem_prekey.id"),
            public_key=b64u_decode(
                data["public_key"],
                length=primitives.MLKEM768_PUBLIC_KEY_BYTES,
                what="kem prekey public key",
            ),
            signature=b64u_decode(data["signature"], length=64, what="kem prekey signature"),
            last_resort=data["last_resort"],
        )


@dataclass(frozen=True)
class KemPrekey:
    """An ML-KEM-768 prekey kept as its seed (section 27.1); the public key and its signature
    follow from the seed and the identity key, computed when first asked for (a device loads
    its keys often and uses a KEM prekey seldom)."""

    id: int
    seed: bytes
    last_resort: bool
    identity: IdentityKeyPair = field(repr=False)

    @classmethod
    def from_seed(
        cls, identity: IdentityKeyPair, key_id: int, seed: bytes, *, last_resort: bool
    ) -> KemPrekey:
        if len(seed) != primitives.MLKEM768_SEED_BYTES:
            raise InvalidKey(f"KEM prekey seed: expected 64 bytes, got {len(seed)}")
        return cls(id=key_id, seed=seed, last_resort=last_resort, identity=identity)

    @cached_property
    def public(self) -> bytes:
        return primitives.mlkem768_public(self.seed)

    @cached_property
    def signature(self) -> bytes:
        return self.identity.sign(kem_prekey_bytes(self.id, self.last_resort, self.public))

    def to_public(self) -> PublicKemPrekey:
        return PublicKemPrekey(
            id=self.id,
            public_key=self.public,
            signature=self.signature,
            last_resort=self.last_resort,
        )


@dataclass(frozen=True)
class DeviceKeys:
    """Everything private a device holds; never leaves the device."""

    identity: IdentityKeyPair
    signed_prekey: SignedPrekey
    one_time_prekeys: tuple[OneTimePrekey, ...]
    kem_prekeys: tuple[KemPrekey, ...] = ()
    last_resort_kem_prekey: KemPrekey | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": 1 if self.last_resort_kem_prekey is None else 2,
            "identity_seed": b64u_encode(self.identity.secret[:32]),
            "signed_prekey": _signed_prekey_to_dict(self.signed_prekey),
            "one_time_prekeys": [
                {"id": k.id, "private_key": b64u_encode(k.key.private)}
                for k in self.one_time_prekeys
            ],
        }
        if self.last_resort_kem_prekey is not None:
            data["kem_prekeys"] = [
                {"id": k.id, "seed": b64u_encode(k.seed)} for k in self.kem_prekeys
            ]
            data["last_resort_kem_prekey"] = {
                "id": self.last_resort_kem_prekey.id,
                "seed": b64u_encode(self.last_resort_kem_prekey.seed),
            }
        return data

    @classmethod
    def from_dict(cls, data: Any) -> DeviceKeys:
        """Parse the private JSON form (version 1, or 2 with KEM prekeys); anything else is
        MalformedMessage."""
        version = data.get("version") if isinstance(data, dict) else None
        if not is_uint(version) or version not in (1, 2):
            got = version if isinstance(data, dict) else type(data).__name__
            raise MalformedMessage(f"device keys: expected version 1 or 2, got {got!r}")
        try:
            one_time_prekeys = data["one_time_prekeys"]
            if not isinstance(one_time_prekeys, list):
                raise MalformedMessage("device keys: expected a list of one-time prekeys")
            identity = IdentityKeyPair.from_seed(
                b64u_decode(data["identity_seed"], length=32, what="identity_seed")
            )
            kem_prekeys: tuple[KemPrekey, ...] = ()
            last_resort = None
            if version == 2:
                if not isinstance(data["kem_prekeys"], list):
                    raise MalformedMessage("device keys: expected a list of KEM prekeys")
                kem_prekeys = tuple(
                    _kem_prekey_from_dict(identity, k, last_resort=False)
                    for k in data["kem_prekeys"]
                )
                last_resort = _kem_prekey_from_dict(
                    identity, data["last_resort_kem_prekey"], last_resort=True
                )
            elif "kem_prekeys" in data or "last_resort_kem_prekey" in data:
                raise MalformedMessage("device keys: version 1 has no KEM prekeys")
            return cls(
                identity=identity,
                signed_prekey=_signed_prekey_from_dict(data["signed_prekey"]),
                one_time_prekeys=tuple(
                    OneTimePrekey(
                        id=_u32_field(k["id"], "one-time prekey id"),
                        key=X25519KeyPair.from_private(
                            b64u_decode(k["private_key"], length=32, what="one-time prekey")
                        ),
                    )
                    for k in one_time_prekeys
                ),
                kem_prekeys=kem_prekeys,
                last_resort_kem_prekey=last_resort,
            )
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"device keys: missing or mistyped field {exc}") from exc


def _kem_prekey_from_dict(identity: IdentityKeyPair, data: Any, *, last_resort: bool) -> KemPrekey:
    if not isinstance(data, dict):
        raise MalformedMessage("device keys: expected a KEM prekey object")
    return KemPrekey.from_seed(
        identity,
        _u32_field(data["id"], "KEM prekey id"),
        b64u_decode(data["seed"], length=primitives.MLKEM768_SEED_BYTES, what="KEM prekey seed"),
        last_resort=last_resort,
    )


def _signed_prekey_to_dict(spk: SignedPrekey) -> dict[str, Any]:
    return {
        "id": spk.id,
        "private_key": b64u_encode(spk.key.private),
        "signature": b64u_encode(spk.signature),
    }


def _signed_prekey_from_dict(data: Any) -> SignedPrekey:
    return SignedPrekey(
        id=_u32_field(data["id"], "signed prekey id"),
        key=X25519KeyPair.from_private(
            b64u_decode(data["private_key"], length=32, what="signed prekey")
        ),
        signature=b64u_decode(data["signature"], length=64, what="signed prekey signature"),
    )


def signed_prekey_bytes(prekey_id: int, public_key: bytes) -> bytes:
    """label("Parley v1 signed prekey") ‖ u32 id ‖ public key; section 3.1."""
    return label("Parley v1 signed prekey") + u32(prekey_id) + public_key


def kem_prekey_bytes(prekey_id: int, last_resort: bool, public_key: bytes) -> bytes:
    """label("Parley v2 kem prekey") ‖ u32 id ‖ u8 last_resort ‖ public key; section 27.1."""
    return label("Parley v2 kem prekey") + u32(prekey_id) + u8(1 if last_resort else 0) + public_key


def generate_kem_prekey(
    identity: IdentityKeyPair, prekey_id: int, rng: Rng, *, last_resort: bool = False
) -> KemPrekey:
    """Draws rng(64), the key pair's seed."""
    return KemPrekey.from_seed(identity, prekey_id, rng(64), last_resort=last_resort)


def generate_kem_prekeys(
    identity: IdentityKeyPair, ids: Iterable[int], rng: Rng
) -> tuple[KemPrekey, ...]:
    return tuple(generate_kem_prekey(identity, i, rng) for i in ids)


def generate_identity(rng: Rng) -> IdentityKeyPair:
    return IdentityKeyPair.from_seed(rng(32))


def generate_signed_prekey(identity: IdentityKeyPair, prekey_id: int, rng: Rng) -> SignedPrekey:
    key = X25519KeyPair.generate(rng)
    return SignedPrekey(
        id=prekey_id, key=key, signature=identity.sign(signed_prekey_bytes(prekey_id, key.public))
    )


def generate_one_time_prekeys(ids: Iterable[int], rng: Rng) -> tuple[OneTimePrekey, ...]:
    return tuple(OneTimePrekey(id=i, key=X25519KeyPair.generate(rng)) for i in ids)


def generate_device_keys(
    rng: Rng,
    *,
    signed_prekey_id: int = 1,
    one_time_prekey_ids: Iterable[int] = (),
    last_resort_kem_prekey_id: int | None = None,
    kem_prekey_ids: Iterable[int] = (),
) -> DeviceKeys:
    """Draws identity seed, signed prekey, one-time prekeys, then (a device of version 2,
    section 27.1) the last-resort KEM prekey's seed and the one-time KEM prekeys' seeds, in
    that order."""
    identity = generate_identity(rng)
    signed_prekey = generate_signed_prekey(identity, signed_prekey_id, rng)
    one_time = generate_one_time_prekeys(one_time_prekey_ids, rng)
    last_resort = None
    if last_resort_kem_prekey_id is not None:
        last_resort = generate_kem_prekey(
            identity, last_resort_kem_prekey_id, rng, last_resort=True
        )
    return DeviceKeys(
        identity=identity,
        signed_prekey=signed_prekey,
        one_time_prekeys=one_time,
        kem_prekeys=generate_kem_prekeys(identity, kem_prekey_ids, rng),
        last_resort_kem_prekey=last_resort,
    )


@dataclass(frozen=True)
class PrekeyBundle:
    """What the key directory serves for one device (section 3.2)."""

    device_id: str
    identity_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signed_prekey_signature: bytes
    one_time_prekey_id: int | None = None
    one_time_prekey: bytes | None = None
    kem_prekey: PublicKemPrekey | None = None  # version 2 (section 27.1)

    def to_dict(self) -> dict[str, Any]:
        otp = None
        if self.one_time_prekey is not None:
            otp = {"id": self.one_time_prekey_id, "public_key": b64u_encode(self.one_time_prekey)}
        return {
            "device_id": self.device_id,
            "identity_key": b64u_encode(self.identity_key),
            "signed_prekey": {
                "id": self.signed_prekey_id,
                "public_key": b64u_encode(self.signed_prekey),
                "signature": b64u_encode(self.signed_prekey_signature),
            },
            "one_time_prekey": otp,
            "kem_prekey": None if self.kem_prekey is None else self.kem_prekey.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> PrekeyBundle:
        """A bundle without `kem_prekey` (from an older server) reads as one with null."""
        try:
            spk = data["signed_prekey"]
            otp = data["one_time_prekey"]
            if not isinstance(data["device_id"], str):
                raise MalformedMessage("prekey bundle: expected a string device_id")
            return cls(
                device_id=data["device_id"],
                identity_key=b64u_decode(data["identity_key"], length=32, what="identity_key"),
                signed_prekey_id=_u32_field(spk["id"], "signed_prekey.id"),
                signed_prekey=b64u_decode(spk["public_key"], length=32, what="signed prekey"),
                signed_prekey_signature=b64u_decode(
                    spk["signature"], length=64, what="signed prekey signature"
                ),
                one_time_prekey_id=None
                if otp is None
                else _u32_field(otp["id"], "one_time_prekey.id"),
                one_time_prekey=None
                if otp is None
                else b64u_decode(otp["public_key"], length=32, what="one-time prekey"),
                kem_prekey=None
                if data.get("kem_prekey") is None
                else PublicKemPrekey.from_dict(data["kem_prekey"]),
            )
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"prekey bundle: missing or mistyped field {exc}") from exc


def _u32_field(value: Any, what: str) -> int:
    if not is_uint(value, 0xFFFFFFFF):
        raise MalformedMessage(f"{what}: expected an integer in 0..2^32-1, got {value!r}")
    return value


def make_prekey_bundle(
    device_id: str,
    keys: DeviceKeys,
    one_time_prekey: OneTimePrekey | None = None,
    kem_prekey: KemPrekey | None = None,
) -> PrekeyBundle:
    return PrekeyBundle(
        device_id=device_id,
        identity_key=keys.identity.public,
        signed_prekey_id=keys.signed_prekey.id,
        signed_prekey=keys.signed_prekey.key.public,
        signed_prekey_signature=keys.signed_prekey.signature,
        one_time_prekey_id=None if one_time_prekey is None else one_time_prekey.id,
        one_time_prekey=None if one_time_prekey is None else one_time_prekey.key.public,
        kem_prekey=None if kem_prekey is None else kem_prekey.to_public(),
    )


def verify_prekey_bundle(bundle: PrekeyBundle, *, listed_identity_key: bytes) -> None:
    """Check a bundle against the identity key from the verified device list, not the server's."""
    if bundle.identity_key != listed_identity_key:
        raise UntrustedIdentity(
            f"prekey bundle for device {bundle.device_id!r}: identity key differs from the signed device list"
        )
    primitives.ed25519_verify(
        listed_identity_key,
        signed_prekey_bytes(bundle.signed_prekey_id, bundle.signed_prekey),
        bundle.signed_prekey_signature,
        what=f"signed prekey {bundle.signed_prekey_id} of device {bundle.device_id!r}",
    )
    kem = bundle.kem_prekey
    if kem is not None:
        primitives.ed25519_verify(
            listed_identity_key,
            kem_prekey_bytes(kem.id, kem.last_resort, kem.public_key),
            kem.signature,
            what=f"KEM prekey {kem.id} of device {bundle.device_id!r}",
        )


KEM_PREKEYS_PER_UPLOAD = 25  # the server's PARLEY_KEM_PREKEYS_PER_UPLOAD (section 27.6)


@dataclass(frozen=True)
class KemRefill:
    """A device's next KEM prekeys: `keys` holds their private halves (store it first), then
    `uploads` go to POST /api/prekeys in order; ids from `next_id` on were used."""

    keys: DeviceKeys
    uploads: tuple[dict[str, Any], ...]
    next_id: int


def plan_kem_refill(
    keys: DeviceKeys,
    *,
    stored: int,
    last_resort_stored: int | None,
    next_id: int,
    target: int,
    rng: Rng,
) -> KemRefill | None:
    """What a device uploads after reading its counts from GET /api/prekeys (section 27.1):
    `stored` one-time KEM prekeys and the id of its last-resort one there (None: none).

    A device with no last-resort key makes one; one the server lacks is uploaded again. The
    one-time pool is topped back up to `target` once fewer than half of it is left, in
    requests of at most KEM_PREKEYS_PER_UPLOAD. Draws rng(64) per new key, the last-resort
    one first. None when nothing is to be done."""
    last_resort = keys.last_resort_kem_prekey
    fresh_last_resort = last_resort is None
    if last_resort is None:
        last_resort = generate_kem_prekey(keys.identity, next_id, rng, last_resort=True)
        next_id += 1
    upload_last_resort = fresh_last_resort or last_resort_stored != last_resort.id
    count = target - stored if stored * 2 < target else 0
    if not upload_last_resort and count == 0:
        return None
    fresh = generate_kem_prekeys(keys.identity, range(next_id, next_id + count), rng)
    uploads: list[dict[str, Any]] = []
    for start in range(0, max(count, 1), KEM_PREKEYS_PER_UPLOAD):
        body: dict[str, Any] = {
            "kem_prekeys": [
                kem_prekey_json(k) for k in fresh[start : start + KEM_PREKEYS_PER_UPLOAD]
            ]
        }
        if upload_last_resort and start == 0:
            body["last_resort_kem_prekey"] = kem_prekey_json(last_resort)
        uploads.append(body)
    return KemRefill(
        keys=replace(
            keys, kem_prekeys=keys.kem_prekeys + fresh, last_resort_kem_prekey=last_resort
        ),
        uploads=tuple(uploads),
        next_id=next_id + count,
    )


def kem_prekey_json(key: KemPrekey) -> dict[str, Any]:
    """A KEM prekey as POST /api/prekeys, sign-up and linking take it (section 27.6)."""
    return {
        "id": key.id,
        "public_key": b64u_encode(key.public),
        "signature": b64u_encode(key.signature),
    }
