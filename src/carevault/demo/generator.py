"""A seeded generator of a synthetic clinic, as plain FHIR R4 resources (dicts).

Pure: one `random.Random(seed)`, no global state, no clock, no network. The same
seed gives the same output, ids included, so demos and benchmarks are reproducible.
Resources refer to each other as "Type/key", where the key is the resource's `id`
here; the seeder creates them in order and maps keys to the ids the server assigns.

Identifying values are chosen so that a scan of the data folder for them cannot
be fooled by a coincidence: birth dates are never 1 January or 31 December (the
birth *year* is indexed in the clear as a range bounded by those days), and every
clinical date falls after 2020, the last birth year.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from carevault.demo import vocabulary as vocab
from carevault.demo.vocabulary import (
    ACT_CODE,
    CLIA_SYSTEM,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    IDENTIFIER_TYPE,
    LOINC,
    NOTE_CATEGORY,
    NPI_SYSTEM,
    OBS_CATEGORY,
    ORG_TYPE,
    SNOMED,
    UCUM,
)
from carevault.identity.models import TenantKind

DEFAULT_SEED = 7
DEFAULT_PATIENTS_PER_TENANT = 30
AS_OF = date(2026, 1, 1)
"""Ages in notes are counted at this date, so the output does not depend on the clock."""
FIRST_VISIT = date(2021, 1, 4)
LAST_VISIT = date(2025, 12, 19)


@dataclass(frozen=True)
class TenantSpec:
    slug: str
    name: str
    kind: TenantKind
    mrn_prefix: str
    note_code: tuple[str, str]
    """LOINC code and display of the notes this tenant writes."""

    @property
    def mrn_system(self) -> str:
        return f"https://demo.carevault.example/{self.slug}/mrn"

    @property
    def email_domain(self) -> str:
        return f"{self.slug}.example.org"


DEMO_TENANTS = (
    TenantSpec("riverside", "Riverside Family Practice", TenantKind.PRACTICE, "RFP",
               ("11506-3", "Progress note")),
    TenantSpec("northlab", "Northlab Diagnostics", TenantKind.LABORATORY, "NLD",
               ("11502-2", "Laboratory report")),
)  # fmt: skip
"""The two demo tenants: a family practice and a clinical laboratory."""


@dataclass(frozen=True)
class DemoResource:
    resource_type: str
    key: str
    """The resource's id in the generated graph (a UUID drawn from the seeded RNG)."""
    body: dict[str, Any]

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.key}"


@dataclass(frozen=True)
class PatientIdentity:
    """A patient's direct identifiers, as written, for the no-plaintext scan and demo logins."""

    tenant: str
    key: str
    mrn_system: str
    mrn: str
    family: str
    given: tuple[str, ...]
    birth_date: str
    phone: str
    email: str
    street: str

    @property
    def is_adult(self) -> bool:
        return _age(date.fromisoformat(self.birth_date), AS_OF) >= 18

    def identifying_values(self) -> tuple[str, ...]:
        """Every value a scan of the data folder must not find in clear."""
        return (self.family, *self.given, self.birth_date, self.phone, self.email,
                self.street, self.mrn)  # fmt: skip


@dataclass(frozen=True)
class DemoPatient:
    identity: PatientIdentity
    resources: tuple[DemoResource, ...]
    """The Patient first, then its encounters, then what refers to them: a valid write order."""


@dataclass(frozen=True)
class DemoPractitioner:
    resource: DemoResource
    display: str
    email: str


@dataclass(frozen=True)
class DemoTenant:
    spec: TenantSpec
    organization: DemoResource
    practitioners: tuple[DemoPractitioner, ...]
    patients: tuple[DemoPatient, ...]

    @property
    def directory(self) -> tuple[DemoResource, ...]:
        """What patients' resources refer to, written first."""
        return (self.organization, *(p.resource for p in self.practitioners))

    def resources(self) -> Iterator[DemoResource]:
        yield from self.directory
        for patient in self.patients:
            yield from patient.resources


@dataclass(frozen=True)
class DemoData:
    seed: int
    tenants: tuple[DemoTenant, ...]

    def resources(self) -> Iterator[DemoResource]:
        for tenant in self.tenants:
            yield from tenant.resources()

    def patients(self) -> Iterator[PatientIdentity]:
        for tenant in self.tenants:
            for patient in tenant.patients:
                yield patient.identity


