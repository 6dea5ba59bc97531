"""Which patients an actor reaches, and why: the facts the decision function needs.

- a named system actor, staff and non-clinical workforce: the whole tenant (their role's
  permissions limit them further);
- a practitioner: the whole tenant under the "tenant-wide" rule; under "care-team" only the
  patients of an Encounter (participant.individual), a CareTeam (participant.member) or a
  ServiceRequest (requester, performer) naming their Practitioner — found in the search
  index in SQL — plus the patients of their live break-glass grants;
- a patient: their own compartment; a representative: the patients of their verified,
  unexpired, unrevoked representations (a minor's reaches end on the 18th birthday).

Resolved once per gate (per request), in the reader transaction of the first read, so a new
Encounter grants at once and a removed one revokes at once: nothing is cached across
requests. Costs: staff, patients and system actors no query; a practitioner none under the
tenant-wide rule (their Practitioner link, break-glass naming and the tenant's rule come with
their token or session: `Actor.workforce`), one for live grants if named for break-glass,
and one or two index lookups under care-team.
How a care-team practitioner meets a new patient: front-desk staff (tenant-wide) register the
patient and schedule the Encounter naming the practitioner; the practitioner cannot write an
Encounter for a patient outside their reach (the scope refuses the write), so nobody grants
themselves reach — except under a break-glass grant, which the privacy officer reviews.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    bindparam,
    exists,
    false,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)

from carevault.identity.models import Actor, WorkforceFacts, users
from carevault.identity.permissions import Purpose, Role
from carevault.identity.tenant_policy import CareRule, tenant_policies
from carevault.privacy.access_models import (
    MINOR_KINDS,
    RepresentationKind,
    break_glass_grants,
    representations,
)
from carevault.privacy.decisions import Basis, Subject, basis_admits, purpose_for
from carevault.records.models import resources, search_refs, search_tokens
from carevault.records.params import IN_COMPARTMENT
from carevault.records.store import Scope

CARE_LINKS = (
    ("Encounter", "practitioner"),  # participant.individual → Practitioner
    ("CareTeam", "participant"),  # participant.member
    ("ServiceRequest", "requester"),  # a referral they made …
    ("ServiceRequest", "performer"),  # … or were sent
)
ENDED = ("entered-in-error", "cancelled", "revoked")
"""Statuses under which a link never happened; a finished encounter still counts."""
_ON_BEHALF_MAX = 128  # audit_entries.on_behalf_of


def _const(value: str) -> ColumnElement[str]:
    """A fixed constant rendered in the SQL (no per-execution expansion of IN lists)."""
    assert value.replace("-", "").isalpha()  # our own names only: nothing to quote
    return literal_column(f"'{value}'", String)


def _link(rtype: str, param: str) -> Select[tuple[str, str]]:
    s = search_refs
    return select(s.c.resource_type, s.c.resource_id).where(
        s.c.tenant_id == bindparam("tenant_id"),
        s.c.resource_type == rtype,
        s.c.param == param,
        s.c.target_id == bindparam("practitioner_id"),
        s.c.target_type == "Practitioner",
    )


def _care_team_query() -> Select[tuple[str | None]]:
    links = union_all(*[_link(t, p) for t, p in CARE_LINKS]).subquery()
    r, t = resources, search_tokens
    ended = exists().where(
        t.c.tenant_id == r.c.tenant_id,
        t.c.resource_type == r.c.resource_type,
        t.c.resource_id == r.c.resource_id,
        t.c.param == _const("status"),
        or_(*[t.c.code == _const(code) for code in ENDED]),
    )
    return (
        select(r.c.patient_id)
        .distinct()
        .select_from(links)
        .join(
            r,
            and_(
                r.c.tenant_id == bindparam("tenant_id"),
                r.c.resource_type == links.c.resource_type,
                r.c.resource_id == links.c.resource_id,
            ),
        )
        .where(r.c.deleted == false(), r.c.patient_id.is_not(None), ~ended)
    )


_CARE_TEAM = _care_team_query()
"""Built once: a care-team practitioner's searches, histories and exports run it."""


_PATIENT_OF = select(resources.c.patient_id).where(
    resources.c.tenant_id == bindparam("tenant_id"),
    resources.c.resource_type == bindparam("rtype"),
    resources.c.resource_id == bindparam("rid"),
)
"""The patient a resource is filed under (None outside any compartment)."""


