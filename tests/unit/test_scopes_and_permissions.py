"""SMART scopes narrow a role's permissions; roles claim only their purposes."""

from __future__ import annotations

import pytest

from carevault.identity.permissions import (
    ALL_FHIR_PERMISSIONS,
    ROLE_PERMISSIONS,
    ROLE_PURPOSES,
    Permission,
    Purpose,
    Role,
    fhir_permission,
)
from carevault.identity.scopes import ScopeError, permissions_for


def test_v1_and_v2_scopes() -> None:
    assert permissions_for(("user/Patient.read",)) == {"fhir:Patient:read"}
    assert permissions_for(("user/Patient.rs",)) == {"fhir:Patient:read"}
    assert permissions_for(("user/Observation.cud",)) == {
        "fhir:Observation:write",
        "fhir:Observation:delete",
    }
    everything = permissions_for(("user/*.*",))
    assert "fhir:DocumentReference:delete" in everything
    assert Permission.AUDIT_LOG_READ not in everything  # scopes reach FHIR data only


@pytest.mark.parametrize("bad", ["Patient.read", "user/Patient", "user/Nope.read", "user/*.x"])
def test_malformed_scopes_are_refused(bad: str) -> None:
    with pytest.raises(ScopeError):
        permissions_for((bad,))


def test_roles_without_phi_have_no_clinical_permission() -> None:
    for role in (Role.PRACTICE_ADMIN, Role.PRIVACY_OFFICER, Role.VENDOR_OPERATOR):
        clinical = {
            p for p in ROLE_PERMISSIONS[role] if p.split(":")[1:2] in (["Patient"], ["Observation"])
        }
        assert clinical == set(), role


def test_every_role_lists_purposes_and_only_practitioners_may_break_glass() -> None:
    assert set(ROLE_PURPOSES) == set(Role)
    may_break_glass = {r for r, purposes in ROLE_PURPOSES.items() if Purpose.ETREAT in purposes}
    assert may_break_glass == {Role.PRACTITIONER}


def test_permission_names_follow_scope_resource_action() -> None:
    for permission in [*Permission, *ALL_FHIR_PERMISSIONS]:
        scope, resource, action = permission.split(":")
        assert scope
        assert resource
        assert action
    assert fhir_permission("Immunization", "read") == "fhir:Immunization:read"
    assert fhir_permission("Basic", "read") is None  # not served: no permission can name it
    assert fhir_permission("Patient", "fly") is None


def test_patients_never_read_cohorts() -> None:
    assert "fhir:Group:read" not in ROLE_PERMISSIONS[Role.PATIENT]
    assert "fhir:Group:read" not in ROLE_PERMISSIONS[Role.REPRESENTATIVE]
    assert "fhir:Group:read" in ROLE_PERMISSIONS[Role.PRACTITIONER]
