"""WebAuthn passkeys as a second factor: the two ceremonies, around py_webauthn.

The relying party is the deployment's public origin (settings.public_origin); its host is
the RP id. Challenges are made here and kept server-side by the caller (on the session, or
on a password reset), so a response is accepted once, for the ceremony that asked for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

RP_NAME = "CareVault"


class CeremonyFailed(ValueError):
    """The authenticator's response did not verify (a safe, generic message)."""


@dataclass(frozen=True)
class RelyingParty:
    origin: str
    rp_id: str

    @classmethod
    def from_origin(cls, origin: str) -> RelyingParty:
        host = urlsplit(origin).hostname
        if not host:
            raise ValueError("public_origin must be an absolute URL such as https://host")
        return cls(origin.rstrip("/"), host)


@dataclass(frozen=True)
class Ceremony:
    options: dict[str, Any]
    """What the browser passes to navigator.credentials (JSON, base64url fields)."""
    challenge: str
    """base64url; the caller stores it until the response comes back."""


@dataclass(frozen=True)
class NewCredential:
    credential_id: str
    public_key: bytes
    sign_count: int


def registration(rp: RelyingParty, user_id: str, label: str, existing: list[str]) -> Ceremony:
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=RP_NAME,
        user_name=label,
        user_id=user_id.encode(),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in existing
        ],
    )
    return Ceremony(json.loads(options_to_json(options)), bytes_to_base64url(options.challenge))


def verify_registration(
    rp: RelyingParty, response: dict[str, Any], challenge: str
) -> NewCredential:
    try:
        verified = verify_registration_response(
            credential=response,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
        )
    except Exception:  # any malformed or forged response is one refusal, never a 500
        raise CeremonyFailed("the passkey registration did not verify") from None
    return NewCredential(
        bytes_to_base64url(verified.credential_id),
        verified.credential_public_key,
        verified.sign_count,
    )


def authentication(rp: RelyingParty, credential_ids: list[str]) -> Ceremony:
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in credential_ids
        ],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return Ceremony(json.loads(options_to_json(options)), bytes_to_base64url(options.challenge))


def credential_id_of(response: dict[str, Any]) -> str:
    raw = response.get("id") if isinstance(response, dict) else None
    if not isinstance(raw, str) or not raw or len(raw) > 512:
        raise CeremonyFailed("the passkey response names no credential")
    return raw


def verify_authentication(
    rp: RelyingParty,
    response: dict[str, Any],
    challenge: str,
    public_key: bytes,
    sign_count: int,
) -> int:
    """The new signature counter; CeremonyFailed if the assertion does not verify."""
    try:
        verified = verify_authentication_response(
            credential=response,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
        )
    except Exception:  # any malformed, replayed or forged assertion is one refusal
        raise CeremonyFailed("the passkey did not verify") from None
    return int(verified.new_sign_count)