def generate(
    seed: int = DEFAULT_SEED, patients_per_tenant: int = DEFAULT_PATIENTS_PER_TENANT
) -> DemoData:
    """The demo clinic for this seed: both tenants, their directory and their patients."""
    if patients_per_tenant < 1:
        raise ValueError("the demo needs at least one patient per tenant")
    # Demo data, not secrets: a reproducible PRNG is the point.
    rng = random.Random(seed)  # noqa: S311
    tenants = tuple(_TenantBuilder(rng, spec).build(patients_per_tenant) for spec in DEMO_TENANTS)
    return DemoData(seed, tenants)


def npi_check_digit(base9: str) -> int:
    """The Luhn check digit of an NPI, computed over the card-issuer prefix 80840 + 9 digits."""
    total = 0
    for i, char in enumerate(reversed("80840" + base9)):
        digit = int(char) * (2 if i % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Visit:
    """One encounter while it is being built: what the note about it will say."""

    resource: DemoResource
    start: datetime
    practitioner: DemoPractitioner
    findings: list[str] = field(default_factory=list)
    diagnoses: list[str] = field(default_factory=list)


class _TenantBuilder:
    def __init__(self, rng: random.Random, spec: TenantSpec) -> None:
        self._rng = rng
        self._spec = spec
        self._emails: set[str] = set()
        # The directory first: every patient's chart refers to it.
        self.org = self._organization()
        count = 3 + rng.randrange(2)
        self._practitioners = tuple(self._practitioner() for _ in range(count))

    def build(self, patients: int) -> DemoTenant:
        mrns = self._rng.sample(range(10_000, 9_999_999), patients)
        built = tuple(self._patient(mrn) for mrn in mrns)
        return DemoTenant(self._spec, self.org, self._practitioners, built)

    # -- helpers ---------------------------------------------------------------

    def _key(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _npi(self) -> str:
        base = str(self._rng.randrange(100_000_000, 200_000_000))
        return base + str(npi_check_digit(base))

    def _place(self) -> tuple[dict[str, Any], str]:
        """An address and a phone number in the same town (555-01xx numbers are fictional)."""
        city, state, zip_prefix, area = self._rng.choice(vocab.CITIES)
        street = f"{self._rng.randrange(10, 9900)} {self._rng.choice(vocab.STREETS)} " + (
            self._rng.choice(vocab.STREET_KINDS)
        )
        address = {"use": "home", "type": "physical", "line": [street], "city": city,
                   "state": state, "postalCode": f"{zip_prefix}{self._rng.randrange(100):02d}",
                   "country": "US"}  # fmt: skip
        return address, f"{area}-555-01{self._rng.randrange(100):02d}"

    def _visit_time(self, day: date) -> datetime:
        hour, minute = self._rng.randrange(8, 17), self._rng.choice((0, 15, 30, 45))
        return datetime(day.year, day.month, day.day, hour, minute)

    # -- directory -------------------------------------------------------------

    def _organization(self) -> DemoResource:
        address, phone = self._place()
        if self._spec.kind is TenantKind.LABORATORY:
            ident = {"system": CLIA_SYSTEM, "value": f"22D{self._rng.randrange(10**7):07d}"}
        else:
            ident = {"system": NPI_SYSTEM, "value": self._npi()}
        body = {
            "resourceType": "Organization", "active": True, "identifier": [ident],
            "type": [_coding(ORG_TYPE, "prov", "Healthcare Provider")],
            "name": self._spec.name,
            "telecom": [{"system": "phone", "value": phone, "use": "work"}],
            "address": [{**address, "use": "work"}],
        }  # fmt: skip
        key = self._key()
        return DemoResource("Organization", key, {**body, "id": key})

    def _practitioner(self) -> DemoPractitioner:
        female = self._rng.random() < 0.5
        given = self._rng.choice(vocab.GIVEN_FEMALE if female else vocab.GIVEN_MALE)
        family = self._rng.choice(vocab.FAMILY)
        lab = self._spec.kind is TenantKind.LABORATORY
        suffix = self._rng.choice(("MD", "DO")) if not lab else self._rng.choice(("MD", "PhD"))
        email = self._unique_email(f"{given}.{family}".lower(), self._spec.email_domain)
        key = self._key()
        body = {
            "resourceType": "Practitioner", "id": key, "active": True,
            "identifier": [{"system": NPI_SYSTEM, "value": self._npi()}],
            "name": [{"family": family, "given": [given], "prefix": ["Dr."], "suffix": [suffix]}],
            "gender": "female" if female else "male",
            "telecom": [{"system": "email", "value": email, "use": "work"}],
        }  # fmt: skip
        return DemoPractitioner(DemoResource("Practitioner", key, body),
                                f"Dr. {given} {family}, {suffix}", email)  # fmt: skip

    def _unique_email(self, local: str, domain: str) -> str:
        email = f"{local}@{domain}"
        while email in self._emails:
            email = f"{local}{self._rng.randrange(10, 100)}@{domain}"
        self._emails.add(email)
        return email

    # -- patients --------------------------------------------------------------

    def _birth_date(self) -> date:
        band = self._rng.random()
        year = (self._rng.randrange(2009, 2021) if band < 0.15  # minors
                else self._rng.randrange(1930, 1951) if band < 0.3  # older adults
                else self._rng.randrange(1951, 2009))  # fmt: skip
        # Never 1 January or 31 December: see the module docstring.
        return date(year, 1, 2) + timedelta(days=self._rng.randrange(363))

    def _patient(self, mrn_number: int) -> DemoPatient:
        rng, spec = self._rng, self._spec
        roll = rng.random()
        gender = "female" if roll < 0.49 else "male" if roll < 0.98 else "other"
        pool = {"female": vocab.GIVEN_FEMALE, "male": vocab.GIVEN_MALE}.get(
            gender, vocab.GIVEN_FEMALE + vocab.GIVEN_MALE
        )
        given = tuple(rng.sample(pool, 2 if rng.random() < 0.4 else 1))
        family = rng.choice(vocab.FAMILY)
        born = self._birth_date()
        address, phone = self._place()
        local = f"{given[0]}.{family}{rng.randrange(10, 100)}".lower()
        email = self._unique_email(local, rng.choice(vocab.EMAIL_DOMAINS))
        identity = PatientIdentity(
            tenant=spec.slug, key=self._key(), mrn_system=spec.mrn_system,
            mrn=f"{spec.mrn_prefix}{mrn_number:07d}", family=family, given=given,
            birth_date=born.isoformat(), phone=phone, email=email, street=address["line"][0],
        )  # fmt: skip
        gp = rng.choice(self._practitioners)
        patient = DemoResource("Patient", identity.key, {
            "resourceType": "Patient", "id": identity.key, "active": True,
            "identifier": [{"use": "usual", "system": spec.mrn_system, "value": identity.mrn,
                            "type": _coding(IDENTIFIER_TYPE, "MR", "Medical record number")}],
            "name": [{"use": "official", "family": family, "given": list(given)}],
            "gender": gender, "birthDate": identity.birth_date,
            "telecom": [{"system": "phone", "value": phone, "use": "mobile"},
                        {"system": "email", "value": email, "use": "home"}],
            "address": [address],
            "generalPractitioner": [{"reference": gp.resource.reference, "display": gp.display}],
            "managingOrganization": {"reference": self.org.reference, "display": spec.name},
        })  # fmt: skip
        return DemoPatient(identity, (patient, *self._chart(identity, gender, born)))

    def _chart(self, who: PatientIdentity, gender: str, born: date) -> list[DemoResource]:
        """Encounters, then conditions, observations and notes that refer to them."""
        rng = self._rng
        span = (LAST_VISIT - FIRST_VISIT).days
        days = sorted(FIRST_VISIT + timedelta(days=rng.randrange(span))
                      for _ in range(rng.randrange(1, 5)))  # fmt: skip
        visits = [self._encounter(who, self._visit_time(day)) for day in days]
        conditions = self._conditions(who, visits, _age(born, days[-1]))
        diagnosed = set(conditions)
        observations = [
            o
            for v in visits
            for o in self._observations(who, v, _age(born, v.start.date()), diagnosed)
        ]
        noted = rng.sample(visits, min(len(visits), rng.randrange(1, 3)))
        notes = [self._note(who, v, gender, born) for v in sorted(noted, key=lambda v: v.start)]
        care: list[DemoResource] = []
        if self._spec.kind is not TenantKind.LABORATORY:
            care = [
                *self._allergies(who, visits[0]),
                *self._immunizations(who, visits),
                *self._prescriptions(who, visits[-1], conditions),
                self._appointment(who),
            ]
        return [*(v.resource for v in visits), *conditions.values(), *observations, *notes, *care]

    def _subject(self, who: PatientIdentity) -> dict[str, str]:
        return {"reference": f"Patient/{who.key}"}

    def _encounter(self, who: PatientIdentity, start: datetime) -> _Visit:
        lab = self._spec.kind is TenantKind.LABORATORY
        code, display = self._rng.choice(vocab.LAB_VISITS if lab else vocab.PRACTICE_VISITS)
        practitioner = self._rng.choice(self._practitioners)
        end = start + timedelta(minutes=self._rng.choice((15, 20, 30, 45)))
        key = self._key()
        body = {
            "resourceType": "Encounter", "id": key, "status": "finished",
            "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
            "type": [_coding(SNOMED, code, display)],
            "subject": self._subject(who),
            "participant": [{"individual": {"reference": practitioner.resource.reference,
                                            "display": practitioner.display}}],
            "period": {"start": _instant(start), "end": _instant(end)},
            "serviceProvider": {"reference": self.org.reference},
        }  # fmt: skip
        return _Visit(DemoResource("Encounter", key, body), start, practitioner)

    def _conditions(
        self, who: PatientIdentity, visits: list[_Visit], age: int
    ) -> dict[str, DemoResource]:
        """1-3 distinct diagnoses, each made at one of the visits; keyed by SNOMED code."""
        choices = [c for c in vocab.CONDITIONS if c[3] <= age] + list(vocab.ACUTE_CONDITIONS)
        picked = self._rng.sample(choices, self._rng.randrange(1, 4))
        found: dict[str, DemoResource] = {}
        for code, display, chronic, _min_age in picked:
            visit = self._rng.choice(visits)
            visit.diagnoses.append(display)
            key = self._key()
            status = "active" if chronic or visit is visits[-1] else "resolved"
            found[code] = DemoResource("Condition", key, {
                "resourceType": "Condition", "id": key,
                "clinicalStatus": _coding(CONDITION_CLINICAL, status, status.title()),
                "verificationStatus": _coding(CONDITION_VERIFICATION, "confirmed", "Confirmed"),
                "category": [_coding(CONDITION_CATEGORY, "encounter-diagnosis",
                                     "Encounter Diagnosis")],
                "code": _coding(SNOMED, code, display),
                "subject": self._subject(who),
                "encounter": {"reference": visit.resource.reference},
                "onsetDateTime": visit.start.date().isoformat(),
                "recordedDate": _instant(visit.start),
                "recorder": {"reference": visit.practitioner.resource.reference},
            })  # fmt: skip
        return found

    def _observations(
        self, who: PatientIdentity, visit: _Visit, age: int, diagnosed: set[str]
    ) -> list[DemoResource]:
        lab = self._spec.kind is TenantKind.LABORATORY
        values = vocab.measurements(self._rng, age, diagnosed, lab=lab)
        taken = visit.start + timedelta(minutes=5)
        found = []
        for measure, value in values:
            visit.findings.append(f"{measure.label} {value:g} {measure.shown_unit}")
            key = self._key()
            category = "laboratory" if measure.laboratory else "vital-signs"
            found.append(DemoResource("Observation", key, {
                "resourceType": "Observation", "id": key, "status": "final",
                "category": [_coding(OBS_CATEGORY, category, category.replace("-", " ").title())],
                "code": _coding(LOINC, measure.loinc, measure.display),
                "subject": self._subject(who),
                "encounter": {"reference": visit.resource.reference},
                "effectiveDateTime": _instant(taken),
                "performer": [{"reference": visit.practitioner.resource.reference}],
                "valueQuantity": {"value": value, "unit": measure.shown_unit, "system": UCUM,
                                  "code": measure.ucum},
            }))  # fmt: skip
        return found

    def _allergies(self, who: PatientIdentity, visit: _Visit) -> list[DemoResource]:
        """About one patient in four has a recorded allergy."""
        if self._rng.random() >= 0.25:
            return []
        code, display, category, criticality = self._rng.choice(vocab.ALLERGIES)
        key = self._key()
        return [DemoResource("AllergyIntolerance", key, {
            "resourceType": "AllergyIntolerance", "id": key,
            "clinicalStatus": _coding(vocab.ALLERGY_CLINICAL, "active", "Active"),
            "verificationStatus": _coding(vocab.ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
            "type": "allergy", "category": [category], "criticality": criticality,
            "code": _coding(SNOMED, code, display),
            "patient": self._subject(who),
            "encounter": {"reference": visit.resource.reference},
            "recordedDate": _instant(visit.start),
            "recorder": {"reference": visit.practitioner.resource.reference},
        })]  # fmt: skip

    def _immunizations(self, who: PatientIdentity, visits: list[_Visit]) -> list[DemoResource]:
        found = []
        for visit in visits:
            if self._rng.random() >= 0.4:
                continue
            code, display = self._rng.choice(vocab.VACCINES)
            key = self._key()
            found.append(DemoResource("Immunization", key, {
                "resourceType": "Immunization", "id": key, "status": "completed",
                "vaccineCode": _coding(vocab.CVX, code, display),
                "patient": self._subject(who),
                "encounter": {"reference": visit.resource.reference},
                "occurrenceDateTime": _instant(visit.start + timedelta(minutes=25)),
                "primarySource": True,
                "lotNumber": f"{self._rng.choice('ABCDEFGH')}{self._rng.randrange(10000, 99999)}",
                "performer": [{"actor": {"reference": visit.practitioner.resource.reference}}],
            }))  # fmt: skip
        return found

    def _prescriptions(
        self, who: PatientIdentity, visit: _Visit, conditions: dict[str, DemoResource]
    ) -> list[DemoResource]:
        """A standing prescription for each treatable chronic condition, from the last visit."""
        found = []
        for code, condition in conditions.items():
            if code not in vocab.TREATMENTS:
                continue
            rx, display, dosage = vocab.TREATMENTS[code]
            key = self._key()
            found.append(DemoResource("MedicationRequest", key, {
                "resourceType": "MedicationRequest", "id": key, "status": "active",
                "intent": "order",
                "medicationCodeableConcept": _coding(vocab.RXNORM, rx, display),
                "subject": self._subject(who),
                "encounter": {"reference": visit.resource.reference},
                "authoredOn": _instant(visit.start + timedelta(minutes=30)),
                "requester": {"reference": visit.practitioner.resource.reference},
                "reasonReference": [{"reference": condition.reference}],
                "dosageInstruction": [{"text": dosage}],
            }))  # fmt: skip
        return found

    def _appointment(self, who: PatientIdentity) -> DemoResource:
        """The next booked visit, in the first half of 2026."""
        day = AS_OF + timedelta(days=self._rng.randrange(5, 180))
        start = self._visit_time(day)
        practitioner = self._rng.choice(self._practitioners)
        key = self._key()
        return DemoResource("Appointment", key, {
            "resourceType": "Appointment", "id": key, "status": "booked",
            "appointmentType": _coding(vocab.APPOINTMENT_TYPE, "FOLLOWUP",
                                       "A follow up visit from a previous appointment"),
            "start": _instant(start), "end": _instant(start + timedelta(minutes=20)),
            "participant": [
                {"actor": self._subject(who), "status": "accepted"},
                {"actor": {"reference": practitioner.resource.reference,
                           "display": practitioner.display}, "status": "accepted"},
            ],
        })  # fmt: skip

    def _note(self, who: PatientIdentity, visit: _Visit, gender: str, born: date) -> DemoResource:
        code, display = self._spec.note_code
        written = visit.start + timedelta(minutes=40)
        text = vocab.note_text(self._rng, display, who, visit.start, _age(born, visit.start.date()),
                               gender, visit.practitioner.display, visit.findings,
                               visit.diagnoses)  # fmt: skip
        key = self._key()
        return DemoResource("DocumentReference", key, {
            "resourceType": "DocumentReference", "id": key, "status": "current",
            "docStatus": "final",
            "type": _coding(LOINC, code, display),
            "category": [_coding(NOTE_CATEGORY, "clinical-note", "Clinical Note")],
            "subject": self._subject(who),
            "date": _instant(written),
            "author": [{"reference": visit.practitioner.resource.reference,
                        "display": visit.practitioner.display}],
            "content": [{"attachment": {
                "contentType": "text/plain", "language": "en",
                "data": base64.b64encode(text.encode()).decode("ascii"),
                "title": display, "creation": _instant(written),
            }}],
            "context": {"encounter": [{"reference": visit.resource.reference}],
                        "period": {"start": _instant(visit.start)}},
        })  # fmt: skip
