"""Search-index rows: identifiers only as keyed hashes, codes and dates in the clear."""

from __future__ import annotations

import base64

from carevault.crypto.hashing import KeyedHasher
from carevault.records.indexing import index
from carevault.records.normalize import fold

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:mrn", "value": "MRN-77"}],
    "name": [{"family": "Ñúñez", "given": ["Zoë"]}],
    "telecom": [{"system": "phone", "value": "(555) 010-4477"}],
    "birthDate": "1971-08-09",
    "gender": "female",
}
SECRETS = [
    "MRN-77",
    "Ñúñez",
    "nunez",
    "Zoë",
    "1971-08-09",
    "1971-08",
    "(555) 010-4477",
    "5550104477",
]


def _all_values(rows: object) -> list[str]:
    out = []
    for table in ("tokens", "dates", "refs"):
        for row in getattr(rows, table):
            out.extend(str(v) for v in row)
    return out


def test_no_identifier_reaches_the_index_in_clear() -> None:
    rows = index("Patient", PATIENT, KeyedHasher(b"k" * 32))
    values = _all_values(rows)
    for secret in SECRETS:
        encoded = base64.b64encode(secret.encode()).decode()
        for value in values:
            assert secret.lower() not in value.lower()
            assert encoded not in value
    # the clear parts that are allowed: gender and the birth year only
    assert ("gender", "", "female") in rows.tokens
    assert ("birthdate", "1971", "1971") in rows.dates


def test_prefix_hashes_match_folded_queries() -> None:
    hasher = KeyedHasher(b"k" * 32)
    rows = index("Patient", PATIENT, hasher)
    wanted = hasher.digest("Patient.family.prefix", fold("NUÑ"))
    assert ("family", "", wanted) in rows.tokens
    assert ("family", "", hasher.digest("Patient.family.exact", "Ñúñez")) in rows.tokens


def test_keyed_hashes_differ_by_key_and_domain() -> None:
    one, two = KeyedHasher(b"a" * 32), KeyedHasher(b"b" * 32)
    assert one.digest("Patient.family.prefix", "x") != two.digest("Patient.family.prefix", "x")
    assert one.digest("Patient.family.prefix", "x") != one.digest("Patient.given.prefix", "x")


def test_codes_references_and_periods() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectivePeriod": {"start": "2024-01-01T10:00:00Z"},
    }
    rows = index("Observation", observation, KeyedHasher(b"k" * 32))
    assert ("code", "http://loinc.org", "8867-4") in rows.tokens
    assert ("status", "", "final") in rows.tokens
    assert ("patient", "Patient", "p1") in rows.refs
    assert ("date", "2024-01-01T10:00:00.000000", "9999-12-31T23:59:59.999999") in rows.dates
