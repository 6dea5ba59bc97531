"""The minimum-necessary hook cuts resources to a profile before they leave the gate."""

from __future__ import annotations

import orjson

from carevault.identity.models import Actor
from carevault.identity.permissions import Purpose, Role
from carevault.privacy.minimum_necessary import FULL, FieldProfile, RoleProfiles

BODY = orjson.dumps(
    {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "2"},
        "name": [{"family": "Doe"}],
        "birthDate": "1970-01-01",
        "telecom": [{"value": "555"}],
    }
)


def _actor(role: Role, purpose: Purpose) -> Actor:
    return Actor("t", "u", role, purpose, frozenset())


def test_full_profile_returns_the_same_bytes() -> None:
    assert FULL.is_full
    assert FULL.apply("Patient", BODY) is BODY


def test_a_profile_keeps_only_listed_elements_and_marks_the_redaction() -> None:
    profile = FieldProfile({"Patient": frozenset({"name"})})
    cut = orjson.loads(profile.apply("Patient", BODY))
    assert set(cut) == {"resourceType", "id", "meta", "name"}
    assert cut["meta"]["security"][0]["code"] == "REDACTED"
    # types the profile does not list pass whole
    assert profile.apply("Organization", b'{"a":1}') == b'{"a":1}'


def test_profiles_are_chosen_by_role_and_purpose() -> None:
    billing = FieldProfile({"Patient": frozenset({"name"})})
    profiles = RoleProfiles(by_role_purpose={("staff", "HPAYMT"): billing})
    assert profiles.profile_for(_actor(Role.STAFF, Purpose.HPAYMT)) is billing
    assert profiles.profile_for(_actor(Role.STAFF, Purpose.TREAT)) is FULL
