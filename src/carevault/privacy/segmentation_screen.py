"""The gate's screen: which resources in an actor's scope the security labels hide from them.

Decided in SQL on the search index (`_security` tokens in search_tokens, the current version's
labels) in the reader transaction of the read; applied right after decryption and before the
audit entry (segmentation.py says where the gate calls it). A label that hides every resource
carrying it becomes a `_security:not` search parameter, so searches leave those out in SQL,
totals and paging included; the rest is dropped after decryption and subtracted from totals
by matching the hidden ids against the same criteria in SQL.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Connection,
    Select,
    String,
    and_,
    bindparam,
    false,
    func,
    literal_column,
    select,
)

from carevault.errors import NotFound
from carevault.identity.models import Actor
from carevault.identity.permissions import Purpose, Role
from carevault.privacy.decisions import Basis
from carevault.privacy.profiles.segmentation_rules import (
    LabelRule,
    Rules,
    Viewer,
    may_read,
    shipped_rules,
)
from carevault.privacy.reach import _CARE_TEAM, Reach
from carevault.records.models import resource_versions, resources, search_tokens
from carevault.records.params import SUPPORTED_TYPES
from carevault.records.store import RecordStore, Scope, Version

T = TypeVar("T")

_BODY_KEY = tuple[str, str]


@dataclass(frozen=True)
class Screen:
    """The resources (type, id) one request's actor may not see, decided in SQL."""

    hidden: frozenset[_BODY_KEY] = frozenset()
    rules: Rules | None = None  # None: nothing is screened (a named system actor)
    reach: Reach | None = None
    care: frozenset[str] = frozenset()  # patients in the practitioner's care (or under a grant)
    where: Mapping[_BODY_KEY, tuple[str | None, str]] = field(default_factory=dict)
    """Each hidden resource's patient and last update (for $everything's total)."""
    everywhere: frozenset[str] = frozenset()
    """Labels that hide every resource carrying them here: a search leaves those out in SQL."""

    @staticmethod
    def resolve(
        conn: Connection,
        reach: Reach,
        actor: Actor,
        only: tuple[str, str] | None = None,
        codes: Iterable[str] | None = None,
        types: Collection[str] | None = None,
    ) -> Screen:
        """The screen of this actor's scope (or, with `only`, of one resource), from the index;
        `codes`: only these labels' rules (default: every label with a read rule); `types`:
        only resources of these types (the index is keyed by type: give them when known)."""
        rules = shipped_rules()
        if actor.role is None:
            return Screen()  # named system actors are audited, never screened
        candidates = rules.restricting() if codes is None else frozenset(codes)
        wanted = sorted(c for c in candidates if _may_deny(rules.by_code[c], reach))
        if not wanted:
            return Screen()  # no label can hide anything from this actor: no query at all
        key = (only, tuple(wanted), None if types is None else tuple(sorted(types)))
        cached = _CACHE.get(conn, {}).get(key)
        if cached is not None and cached.reach is reach:
            return cached  # the same reader transaction and request: the same answer
        screen = Screen._resolve(conn, reach, actor, rules, wanted, only, types)
        _CACHE.setdefault(conn, {})[key] = screen
        return screen

    @staticmethod
    def _resolve(
        conn: Connection,
        reach: Reach,
        actor: Actor,
        rules: Rules,
        wanted: list[str],
        only: tuple[str, str] | None,
        types: Collection[str] | None,
    ) -> Screen:
        scope = reach.scope
        bound: dict[str, Any] = {"tenant_id": actor.tenant_id, "codes": wanted}
        if only is not None:
            statement = _ONE
            bound.update(rtype=only[0], rid=only[1])
        else:
            statement = _OF_TYPES if scope.patient_ids is None else _OF_PATIENTS
            bound["types"] = sorted(SUPPORTED_TYPES if types is None else types)
            if scope.patient_ids is not None:
                bound["patients"] = sorted(scope.patient_ids)
        rows = conn.execute(statement, bound).all()
        labelled: dict[_BODY_KEY, set[str]] = {}
        patients: dict[_BODY_KEY, str | None] = {}
        updated: dict[_BODY_KEY, str] = {}
        for row in rows:
            rule = rules.by_code.get(row.code)
            if rule is not None and rule.system == row.system:
                key = (row.resource_type, row.resource_id)
                labelled.setdefault(key, set()).add(row.code)
                patients[key] = row.patient_id
                updated[key] = row.last_updated
        care = _care(conn, reach, actor, labelled, rules)
        screen = Screen(frozenset(), rules, reach, care)
        hidden = frozenset(
            key for key, codes_ in labelled.items()
            if not may_read(codes_, screen.viewer(patients[key]), rules)
        )  # fmt: skip
        where = {key: (patients[key], updated[key]) for key in hidden}
        carriers: dict[str, list[_BODY_KEY]] = {}
        for key, codes_ in labelled.items():
            for code in codes_:
                carriers.setdefault(code, []).append(key)
        everywhere = frozenset(
            code for code, keys in carriers.items()
            if all(not may_read((code,), screen.viewer(patients[k]), rules) for k in keys)
        )  # fmt: skip
        return replace(screen, hidden=hidden, where=where, everywhere=everywhere)

    def exclusions(self) -> list[tuple[str, str]]:
        """Search parameters that leave out, in SQL, every resource this actor may not see
        under a label that hides all its carriers (the rest is dropped after decryption)."""
        if self.rules is None:
            return []
        table = self.rules.by_code
        return [("_security:not", f"{table[c].system}|{c}") for c in sorted(self.everywhere)]

    def viewer(self, patient_id: str | None) -> Viewer:
        if self.reach is None:
            return Viewer(Purpose.HSYSADMIN, system=True)
        reach = self.reach
        purpose = reach.purpose((patient_id,)) if patient_id else reach.subject.purpose
        practitioner = reach.subject.role is Role.PRACTITIONER
        return Viewer(purpose, False, practitioner, patient_id in self.care)

    def admits(self, version: Version) -> bool:
        if (version.resource_type, version.resource_id) in self.hidden:
            return False
        if self.rules is None or version.body is None or b'"security"' not in version.body:
            return True
        # An older version read by vread/history is judged by the current labels (the index)
        # and by its own: a label once set keeps that version out too.
        labels = self.rules.labels_of(orjson.loads(version.body))
        return may_read(labels, self.viewer(version.patient_id), self.rules)

    def check(self, version: Version) -> Version:
        """One resource: one this actor may not see is NotFound, exactly like a missing one."""
        if not self.admits(version):
            raise NotFound(f"{version.resource_type}/{version.resource_id} is not known")
        return version

    def keep(self, versions: list[Version]) -> list[Version]:
        """Versions of many resources (a search page, includes, an export batch): the rest."""
        if self.rules is None:
            return versions
        return [v for v in versions if self.admits(v)]

    def apply(
        self,
        conn: Connection,
        store: RecordStore,
        scope: Scope,
        rtype: str,
        result: T,
        params: Sequence[tuple[str, str]] | None = None,
    ) -> T:
        """What the gate's read flow returns, screened: a resource or its history is NotFound;
        a search page (`params` given) or a type history page loses the hidden resources, and
        its total every hidden match on any page, counted in SQL."""
        if self.rules is None:
            return result
        if isinstance(result, Version):
            return self.check(result)  # type: ignore[return-value]
        if isinstance(result, list):  # an instance history: the resource is hidden or not
            for version in result:
                if isinstance(version, Version):
                    self.check(version)
            return result
        versions = getattr(result, "versions", None)
        if not isinstance(versions, list):
            return result
        changes: dict[str, Any] = {"versions": self.keep(versions)}
        included = getattr(result, "included", None)
        if isinstance(included, list):
            changes["included"] = self.keep(included)
        total = getattr(result, "total", None)
        ids = sorted(rid for t, rid in self.hidden if t == rtype)
        if isinstance(total, int) and ids:
            if params is not None:
                ignored = set(getattr(result, "ignored", ()))
                criteria = [(n, v) for n, v in params if n not in ignored | _NOT_CRITERIA]
                criteria += self.exclusions()  # those were never matched
                hidden = len(store.match_ids(
                    conn, scope, rtype, [*criteria, ("_id", ",".join(ids))], limit=len(ids)
                ))  # fmt: skip
            else:  # type history counts versions: every version of a hidden resource
                rv = resource_versions
                hidden = int(conn.execute(
                    select(func.count()).select_from(rv).where(
                        rv.c.tenant_id == scope.tenant_id, rv.c.resource_type == rtype,
                        rv.c.resource_id.in_(ids),
                    )
                ).scalar_one())  # fmt: skip
            changes["total"] = max(0, total - hidden)
        return replace(result, **changes)  # type: ignore[type-var]

    def everything(self, found: T, patient_id: str, types: Collection[str], since: str | None) -> T:
        """A $everything page: hidden resources out, and out of the compartment's total (the
        directory resources it cites are judged by their own labels)."""
        if self.rules is None:
            return found
        hidden = sum(
            1 for key in self.hidden
            if key[0] in types and self.where[key][0] == patient_id
            and (since is None or self.where[key][1] >= since)
        )  # fmt: skip
        return replace(
            found,  # type: ignore[type-var]
            versions=self.keep(getattr(found, "versions")),  # noqa: B009
            included=self.keep(getattr(found, "included")),  # noqa: B009
            total=max(0, int(getattr(found, "total")) - hidden),  # noqa: B009
        )


