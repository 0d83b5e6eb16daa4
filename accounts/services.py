"""Account state changes that need no device: the first step of sign-up and of sign-in.

Sign-up itself and re-registration create devices too: `flows.registration`. A device's
sign-in (passkey plus device key, or device key alone): `devices.services`.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from accounts import passkeys
from accounts.challenges import challenge_issue
from accounts.models import Challenge
from accounts.selectors import username_taken
from web.errors import Conflict


def account_register_begin(
    *, username: str, display_name: str, now: datetime | None = None
) -> tuple[Challenge, dict]:
    if username_taken(username=username):
        raise Conflict(
            f"The username {username!r} is taken; choose another.", code="username_taken"
        )
    user_handle = secrets.token_bytes(32)
    challenge = challenge_issue(
        purpose=Challenge.Purpose.REGISTER,
        data={"username": username, "display_name": display_name, "user_handle": user_handle.hex()},
        now=now,
    )
    options = passkeys.registration_options(
        challenge=bytes(challenge.challenge),
        user_handle=user_handle,
        username=username,
        display_name=display_name,
    )
    return challenge, options


def primary_sign_in_begin(*, now: datetime | None = None) -> tuple[Challenge, dict]:
    """An anonymous passkey challenge with empty `allowCredentials` (sign-in on the primary and
    re-registration): the same answer for everyone, so it tells nothing about any account."""
    challenge = challenge_issue(purpose=Challenge.Purpose.SIGN_IN, now=now)
    return challenge, passkeys.authentication_options(challenge=bytes(challenge.challenge))
