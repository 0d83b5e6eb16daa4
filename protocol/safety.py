"""Safety numbers for a pair of accounts (docs/protocol.md section 11)."""

from __future__ import annotations

from protocol.encoding import enc_str
from protocol.primitives import hash32

QR_PREFIX = "PARLEY-SN1:"


def fingerprint(account_id: str, account_key: bytes) -> str:
    """30 digits for one account."""
    digest = hash32("Parley v1 safety number", enc_str(account_id) + account_key)
    return "".join(
        f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
    )


def safety_number(
    account_id_a: str, account_key_a: bytes, account_id_b: str, account_key_b: bytes
) -> str:
    """60 digits, identical for both parties: the two fingerprints in string order."""
    a = fingerprint(account_id_a, account_key_a)
    b = fingerprint(account_id_b, account_key_b)
    return min(a, b) + max(a, b)


def format_safety_number(number: str) -> str:
    return " ".join(number[i : i + 5] for i in range(0, len(number), 5))


def safety_qr_payload(number: str) -> str:
    return QR_PREFIX + number