def _statement(one: bool, by_patient: bool) -> Select[Any]:
    """The labelled resources (of one resource, or of some types, in some compartments), with
    the labels that have a read rule: built once, bound per call."""
    t, r = search_tokens, resources
    query = (
        select(r.c.resource_type, r.c.resource_id, r.c.patient_id, r.c.last_updated,
               t.c.system, t.c.code)
        .select_from(t)
        .join(r, and_(r.c.tenant_id == t.c.tenant_id, r.c.resource_type == t.c.resource_type,
                      r.c.resource_id == t.c.resource_id))
        .where(
            t.c.tenant_id == bindparam("tenant_id"),
            t.c.param == literal_column("'_security'", String),
            t.c.code.in_(bindparam("codes", expanding=True)),
            r.c.deleted == false(),
        )
    )  # fmt: skip
    if one:
        return query.where(t.c.resource_type == bindparam("rtype"),
                           t.c.resource_id == bindparam("rid"))  # fmt: skip
    query = query.where(t.c.resource_type.in_(bindparam("types", expanding=True)))
    if by_patient:
        query = query.where(r.c.patient_id.in_(bindparam("patients", expanding=True)))
    return query


_ONE, _OF_TYPES, _OF_PATIENTS = (
    _statement(True, False),
    _statement(False, False),
    _statement(False, True),
)

