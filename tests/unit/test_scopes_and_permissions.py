"""SMART scopes narrow a role's permissions; roles claim only their purposes."""

from __future__ import annotations

import pytest

from carevault.identity.permissions import (
    ROLE_PERMISSIONS,
    ROLE_PURPOSES,
    Permission,
    Purpose,
    Role,
)
from carevault.identity.scopes import ScopeError, permissions_for


def test_v1_and_v2_scopes() -> None:
    assert permissions_for(("user/Patient.read",)) == {Permission.PATIENT_READ}
    assert permissions_for(("user/Patient.rs",)) == {Permission.PATIENT_READ}
    assert permissions_for(("user/Observation.cud",)) == {
        Permission.OBSERVATION_WRITE,
        Permission.OBSERVATION_DELETE,
    }
    everything = permissions_for(("user/*.*",))
    assert Permission.DOCUMENT_REFERENCE_DELETE in everything
    assert Permission.AUDIT_LOG_READ not in everything  # scopes reach FHIR data only


@pytest.mark.parametrize("bad", ["Patient.read", "user/Patient", "user/Nope.read", "user/*.x"])
def test_malformed_scopes_are_refused(bad: str) -> None:
    with pytest.raises(ScopeError):
        permissions_for((bad,))


def test_roles_without_phi_have_no_clinical_permission() -> None:
    for role in (Role.PRACTICE_ADMIN, Role.PRIVACY_OFFICER, Role.VENDOR_OPERATOR):
        clinical = {p for p in ROLE_PERMISSIONS[role] if p.resource in {"Patient", "Observation"}}
        assert clinical == set(), role


def test_every_role_lists_purposes_and_only_practitioners_may_break_glass() -> None:
    assert set(ROLE_PURPOSES) == set(Role)
    may_break_glass = {r for r, purposes in ROLE_PURPOSES.items() if Purpose.ETREAT in purposes}
    assert may_break_glass == {Role.PRACTITIONER}


def test_permission_names_follow_scope_resource_action() -> None:
    for permission in Permission:
        scope, resource, action = permission.value.split(":")
        assert scope
        assert resource
        assert action
        assert permission.resource == resource
        assert permission.action == action
