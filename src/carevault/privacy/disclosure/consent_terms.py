"""A HIPAA authorization as a FHIR Consent: its terms, the 164.508(c) elements, coverage.

Pure functions of the Consent's JSON. The recipient's existence and verified address need
the directory and are checked by the caller (authorizations.py when signing, service.py
when disclosing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from carevault.clock import isoformat
from carevault.privacy.disclosure.facts import Item, codes, codings, in_range, reference

EXPIRY_EVENT = "https://carevault.dev/fhir/StructureDefinition/authorization-expiry-event"
REVOKED_AT = "https://carevault.dev/fhir/StructureDefinition/authorization-revoked-at"
EVENT_OCCURRED_AT = (
    "https://carevault.dev/fhir/StructureDefinition/authorization-expiry-event-occurred-at"
)
ENDINGS = frozenset({REVOKED_AT, EVENT_OCCURRED_AT})
"""Extensions that record how a signed authorization ended: not part of the signed terms."""
RECIPIENT_ROLE = "IRCP"  # v3-ParticipationType: information recipient
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
SIGNABLE = frozenset({"proposed", "draft"})

# 164.508(c)(1)(v)-(vi), (c)(2): the statements every authorization carries, word for word.
STATEMENTS = (
    "You may revoke this authorization at any time by telling us in writing or through your "
    "patient account, except to the extent that we have already acted on it.",
    "Your treatment, payment, enrollment or eligibility for benefits will not be conditioned "
    "on whether you sign this authorization.",
    "Information disclosed under this authorization may be redisclosed by the recipient and "
    "may then no longer be protected by federal privacy rules.",
)


@dataclass(frozen=True)
class Terms:
    consent_id: str
    status: str
    patient_ref: str | None
    discloser_refs: tuple[str, ...]
    recipient_refs: tuple[str, ...]
    purposes: frozenset[str]  # codes and displays, folded
    data_refs: frozenset[str]
    classes: frozenset[str]  # resource types
    data_start: str | None
    data_end: str | None
    period_start: str | None
    period_end: str | None
    expiry_event: str | None
    event_occurred_at: str | None  # when someone recorded that the expiry event happened
    deny_refs: frozenset[str]
    deny_types: frozenset[str]
    deny_labels: frozenset[str]
    labels: frozenset[str]  # sensitivity labels the patient expressly authorizes

    def description(self) -> str:
        """What the authorization releases, in words (no PHI: types, ids and dates)."""
        if self.data_refs:
            what = "these records: " + ", ".join(sorted(self.data_refs))
        else:
            what = "records of these kinds: " + ", ".join(sorted(self.classes))
            if self.data_start or self.data_end:
                what += f", dated {self.data_start or 'any'} to {self.data_end or 'any'}"
        excluded = sorted(self.deny_types | self.deny_labels | self.deny_refs)
        return what + (f"; except {', '.join(excluded)}" if excluded else "")


@dataclass(frozen=True)
class SignedAuthorization:
    """An authorization on file as the disclosure path sees it: its terms and signature."""

    terms: Terms
    signed_at: str | None
    revoked_at: str | None
    terms_intact: bool  # the terms are those that were signed
    authority: str | None = None  # "self", or the signing representative's kind


def parse(body: dict[str, Any]) -> Terms:
    raw = body.get("provision")
    provision: dict[str, Any] = raw if isinstance(raw, dict) else {}
    period = _dict(provision.get("period"))
    data_period = _dict(provision.get("dataPeriod"))
    denies = [p for p in provision.get("provision", []) if isinstance(p, dict)
              and p.get("type") == "deny"]  # fmt: skip
    event = _extension(body, EXPIRY_EVENT, "valueString")
    occurred = _extension(body, EVENT_OCCURRED_AT, "valueDateTime")
    return Terms(
        consent_id=str(body.get("id", "")),
        status=str(body.get("status", "")),
        patient_ref=reference(body.get("patient")),
        discloser_refs=tuple(r for o in body.get("organization", []) if (r := reference(o))),
        recipient_refs=tuple(
            r
            for a in provision.get("actor", [])
            if isinstance(a, dict)
            and RECIPIENT_ROLE in codes(a.get("role"))
            and (r := reference(a.get("reference")))
        ),
        purposes=frozenset(
            fold(v) for _s, c, d in codings(provision.get("purpose", [])) for v in (c, d) if v
        ),
        data_refs=frozenset(
            r
            for d in provision.get("data", [])
            if isinstance(d, dict) and (r := reference(d.get("reference")))
        ),
        classes=_types(provision.get("class", [])),
        data_start=_day(data_period.get("start")),
        data_end=_day(data_period.get("end")),
        period_start=_str(period.get("start")),
        period_end=_str(period.get("end")),
        expiry_event=event if isinstance(event, str) and event.strip() else None,
        event_occurred_at=occurred if isinstance(occurred, str) else None,
        deny_refs=frozenset(
            r
            for p in denies
            for d in p.get("data", [])
            if isinstance(d, dict) and (r := reference(d.get("reference")))
        ),
        deny_types=frozenset(t for p in denies for t in _types(p.get("class", []))),
        deny_labels=frozenset(c for p in denies for c in codes(p.get("securityLabel", []))),
        labels=codes(provision.get("securityLabel", [])),
    )


def missing(terms: Terms) -> list[tuple[str, str]]:
    """Each 164.508(c) element the Consent lacks, as (element, what to do)."""
    found: list[tuple[str, str]] = []
    if terms.patient_ref is None or not terms.patient_ref.startswith("Patient/"):
        found.append(("Consent.patient", "name the patient whose information is released"))
    if not terms.data_refs and not terms.classes:
        found.append(("Consent.provision.data", "describe the information: name the records "
                      "(provision.data) or their kinds (provision.class)"))  # fmt: skip
    if not any(r.startswith("Organization/") for r in terms.discloser_refs):
        found.append(("Consent.organization", "name the organization that discloses"))
    if len(terms.recipient_refs) != 1:
        found.append(
            (
                "Consent.provision.actor",
                "name exactly one recipient (role IRCP): an "
                "Organization, Practitioner or RelatedPerson from the directory",
            )
        )
    elif terms.recipient_refs[0].split("/", 1)[0] not in (
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "RelatedPerson",
    ):
        found.append(("Consent.provision.actor", "the recipient must be an Organization, "
                      "Practitioner or RelatedPerson, never free text"))  # fmt: skip
    if not terms.purposes:
        found.append(("Consent.provision.purpose", "state the purpose of the disclosure"))
    if terms.period_end is None and terms.expiry_event is None:
        found.append(("Consent.provision.period.end", "give an expiry date or an expiry event"))
    return found


def terms_digest(body: dict[str, Any]) -> str:
    """SHA-256 of what the signature covers: a later edit of the terms voids it."""
    kept: dict[str, Any] = {k: body.get(k) for k in ("patient", "organization", "provision")}
    # How it ended is not a change of its terms (and an absent list stays absent).
    extensions = body.get("extension") or []
    kept["extension"] = [
        e for e in extensions if not (isinstance(e, dict) and e.get("url") in ENDINGS)
    ] or None
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()


def render(terms: Terms, signer: str, authority: str, signed_at: str) -> str:
    """The signed document: the terms in words and the fixed statements."""
    lines = [
        "AUTHORIZATION TO DISCLOSE HEALTH INFORMATION (45 CFR 164.508)",
        f"Authorization: Consent/{terms.consent_id}",
        f"Patient: {terms.patient_ref}",
        f"Information: {terms.description()}",
        f"Disclosed by: {', '.join(terms.discloser_refs)}",
        f"Recipient: {', '.join(terms.recipient_refs)}",
        f"Purpose: {', '.join(sorted(terms.purposes))}",
        f"Expires: {terms.period_end or terms.expiry_event}",
        *STATEMENTS,
        f"Signed by user {signer} ({authority}) on {signed_at}, re-authenticated with a "
        "second factor.",
    ]
    return "\n".join(lines) + "\n"


def not_live(terms: Terms, now: str) -> str | None:
    """Why a signed authorization does not stand today, or None."""
    if terms.event_occurred_at is not None:
        return (f"the authorization ended when its expiry event occurred "
                f"(recorded {terms.event_occurred_at[:10]})")  # fmt: skip
    if terms.status != "active":
        return f"the authorization is {terms.status or 'not active'}"
    if terms.period_start is not None and now < instant(terms.period_start):
        return "the authorization is not yet in effect"
    if terms.period_end is not None and instant(terms.period_end, end=True) <= now:
        return "the authorization has expired"
    return None


def excluded(terms: Terms, item: Item) -> str | None:
    """Why a nested deny provision ("except psychotherapy notes") leaves this out, or None."""
    if item.ref in terms.deny_refs or item.rtype in terms.deny_types:
        return f"{item.ref} is excluded by the authorization"
    if terms.deny_labels & item.labels:
        return f"{item.ref} carries a label the authorization excludes"
    return None


def not_covered(terms: Terms, item: Item) -> str | None:
    """Why this resource is outside what the authorization describes, or None."""
    why = excluded(terms, item)
    if why is not None:
        return why
    if terms.data_refs:
        return None if item.ref in terms.data_refs else f"{item.ref} is not named by the " \
            "authorization"  # fmt: skip
    if item.rtype not in terms.classes:
        return f"{item.rtype} is not among the kinds of records the authorization names"
    if not in_range(item.date, terms.data_start, terms.data_end):
        return f"{item.ref} is outside the dates the authorization names"
    return None


def fold(value: str) -> str:
    return " ".join(value.lower().split())


def _types(values: Any) -> frozenset[str]:
    items = values if isinstance(values, list) else []
    return frozenset(c["code"] for c in items if isinstance(c, dict)
                     and isinstance(c.get("code"), str)
                     and c.get("system", RESOURCE_TYPES) == RESOURCE_TYPES)  # fmt: skip


def _extension(body: dict[str, Any], url: str, value: str) -> Any:
    return next((e.get(value) for e in body.get("extension", [])
                 if isinstance(e, dict) and e.get("url") == url), None)  # fmt: skip


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _day(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) and value else None


def instant(value: str, *, end: bool = False) -> str:
    """A FHIR date or dateTime as the clock's sortable UTC form; a date-only end lasts
    through that day. Unreadable values sort first (an end then lies in the past)."""
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return isoformat(day + timedelta(days=1, microseconds=-1) if end else day)
        when = datetime.fromisoformat(value)
        return isoformat(when if when.tzinfo else when.replace(tzinfo=UTC))
    except ValueError:
        return ""