_CACHE: weakref.WeakKeyDictionary[Connection, dict[Any, Screen]] = weakref.WeakKeyDictionary()
"""Screens per reader connection (gone with it): a search asks twice in one transaction."""


def _may_deny(rule: LabelRule, reach: Reach) -> bool:
    """Whether this label could hide anything from this actor (pure: the purposes they read
    under, per patient)."""
    purposes = {reach.subject.purpose, *reach.purposes.values()}
    if any(b is Basis.BREAK_GLASS for b in reach.bases.values()):
        purposes.add(Purpose.ETREAT)
    if rule.read_needs_care or purposes & rule.hidden_from:
        return True
    return rule.read_purposes is not None and bool(purposes - rule.read_purposes)


_NOT_CRITERIA = frozenset({"_count", "_page", "_sort", "_total", "_summary", "_elements"})


def _care(
    conn: Connection,
    reach: Reach,
    actor: Actor,
    labelled: Mapping[_BODY_KEY, set[str]],
    rules: Rules,
) -> frozenset[str]:
    """The patients a practitioner treats (care links, live grants), for labels needing care."""
    if actor.role is not Role.PRACTITIONER:
        return frozenset()
    care = {p for p, b in reach.bases.items() if b in (Basis.CARE_RELATIONSHIP, Basis.BREAK_GLASS)}
    needs_care = any(rules.by_code[c].read_needs_care for codes in labelled.values() for c in codes)
    facts = actor.workforce
    if needs_care and reach.tenant_wide and facts is not None and facts.practitioner_id:
        # Under the tenant-wide rule reach holds no care links: look them up, once, only when
        # a label that needs care is in play.
        key = {"tenant_id": actor.tenant_id, "practitioner_id": facts.practitioner_id}
        care |= {str(row.patient_id) for row in conn.execute(_CARE_TEAM, key)}
    return frozenset(care)