def _one_patient_link(rtype: str, param: str) -> Select[tuple[str | None]]:
    """The requested resource's patient, if one of that patient's resources of this type links
    the practitioner: driven from the patient's few resources (ix_resources_patient), each
    checked on search_refs' key."""
    r, s, t = resources, search_refs, search_tokens
    ended = exists().where(
        t.c.tenant_id == r.c.tenant_id,
        t.c.resource_type == r.c.resource_type,
        t.c.resource_id == r.c.resource_id,
        t.c.param == _const("status"),
        or_(*[t.c.code == _const(code) for code in ENDED]),
    )
    return (
        select(r.c.patient_id)
        .select_from(r)
        .join(
            s,
            and_(
                s.c.tenant_id == r.c.tenant_id,
                s.c.resource_type == r.c.resource_type,
                s.c.resource_id == r.c.resource_id,
            ),
        )
        .where(
            r.c.tenant_id == bindparam("tenant_id"),
            r.c.patient_id == _PATIENT_OF.scalar_subquery(),
            r.c.resource_type == _const(rtype),
            r.c.deleted == false(),
            s.c.param == _const(param),
            s.c.target_type == _const("Practitioner"),
            s.c.target_id == bindparam("practitioner_id"),
            ~ended,
        )
    )


def _one_patient_query() -> Select[tuple[str | None]]:
    """The patient of one resource, if they are in the practitioner's care (one statement,
    stopping at the first link)."""
    links = union_all(*[_one_patient_link(t, p) for t, p in CARE_LINKS]).subquery()
    return select(links.c.patient_id).limit(1)


_ONE_PATIENT = _one_patient_query()
"""Built once: a care-team practitioner's single-resource reads run it (tens of µs)."""


_WORKFORCE_ROW = (
    select(users.c.practitioner_id, users.c.may_break_glass, tenant_policies.c.care_rule)
    .select_from(users.outerjoin(tenant_policies, tenant_policies.c.tenant_id == users.c.tenant_id))
    .where(users.c.tenant_id == bindparam("tenant_id"), users.c.user_id == bindparam("user_id"))
)

_GRANTS = select(break_glass_grants.c.patient_id, break_glass_grants.c.expires_at).where(
    break_glass_grants.c.tenant_id == bindparam("tenant_id"),
    break_glass_grants.c.user_id == bindparam("user_id"),
    break_glass_grants.c.expires_at > bindparam("now"),
)

_REPRESENTED = select(representations.c.patient_id, representations.c.kind).where(
    representations.c.tenant_id == bindparam("tenant_id"),
    representations.c.representative_id == bindparam("user_id"),
    representations.c.verified_at.is_not(None),
    representations.c.revoked_at.is_(None),
    (representations.c.expires_at.is_(None)) | (representations.c.expires_at > bindparam("now")),
    (representations.c.reach_ends_at.is_(None))
    | (representations.c.reach_ends_at > bindparam("now")),
)

_EXISTS = select(literal(1)).where(
    resources.c.tenant_id == bindparam("tenant_id"),
    resources.c.resource_type == bindparam("rtype"),
    resources.c.resource_id == bindparam("rid"),
)


def representative_purpose(kind: RepresentationKind) -> Purpose:
    """Family acting for a minor (FAMRQT); a document-backed agent (PWATRNY)."""
    return Purpose.FAMRQT if kind in MINOR_KINDS else Purpose.PWATRNY


@dataclass(frozen=True)
class Reach:
    """Who an actor reaches, why, and the scope in SQL that follows from it."""

    subject: Subject
    now: str
    tenant_wide: bool = False
    bases: Mapping[str, Basis] = field(default_factory=dict)  # patient → the best basis
    grants: Mapping[str, str] = field(default_factory=dict)  # patient → grant expiry
    purposes: Mapping[str, Purpose] = field(default_factory=dict)  # representatives' kinds

    @property
    def scope(self) -> Scope:
        if self.tenant_wide:
            return Scope(self.subject.tenant_id, None)
        admitted = frozenset(
            p
            for p, basis in self.bases.items()
            if basis_admits(self.subject, basis, self.grants.get(p), self.now)
        )
        return Scope(self.subject.tenant_id, admitted)

    @property
    def limited(self) -> bool:
        return not self.tenant_wide

    def purpose(self, patient_ids: Iterable[str]) -> Purpose:
        """The purpose an access to these patients is audited under."""
        found = set(patient_ids)
        if any(self.bases.get(p) is Basis.BREAK_GLASS for p in found):
            return Purpose.ETREAT  # at least one patient was reached only by breaking the glass
        kinds = {self.purposes[p] for p in found if p in self.purposes}
        if len(kinds) == 1:
            return kinds.pop()
        return purpose_for(self.subject, None)

    def on_behalf_of(self, patient_ids: Iterable[str]) -> str | None:
        """For a representative: the represented patient(s) the access was for."""
        if self.subject.role is not Role.REPRESENTATIVE:
            return None
        mine = sorted(set(patient_ids) & set(self.bases)) or sorted(self.bases)
        text = ""
        for pid in mine:
            joined = f"{text},{pid}" if text else pid
            if len(joined) > _ON_BEHALF_MAX:
                break
            text = joined
        return text or None


