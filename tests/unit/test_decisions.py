"""Property tests of the decision function (privacy/decisions.py) and of the scope a reach
turns into (privacy/reach.py): whatever the inputs, the rules hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carevault.fhir_types import SERVED_TYPES
from carevault.identity.permissions import ALL_FHIR_PERMISSIONS, ROLE_PURPOSES, Purpose, Role
from carevault.privacy.decisions import (
    BREAK_GLASS_MESSAGE,
    BREAK_GLASS_ROLES,
    Basis,
    Status,
    Subject,
    Target,
    decide,
)
from carevault.privacy.reach import Reach

TENANTS = ("t-north", "t-south")
INSTANTS = ("2026-11-23T09:00:00.000000Z", "2026-11-23T10:00:00.000000Z",
            "2026-11-23T11:00:00.000000Z")  # fmt: skip
COMPARTMENT = frozenset({Basis.OWN_RECORD, Basis.REPRESENTATIVE})

roles = st.sampled_from([None, *Role])
permission_sets = st.frozensets(st.sampled_from(sorted(ALL_FHIR_PERMISSIONS)), max_size=40)
subjects = st.builds(
    Subject,
    tenant_id=st.sampled_from(TENANTS),
    role=roles,
    permissions=permission_sets,
    purpose=st.sampled_from(list(Purpose)),
    may_break_glass=st.booleans(),
)
targets = st.builds(
    Target,
    tenant_id=st.sampled_from(TENANTS),
    resource_type=st.sampled_from([*SERVED_TYPES, "Basic", "Unknown"]),
    action=st.sampled_from(["read", "write", "delete", "patch"]),
    basis=st.one_of(st.none(), st.sampled_from(list(Basis))),
    grant_until=st.one_of(st.none(), st.sampled_from(INSTANTS)),
    now=st.sampled_from(INSTANTS),
)


@settings(max_examples=3000)
@given(subjects, targets)
def test_the_rules_hold_for_any_request(subject: Subject, target: Target) -> None:
    decision = decide(subject, target)
    permission = f"fhir:{target.resource_type}:{target.action}"
    if decision.allowed:
        assert decision.status is Status.ALLOWED
        assert permission in subject.permissions  # never without the permission
        assert subject.tenant_id == target.tenant_id  # never another tenant
        if subject.role is not None:  # a standing purpose the role may claim
            assert subject.purpose in ROLE_PURPOSES[subject.role]
            assert subject.purpose is not Purpose.ETREAT
        if subject.role in (Role.PATIENT, Role.REPRESENTATIVE):
            # compartment roles never reach beyond their own patients
            assert target.basis is None or target.basis in COMPARTMENT
        if subject.role is Role.PATIENT and target.basis is not None:
            assert target.basis is Basis.OWN_RECORD
        if subject.role is Role.REPRESENTATIVE and target.basis is not None:
            assert target.basis is Basis.REPRESENTATIVE
        if decision.purpose is Purpose.ETREAT:  # ETREAT only via a live grant
            assert target.basis is Basis.BREAK_GLASS
            assert target.grant_until is not None
            assert target.now < target.grant_until
            assert subject.may_break_glass
            assert subject.role in BREAK_GLASS_ROLES
        if target.basis is Basis.BREAK_GLASS:
            assert decision.purpose is Purpose.ETREAT
        if target.basis is Basis.NONE:
            raise AssertionError("no reach never allows")
    else:
        assert decision.status in (Status.FORBIDDEN, Status.NOT_FOUND)
        if subject.tenant_id != target.tenant_id:
            assert decision.status is Status.NOT_FOUND  # the tenant wall says nothing more
        if decision.reason == BREAK_GLASS_MESSAGE:
            # only users named in advance are ever told to break the glass
            assert subject.may_break_glass
            assert subject.role in BREAK_GLASS_ROLES
            assert decision.status is Status.FORBIDDEN


@given(subjects, targets)
def test_the_same_question_gets_the_same_answer(subject: Subject, target: Target) -> None:
    assert decide(subject, target) == decide(subject, target)


@given(subjects, st.sampled_from(SERVED_TYPES))
def test_out_of_reach_is_404_unless_the_user_may_break_glass(subject: Subject, rtype: str) -> None:
    subject = Subject(subject.tenant_id, subject.role, frozenset(ALL_FHIR_PERMISSIONS),
                      ROLE_PURPOSES[subject.role][0] if subject.role else Purpose.HOPERAT,
                      subject.may_break_glass)  # fmt: skip
    decision = decide(subject, Target(subject.tenant_id, rtype, "read", Basis.NONE, None, ""))
    assert not decision.allowed
    eligible = subject.may_break_glass and subject.role in BREAK_GLASS_ROLES
    assert decision.status is (Status.FORBIDDEN if eligible else Status.NOT_FOUND)


@given(
    subjects,
    st.dictionaries(st.sampled_from(["p1", "p2", "p3", "p4"]), st.sampled_from(list(Basis))),
    st.dictionaries(st.sampled_from(["p1", "p2", "p3", "p4"]), st.sampled_from(INSTANTS)),
    st.sampled_from(INSTANTS),
)
def test_the_scope_holds_only_admitted_patients(
    subject: Subject, bases: dict[str, Basis], grants: dict[str, str], now: str
) -> None:
    scope = Reach(subject, now, bases=bases, grants=grants).scope
    assert scope.tenant_id == subject.tenant_id
    assert scope.patient_ids is not None  # a limited reach is never the whole tenant
    for patient in scope.patient_ids:
        basis = bases[patient]
        assert basis is not Basis.NONE
        if basis is Basis.BREAK_GLASS:  # a lapsed grant reaches nobody
            assert now < grants[patient]
            assert subject.may_break_glass
        if subject.role is Role.PATIENT:
            assert basis is Basis.OWN_RECORD
        if subject.role is Role.REPRESENTATIVE:
            assert basis is Basis.REPRESENTATIVE
