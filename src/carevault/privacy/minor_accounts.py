"""A minor's patient portal account needs a parent's or guardian's permission (AM-37).

When the policy sets `children.portal_guardian_consent_below`, a patient account linked to a
Patient younger than that age is created only if the account administrator names the parent
or guardian who gave permission (`guardian_consent`: their representative user id), and that
person holds a verified, live parent or guardian representation of this patient
(relationships.py). The birth date is read through the gate as a named system actor, the age
taken on the injected clock. Errors say what to do and carry no PHI (never the birth date).

The age follows relationships.eighteenth_birthday: a partial birth date is read at its
earliest, and a 29 February birthday falls on 28 February, so the need for permission ends
on the day a parent's reach ends.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
from sqlalchemy import or_, select

from carevault.clock import isoformat
from carevault.errors import Forbidden, Invalid, Unprocessable
from carevault.identity.models import Actor, system_actor
from carevault.policy import PrivacyPolicy
from carevault.privacy.access_models import MINOR_KINDS, representations
from carevault.privacy.services import GateServices
from carevault.records.store import valid_id

_BIRTH = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def birthday(birth_date: str, years: int) -> date:
    """The day a person born on `birth_date` (a FHIR date, maybe partial) turns `years`."""
    match = _BIRTH.match(birth_date)
    if match is None:
        raise Unprocessable("the patient's birth date is not a FHIR date: correct it first")
    year, month, day = int(match[1]), int(match[2] or 1), int(match[3] or 1)
    try:
        date(year, month, day)
    except ValueError:
        raise Unprocessable("the patient's birth date is not a valid date: correct it") from None
    if (month, day) == (2, 29):
        try:
            return date(year + years, 2, 29)
        except ValueError:
            return date(year + years, 2, 28)
    return date(year + years, month, day)


class MinorAccounts:
    def __init__(
        self,
        services: GateServices,
        policy: PrivacyPolicy,
        read_patient: Callable[[Actor, str], Any],
    ) -> None:
        self._s = services
        self._below = policy.document.children.portal_guardian_consent_below
        self._read_patient = read_patient  # the gate's read

    def admit(self, tenant_id: str, patient_id: str, guardian: str | None) -> str | None:
        """May a portal account be linked to this patient? None: no permission is needed;
        else the id of the representation whose holder gave it. Raises with what to do."""
        if not valid_id(patient_id):
            raise Invalid("patient must be a Patient id")
        if guardian is not None and not valid_id(guardian):
            raise Invalid("guardian_consent must be the representative user id of the parent "
                          "or guardian who gave permission")  # fmt: skip
        # Read even with no age rule: the account must be linked to a live Patient.
        reader = system_actor(tenant_id, "portal account: age of the patient")
        body = orjson.loads(self._read_patient(reader, patient_id).body or b"{}")
        below = self._below
        if below is None:
            return None
        birth = body.get("birthDate") if isinstance(body, dict) else None
        if not isinstance(birth, str):
            raise Unprocessable(f"record the patient's birth date first: a portal account for "
                                f"someone under {below} needs a parent's or guardian's "
                                "permission")  # fmt: skip
        now = self._s.clock.now()
        if now.date() >= birthday(birth, below):
            return None
        if guardian is None:
            raise Forbidden(f"this patient is under {below}: a portal account needs the "
                            "permission of a parent or legal guardian; name them "
                            "(guardian_consent: their representative user id) once their "
                            "representation is verified")  # fmt: skip
        r = representations
        with self._s.reader.connect() as conn:
            found = conn.execute(
                select(r.c.representation_id).where(
                    r.c.tenant_id == tenant_id, r.c.patient_id == patient_id,
                    r.c.representative_id == guardian,
                    r.c.kind.in_([k.value for k in MINOR_KINDS]),
                    r.c.verified_at.is_not(None), r.c.revoked_at.is_(None),
                    or_(r.c.expires_at.is_(None), r.c.expires_at > isoformat(now)),
                    or_(r.c.reach_ends_at.is_(None), r.c.reach_ends_at > isoformat(now)),
                )
            ).first()  # fmt: skip
            conn.rollback()
        if found is None:
            raise Forbidden("guardian_consent names no verified parent or guardian of this "
                            "patient: record and verify the representation first "
                            "(/access/representations)")  # fmt: skip
        return str(found.representation_id)
