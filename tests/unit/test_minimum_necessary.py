"""Cutting a resource to a profile: kept elements and their `_x` twins stay, narrative and
notes go, a withheld type leaves with its identity only, and every cut is marked REDACTED."""

from __future__ import annotations

import orjson

from carevault.identity.models import Actor
from carevault.identity.permissions import ROLE_PERMISSIONS, Purpose, Role
from carevault.privacy.minimum_necessary import FULL, FieldProfile
from carevault.privacy.profiles.loader import load_profiles

ENCOUNTER = {
    "resourceType": "Encounter", "id": "e1", "meta": {"versionId": "1"}, "status": "finished",
    "_status": {"extension": [{"url": "x", "valueString": "y"}]},
    "class": {"code": "AMB"}, "reasonCode": [{"text": "private"}],
    "text": {"status": "generated", "div": "<div>private</div>"},
}  # fmt: skip


def actor(role: Role, purpose: Purpose) -> Actor:
    return Actor("t", "u", role, purpose, ROLE_PERMISSIONS[role])


def test_keep_cuts_and_marks() -> None:
    profile = FieldProfile({"Encounter": frozenset({"status", "class"})})
    cut = orjson.loads(profile.apply("Encounter", orjson.dumps(ENCOUNTER)))
    assert set(cut) == {"resourceType", "id", "meta", "status", "_status", "class"}
    assert cut["meta"]["versionId"] == "1"
    assert cut["meta"]["security"][0]["code"] == "REDACTED"
    # other types are untouched
    assert profile.apply("Patient", b'{"resourceType":"Patient"}') == b'{"resourceType":"Patient"}'


def test_withheld_type_leaves_with_its_identity_only() -> None:
    profile = FieldProfile(withheld=frozenset({"Encounter"}))
    cut = orjson.loads(profile.apply("Encounter", orjson.dumps(ENCOUNTER)))
    assert set(cut) == {"resourceType", "id", "meta"}
    assert profile.withholds("Encounter")
    assert not FULL.withholds("Encounter")
    perms = frozenset({"fhir:Encounter:read", "fhir:Encounter:write", "fhir:Patient:read"})
    assert profile.readable_permissions(perms) == perms - {"fhir:Encounter:read"}


def test_shipped_profiles_by_role_and_purpose() -> None:
    profiles = load_profiles()
    billing = profiles.profile_for(actor(Role.STAFF, Purpose.HPAYMT))
    assert billing.name == "billing"
    for clinical in ("Observation", "DocumentReference", "DiagnosticReport", "ImagingStudy",
                     "Communication", "QuestionnaireResponse"):  # fmt: skip
        assert billing.withholds(clinical)
    assert "reasonCode" not in billing.keep["Encounter"]
    assert {"name", "birthDate", "address"} <= billing.keep["Patient"]
    assert {"deceasedBoolean", "deceasedDateTime"} <= billing.keep["Patient"]
    assert not billing.withholds("Organization")
    assert "Organization" not in billing.keep
    for kept in billing.keep.values():
        assert not kept & {"text", "note", "contained"}
    assert profiles.profile_for(actor(Role.PRACTITIONER, Purpose.TREAT)).is_full
    assert profiles.profile_for(actor(Role.STAFF, Purpose.TREAT)).is_full
    assert profiles.profile_for(actor(Role.PATIENT, Purpose.PATRQT)).is_full
    operations = profiles.profile_for(actor(Role.STAFF, Purpose.HOPERAT))
    assert "payload" not in operations.keep["Communication"]
    admin = profiles.profile_for(actor(Role.PRACTICE_ADMIN, Purpose.HOPERAT))
    assert admin.withholds("Patient")
    assert not admin.withholds("Practitioner")
