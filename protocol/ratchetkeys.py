"""The keys of a Double Ratchet session: the root and chain KDFs (docs/protocol.md section
6.1) and the bounded store of skipped message keys (section 6.4), in its section 8 form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol import primitives
from protocol.encoding import MAX_SAFE_INTEGER, b64u_decode, b64u_encode, is_uint
from protocol.exceptions import MalformedMessage

MAX_SKIP = 1000
MAX_SKIPPED_TOTAL = 2000


def kdf_rk(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    """(new root key, chain key) = split(KDF(rk, "Parley v1 root", dh_out, 64))."""
    out = primitives.kdf(root_key, "Parley v1 root", dh_out, 64)
    return out[:32], out[32:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """(message key, next chain key) from a chain key."""
    return (
        primitives.kdf(chain_key, "Parley v1 chain", b"\x01", 32),
        primitives.kdf(chain_key, "Parley v1 chain", b"\x02", 32),
    )


@dataclass
class SkippedKeys:
    """Message keys of skipped messages by (remote ratchet key, n), oldest first."""

    keys: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    def pop(self, dh: bytes, n: int) -> bytes | None:
        """The key of message `n` of chain `dh`, deleted as it is handed out (used once)."""
        return self.keys.pop((dh, n), None)

    def add(self, dh: bytes, n: int, key: bytes) -> None:
        self.keys[(dh, n)] = key

    def drop_oldest(self) -> None:
        """Keep at most MAX_SKIPPED_TOTAL keys; those messages become undecryptable."""
        while len(self.keys) > MAX_SKIPPED_TOTAL:
            del self.keys[next(iter(self.keys))]

    def copy(self) -> SkippedKeys:
        return SkippedKeys(dict(self.keys))

    def to_list(self) -> list[dict[str, Any]]:
        """The `skipped` array of a serialized session (section 8)."""
        return [
            {"dh": b64u_encode(dh), "n": n, "key": b64u_encode(key)}
            for (dh, n), key in self.keys.items()
        ]

    @classmethod
    def from_list(cls, items: list[Any]) -> SkippedKeys:
        """Parse the `skipped` array: a bad key or n is MalformedMessage; a missing or
        mistyped field raises KeyError or TypeError, which Session.from_dict reports."""
        return cls(
            {
                (
                    b64u_decode(s["dh"], length=32, what="skipped dh"),
                    _index(s["n"]),
                ): b64u_decode(s["key"], length=32, what="skipped key")
                for s in items
            }
        )


def _index(value: Any) -> int:
    if not is_uint(value):
        raise MalformedMessage(
            f"session skipped n: expected an integer in 0..{MAX_SAFE_INTEGER}, got {value!r}"
        )
    return value
