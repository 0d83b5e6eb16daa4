"""Single-use, short-lived challenges and the passkey assertion check that consumes them."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from accounts import passkeys
from accounts.models import Challenge, Passkey, User
from web.errors import AppError


def now_or_default(now: datetime | None) -> datetime:
    return now or timezone.now()


class ChallengeRefused(AppError):
    code = "challenge_refused"
    status = 400


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def challenge_issue(
    *,
    purpose: str,
    challenge: bytes | None = None,
    user: User | None = None,
    data: dict | None = None,
    now: datetime | None = None,
) -> Challenge:
    moment = now_or_default(now)
    return Challenge.objects.create(
        token=secrets.token_urlsafe(32),
        purpose=purpose,
        challenge=challenge if challenge is not None else secrets.token_bytes(32),
        user=user,
        data=data or {},
        created_at=moment,
        expires_at=moment + timedelta(seconds=settings.PARLEY_CHALLENGE_TTL_SECONDS),
    )


def challenge_consume(*, token: str, purpose: str, now: datetime | None = None) -> Challenge:
    """Use a challenge once: a second use, a wrong purpose or an expired one is refused."""
    moment = now_or_default(now)
    claimed = Challenge.objects.filter(
        token=token, purpose=purpose, used_at__isnull=True, expires_at__gt=moment
    ).update(used_at=moment)
    if not claimed:
        known = Challenge.objects.filter(token=token, purpose=purpose).first()
        if known is None:
            raise ChallengeRefused("Unknown challenge; start again.", code="challenge_unknown")
        if known.used_at is not None:
            raise ChallengeRefused(
                "This challenge was already used; start again.", code="challenge_used"
            )
        raise ChallengeRefused("This challenge expired; start again.", code="challenge_expired")
    return Challenge.objects.get(token=token)


def passkey_not_accepted() -> passkeys.PasskeyRefused:
    """The one answer to an anonymous ceremony whose passkey is unknown or did not verify, so
    that nobody learns which credential ids or accounts exist."""
    return passkeys.PasskeyRefused(
        "This passkey was not accepted: it belongs to no Parley account here, or its answer "
        "did not check out. Try again, or use another passkey.",
        code="passkey_refused",
    )


def passkey_assert(
    *, user: User | None, challenge: Challenge, credential: dict, now: datetime | None = None
) -> Passkey:
    """Verify a passkey assertion (user verification required) against a consumed challenge.

    `user`: the account that must own the passkey, or None when the passkey names the account
    (a discoverable credential answering empty `allowCredentials`): then it is looked up by its
    credential id, and an unknown or forged one gets `passkey_not_accepted()`."""
    credential_id = passkeys.credential_id_of(credential)
    passkey = Passkey.objects.filter(credential_id=credential_id).select_related("user").first()
    if user is None and (passkey is None or not passkey.user.is_active):
        raise passkey_not_accepted()
    if passkey is None or (user is not None and passkey.user_id != user.pk):
        raise passkeys.PasskeyRefused(
            "This passkey does not belong to this account.", code="unknown_passkey"
        )
    try:
        sign_count = passkeys.verify_authentication(
            credential=credential,
            challenge=bytes(challenge.challenge),
            public_key=bytes(passkey.public_key),
            sign_count=passkey.sign_count,
        )
    except passkeys.PasskeyRefused as refused:
        if user is None and refused.code == passkeys.PasskeyRefused.code:
            raise passkey_not_accepted() from None
        raise
    Passkey.objects.filter(pk=passkey.pk).update(
        sign_count=sign_count, last_used_at=now_or_default(now)
    )
    return passkey


def challenges_expire(*, now: datetime | None = None) -> int:
    """The expiry job: challenges past their expiry, used or not, are deleted."""
    deleted, _ = Challenge.objects.filter(expires_at__lte=now_or_default(now)).delete()
    return deleted
