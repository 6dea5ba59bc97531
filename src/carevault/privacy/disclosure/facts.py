"""What a checker sees: frozen facts gathered once, in one reader snapshot (service.py).

Pure value types and FHIR helpers; no database, no clock of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from carevault.errors import CareVaultError, Forbidden, Unprocessable
from carevault.policy import Basis

if TYPE_CHECKING:
    from carevault.privacy.disclosure.consent_terms import SignedAuthorization

VERIFIED_ADDRESS = ("https://carevault.dev/fhir/CodeSystem/directory-verification",
                    "address-verified")  # fmt: skip
"""The meta.tag the practice puts on a directory entry once it has checked its address."""
RECIPIENT_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole", "RelatedPerson"})
_DATE_PATHS = (
    ("effectiveDateTime",), ("effectivePeriod", "start"), ("issued",), ("onsetDateTime",),
    ("performedDateTime",), ("performedPeriod", "start"), ("occurrenceDateTime",),
    ("authoredOn",), ("recordedDate",), ("period", "start"), ("started",), ("date",),
    ("created",), ("dateTime",), ("start",),
)  # fmt: skip


class Refused(Forbidden):
    """A basis's requirement is not met (403); the message says what is missing."""


class Incomplete(Unprocessable):
    """A document on which the disclosure rests lacks a required element (422)."""


@dataclass(frozen=True)
class Item:
    """One resource asked for, decrypted, with its security labels."""

    ref: str  # Type/id
    body: dict[str, Any]
    labels: frozenset[str] = frozenset()
    requirements: frozenset[str] = frozenset()

    @property
    def rtype(self) -> str:
        return self.ref.split("/", 1)[0]

    @property
    def date(self) -> str | None:
        return clinical_date(self.body)


@dataclass(frozen=True)
class Recipient:
    ref: str
    body: dict[str, Any]

    @property
    def rtype(self) -> str:
        return self.ref.split("/", 1)[0]

    @property
    def verified(self) -> bool:
        tags = self.body.get("meta", {}).get("tag", [])
        marked = any(
            isinstance(t, dict) and (t.get("system"), t.get("code")) == VERIFIED_ADDRESS
            for t in tags
        )
        return marked and bool(self.body.get("address") or self.body.get("telecom"))

    @property
    def kinds(self) -> frozenset[str]:
        """Organization.type / PractitionerRole.code / RelatedPerson.relationship codes."""
        found = {*codes(self.body.get("type")), *codes(self.body.get("code"))}
        return frozenset(found | codes(self.body.get("relationship")))


@dataclass(frozen=True)
class Order:
    order_id: str
    kind: str
    patient_id: str | None
    recipient_ref: str | None
    types: frozenset[str]
    refs: frozenset[str]
    date_from: str | None
    date_to: str | None
    expires_on: str | None
    gag: str
    gag_until: str | None
    gag_lifted_at: str | None
    assurances: frozenset[str]

    def names(self, item: Item) -> bool:
        """Whether the order names this resource (by reference, or by type and date)."""
        if item.ref in self.refs:
            return True
        if item.rtype not in self.types:
            return False
        return in_range(item.date, self.date_from, self.date_to)

    def gagged(self, now: str) -> bool:
        if self.gag == "none" or self.gag_lifted_at is not None:
            return False
        return self.gag_until is None or now < self.gag_until


@dataclass(frozen=True)
class Baa:
    baa_id: str
    recipient_ref: str
    effective_on: str
    ends_on: str | None

    def in_force(self, today: str) -> bool:
        return self.effective_on <= today and (self.ends_on is None or today <= self.ends_on)


@dataclass(frozen=True)
class Facts:
    tenant_id: str
    patient_id: str
    patient: dict[str, Any]
    basis: Basis
    purpose: str
    recipient: Recipient
    items: tuple[Item, ...]
    explicit: bool  # named resources (True) or a class
    now: str
    actor_kind: str
    authorization: SignedAuthorization | None = None
    order: Order | None = None
    baas: tuple[Baa, ...] = field(default_factory=tuple)
    order_required: bool = False  # the policy's BasisRule.requires_order for this basis

    @property
    def today(self) -> str:
        return self.now[:10]


def codes(concepts: Any) -> frozenset[str]:
    """Every code of a CodeableConcept, a Coding, or a list of either."""
    return frozenset(c for _system, c, _display in codings(concepts))


def codings(value: Any) -> Iterator[tuple[str | None, str, str]]:
    """(system, code, display or text) of every Coding inside a concept or list of them."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        if "code" in item and isinstance(item["code"], str):
            yield item.get("system"), item["code"], str(item.get("display", ""))
        for coding in item.get("coding", []) if isinstance(item.get("coding"), list) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                yield coding.get("system"), coding["code"], str(coding.get("display", ""))
        if isinstance(item.get("text"), str):
            yield None, "", item["text"]


def clinical_date(body: dict[str, Any]) -> str | None:
    """The date a resource is about (first of the usual elements), YYYY-MM-DD."""
    for path in _DATE_PATHS:
        value: Any = body
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, str) and len(value) >= 4:
            return value[:10]
    return None


def in_range(day: str | None, start: str | None, end: str | None) -> bool:
    if start is None and end is None:
        return True
    if day is None:
        return False  # a bounded class never takes an undated resource
    return (start is None or day >= start[: len(day)]) and (end is None or day <= end[:10])


def reference(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def deceased(patient: dict[str, Any]) -> bool:
    return patient.get("deceasedBoolean") is True or isinstance(
        patient.get("deceasedDateTime"), str
    )


def refuse(reason: str) -> CareVaultError:
    return Refused(reason)
