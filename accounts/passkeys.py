"""WebAuthn ceremonies (py_webauthn) with Parley's policy: platform authenticator, resident
key, user verification required, relying party from PARLEY_ORIGIN."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from web.errors import AppError


class PasskeyRefused(AppError):
    code = "passkey_refused"
    status = 400


@dataclass(frozen=True)
class RegisteredPasskey:
    credential_id: bytes
    public_key: bytes
    sign_count: int


def registration_options(
    *, challenge: bytes, user_handle: bytes, username: str, display_name: str
) -> dict[str, Any]:
    options = generate_registration_options(
        rp_id=settings.PARLEY_RP_ID,
        rp_name=settings.PARLEY_RP_NAME,
        user_id=user_handle,
        user_name=username,
        user_display_name=display_name,
        challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM,
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )
    return json.loads(options_to_json(options))


def authentication_options(
    *, challenge: bytes, credential_ids: list[bytes] | None = None
) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=settings.PARLEY_RP_ID,
        challenge=challenge,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in credential_ids or []],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return json.loads(options_to_json(options))


def _refused(error: Exception) -> PasskeyRefused:
    text = str(error)
    if "verification" in text.lower():
        return PasskeyRefused(
            "Your fingerprint or face was not verified. Try again with user verification.",
            code="user_verification_failed",
        )
    return PasskeyRefused(f"The passkey response was refused: {text}")


def verify_registration(*, credential: Any, challenge: bytes) -> RegisteredPasskey:
    try:
        verified = verify_registration_response(
            credential=parse_registration_credential_json(json.dumps(credential)),
            expected_challenge=challenge,
            expected_rp_id=settings.PARLEY_RP_ID,
            expected_origin=settings.PARLEY_ORIGIN,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise _refused(error) from None
    return RegisteredPasskey(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
    )


def credential_id_of(credential: Any) -> bytes:
    try:
        return base64url_to_bytes(credential["rawId"])
    except (KeyError, TypeError, ValueError):
        raise PasskeyRefused("The passkey response has no valid 'rawId'.") from None


def verify_authentication(
    *, credential: Any, challenge: bytes, public_key: bytes, sign_count: int
) -> int:
    """Check an assertion (user verification required); return the new signature counter."""
    try:
        verified = verify_authentication_response(
            credential=parse_authentication_credential_json(json.dumps(credential)),
            expected_challenge=challenge,
            expected_rp_id=settings.PARLEY_RP_ID,
            expected_origin=settings.PARLEY_ORIGIN,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise _refused(error) from None
    return verified.new_sign_count
