"""Who is asking, and how we know: verification matched to the risk of the request.

- HIPAA: the practice verified the person when it gave them a portal account (patients) or
  recorded and verified the relationship (representatives); the request is made signed in.
- CCPA: a signed-in account holder is verified by the sign-in (a second factor for sensitive
  data); anyone else matches data points we hold: two for a reasonable degree of certainty,
  three plus a signed declaration for sensitive data (Cal. Code Regs. tit. 11, 7062). An
  authorized agent also needs the consumer's signed permission (7063). Someone with no account
  (a marketing contact, a site visitor) proves they read the address they give, with the
  token an email check sent there (addresses.py); that is all we could match, so it does not
  reach sensitive data.
Data points are compared as keyed hashes or sealed values; none is stored or logged.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select

from carevault.crypto.vault import Vault
from carevault.errors import Forbidden, Invalid, Unauthorized
from carevault.identity.account_base import ACCOUNTS_KEY, load_factors
from carevault.identity.account_models import account_factors
from carevault.identity.models import Actor, tenants, users
from carevault.identity.permissions import Role
from carevault.privacy.access_models import representations
from carevault.rights import addresses
from carevault.rights.models import RequesterKind, Verification

DATA_POINTS = ("email", "phone", "account_created_on", "last_sign_in_on")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_POINT = 200


@dataclass(frozen=True)
class Verified:
    kind: RequesterKind
    how: Verification
    user_id: str | None  # the requester's account, when signed in
    patient_id: str | None = None  # HIPAA: whose record
    subject_tenant_id: str | None = None  # CCPA: whose account data
    subject_user_id: str | None = None
    address: addresses.Confirmed | None = None  # no account: the address they proved is theirs


def hipaa_requester(conn: Connection, actor: Actor | None, patient: object, now: str) -> Verified:
    """A signed-in patient (their own record) or a verified, live representative."""
    if actor is None:
        raise Unauthorized(
            "sign in to the patient portal: a request about health information is made by the "
            "patient or a representative the practice has verified"
        )
    how = _signed_in(conn, actor)
    if actor.role is Role.PATIENT:
        row = conn.execute(
            select(users.c.patient_id).where(
                users.c.tenant_id == actor.tenant_id, users.c.user_id == actor.user_id
            )
        ).first()
        own = row.patient_id if row is not None else None
        if own is None or (patient is not None and patient != own):
            raise Forbidden("a patient may make requests about their own record only")
        return Verified(RequesterKind.PATIENT, how, actor.user_id, patient_id=own)
    if actor.role is Role.REPRESENTATIVE:
        if not isinstance(patient, str):
            raise Invalid("patient: name the Patient id of the person you represent")
        r = representations
        live = conn.execute(
            select(r.c.representation_id).where(
                r.c.tenant_id == actor.tenant_id,
                r.c.representative_id == actor.user_id,
                r.c.patient_id == patient,
                r.c.verified_at.is_not(None),
                r.c.revoked_at.is_(None),
                or_(r.c.expires_at.is_(None), r.c.expires_at > now),
                or_(r.c.reach_ends_at.is_(None), r.c.reach_ends_at > now),
            )
        ).first()
        if live is None:
            raise Forbidden("you have no verified, live representation of this patient")
        return Verified(
            RequesterKind.REPRESENTATIVE,
            Verification.REPRESENTATION,
            actor.user_id,
            patient_id=patient,
        )
    raise Forbidden("requests about a patient's record are made by the patient or a representative")


def ccpa_requester(
    conn: Connection,
    vault: Vault,
    actor: Actor | None,
    body: dict[str, Any],
    sensitive: bool,
    now: str = "",
) -> Verified:
    """The account holder signed in, a person (or their agent) matching data points, or a
    person with no account who proved the address they gave is theirs."""
    agent = body.get("requester") == RequesterKind.AUTHORIZED_AGENT.value
    if agent:
        _agent_permission(body.get("agent_permission"))
    if actor is None and "email_check" in body:
        if sensitive:
            raise Forbidden(
                "requests about sensitive personal information need three details we hold "
                "and a signed declaration; an address alone is not enough"
            )
        found = addresses.confirmed(conn, vault, body.get("email_check"), now)
        kind = RequesterKind.AUTHORIZED_AGENT if agent else RequesterKind.PERSON
        return Verified(kind, Verification.EMAIL_CONFIRMED, None, address=found)
    if actor is not None and not agent:
        how = _signed_in(conn, actor)
        if sensitive and how is not Verification.SIGNED_IN_MFA:
            raise Forbidden(
                "requests about sensitive personal information need a second factor: enrol "
                "one in your account settings, then ask again"
            )
        return Verified(
            RequesterKind.ACCOUNT_HOLDER,
            how,
            actor.user_id,
            subject_tenant_id=actor.tenant_id,
            subject_user_id=actor.user_id,
        )
    tenant_id, user_id, matched = _match(conn, vault, body)
    needed = 3 if sensitive else 2
    if matched < needed:
        raise Forbidden(
            f"we could not verify who you are: {needed} of the details we hold about the "
            f"account must match ({', '.join(DATA_POINTS)}); nothing was disclosed"
        )
    if sensitive and not _declared(body.get("declaration")):
        raise Forbidden(
            "requests about sensitive personal information need a declaration signed under "
            "penalty of perjury that you are the consumer (or their authorized agent)"
        )
    how = Verification.DATA_POINTS_3_DECLARATION if sensitive else Verification.DATA_POINTS_2
    kind = RequesterKind.AUTHORIZED_AGENT if agent else RequesterKind.PERSON
    return Verified(
        kind,
        how,
        actor.user_id if actor else None,
        subject_tenant_id=tenant_id,
        subject_user_id=user_id,
    )


def account_address(
    conn: Connection, vault: Vault, tenant_id: str | None, user_id: str
) -> str | None:
    """The account's address (opened from its sealed column), or None if it was erased."""
    row = conn.execute(
        select(users.c.email_sealed).where(
            users.c.tenant_id == tenant_id, users.c.user_id == user_id
        )
    ).first()
    if row is None or not row.email_sealed or tenant_id is None:
        return None
    return vault.open_for(tenant_id, ACCOUNTS_KEY, row.email_sealed, user_id.encode()).decode()