def resolve(conn: Connection, actor: Actor, now: str, only: tuple[str, str] | None = None) -> Reach:
    """The actor's reach. With `only` (a type and id), a care-team practitioner's reach is
    resolved for that one resource's patient: what a single read needs, at a point query's
    cost instead of the whole care set."""
    base = Subject(actor.tenant_id, actor.role, actor.permissions, actor.purpose)
    key = {"tenant_id": actor.tenant_id, "user_id": actor.user_id, "now": now}
    if actor.role is Role.PATIENT:
        return Reach(base, now, bases=dict.fromkeys(actor.patient_ids, Basis.OWN_RECORD))
    if actor.role is Role.REPRESENTATIVE:
        # Only recorded, verified relationships count (never users.patient_id).
        rows = conn.execute(_REPRESENTED, key).all()
        purposes = {r.patient_id: representative_purpose(RepresentationKind(r.kind)) for r in rows}
        return Reach(base, now, bases=dict.fromkeys(purposes, Basis.REPRESENTATIVE),
                     purposes=purposes)  # fmt: skip
    if actor.role is not Role.PRACTITIONER:
        return Reach(base, now, tenant_wide=True)
    facts = actor.workforce or _workforce_facts(conn, key)
    may_break_glass = bool(facts is not None and facts.may_break_glass)
    subject = Subject(actor.tenant_id, actor.role, actor.permissions, actor.purpose,
                      may_break_glass)  # fmt: skip
    rule = CareRule(facts.care_rule) if facts and facts.care_rule else CareRule.TENANT_WIDE
    bases: dict[str, Basis] = {}
    grants: dict[str, str] = {}
    if may_break_glass:  # under either rule: reads under a grant are audited as ETREAT
        for grant in conn.execute(_GRANTS, key):
            grants[grant.patient_id] = max(grant.expires_at, grants.get(grant.patient_id, ""))
            bases[grant.patient_id] = Basis.BREAK_GLASS
    if rule is CareRule.TENANT_WIDE:
        return Reach(subject, now, tenant_wide=True, bases=bases, grants=grants)
    if facts is None or not facts.practitioner_id:
        return Reach(subject, now, bases=bases, grants=grants)
    care = {"tenant_id": actor.tenant_id, "practitioner_id": facts.practitioner_id}
    if only is not None:
        target = {"tenant_id": actor.tenant_id, "rtype": only[0], "rid": only[1]}
        patient = conn.execute(_ONE_PATIENT, {**care, **target}).scalar()
        if patient:
            bases[str(patient)] = Basis.CARE_RELATIONSHIP
    else:
        for link in conn.execute(_CARE_TEAM, care):
            bases[link.patient_id] = Basis.CARE_RELATIONSHIP  # a standing link beats a grant
    return Reach(subject, now, bases=bases, grants=grants)


def _workforce_facts(conn: Connection, key: Mapping[str, str]) -> WorkforceFacts | None:
    """For actors not built by authentication (tests, jobs): read what the token would carry."""
    row = conn.execute(_WORKFORCE_ROW, key).one_or_none()
    if row is None:
        return None
    return WorkforceFacts(row.practitioner_id, bool(row.may_break_glass), row.care_rule)


def out_of_reach(conn: Connection, reach: Reach, rtype: str, rid: str) -> bool:
    """Whether this compartment resource exists in the tenant, beyond the actor's scope."""
    if reach.tenant_wide or rtype not in IN_COMPARTMENT:
        return False
    key = {"tenant_id": reach.subject.tenant_id, "rtype": rtype, "rid": rid}
    return conn.execute(_EXISTS, key).first() is not None