def _signed_in(conn: Connection, actor: Actor) -> Verification:
    if actor.role is None:
        raise Forbidden("a system actor makes no requests of its own")
    factors = load_factors(conn, actor.tenant_id, actor.user_id)
    return Verification.SIGNED_IN_MFA if factors.any else Verification.SIGNED_IN


def _agent_permission(value: object) -> None:
    """Signed permission from the consumer: who signed, a digest of the document, the date."""
    ok = (
        isinstance(value, dict)
        and value.get("signed_by_consumer") is True
        and isinstance(value.get("document_sha256"), str)
        and bool(_SHA256.match(value["document_sha256"]))
        and isinstance(value.get("signed_on"), str)
        and bool(_DAY.match(value["signed_on"]))
    )
    if not ok:
        raise Forbidden(
            "an authorized agent needs the consumer's signed permission: agent_permission "
            "with signed_by_consumer true, document_sha256 (hex) and signed_on (YYYY-MM-DD)"
        )


def _declared(value: object) -> bool:
    return (
        isinstance(value, dict)
        and value.get("under_penalty_of_perjury") is True
        and isinstance(value.get("signature"), str)
        and 2 <= len(value["signature"].strip()) <= MAX_POINT
    )


def _match(conn: Connection, vault: Vault, body: dict[str, Any]) -> tuple[str, str, int]:
    """(tenant, user, how many data points match); a mismatching point counts against all."""
    points = body.get("data_points")
    slug = body.get("tenant")
    if not isinstance(points, dict) or not isinstance(slug, str):
        raise Forbidden(
            "we could not verify who you are: give the service (tenant) your account is with "
            f"and data_points ({', '.join(DATA_POINTS)})"
        )
    if any(
        k not in DATA_POINTS or not isinstance(v, str) or len(v) > MAX_POINT
        for k, v in points.items()
    ):
        raise Invalid(f"data_points may hold only text values of: {', '.join(DATA_POINTS)}")
    tenant = conn.execute(select(tenants.c.tenant_id).where(tenants.c.slug == slug)).first()
    email = points.get("email")
    if tenant is None or not isinstance(email, str):
        return "", "", 0
    digest = vault.hasher(tenant.tenant_id).digest("account.email", email.strip().casefold())
    row = conn.execute(
        select(users.c.user_id, users.c.created_at, users.c.active).where(
            users.c.tenant_id == tenant.tenant_id, users.c.email_hash == digest
        )
    ).first()
    if row is None:
        return "", "", 0
    held = _held(conn, vault, tenant.tenant_id, row.user_id, row.created_at)
    matched = 1
    for name, given in points.items():
        if name == "email":
            continue
        value = held.get(name)
        if value is None or not hmac.compare_digest(value.encode(), _norm(name, given).encode()):
            return "", "", 0  # a wrong detail: not verified (and we do not say which)
        matched += 1
    return tenant.tenant_id, row.user_id, matched


def _held(
    conn: Connection, vault: Vault, tenant_id: str, user_id: str, created_at: str
) -> dict[str, str | None]:
    f = conn.execute(
        select(account_factors.c.phone_sealed, account_factors.c.last_sign_in_at).where(
            account_factors.c.tenant_id == tenant_id, account_factors.c.user_id == user_id
        )
    ).first()
    phone = None
    if f is not None and f.phone_sealed is not None:
        plain = vault.open_for(tenant_id, ACCOUNTS_KEY, f.phone_sealed, f"phone:{user_id}".encode())
        phone = _norm("phone", plain.decode())
    last = f.last_sign_in_at[:10] if f is not None and f.last_sign_in_at else None
    return {"phone": phone, "account_created_on": created_at[:10], "last_sign_in_on": last}


def _norm(name: str, value: str) -> str:
    if name == "phone":  # digits only, without a country code: "+1 555..." matches "(555) ..."
        return re.sub(r"\D", "", value)[-10:]
    return value.strip()
