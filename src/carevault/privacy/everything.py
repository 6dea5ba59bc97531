"""Patient/$everything behind the gate.

decide (Patient read; compartment types the actor may not read are left out) → scope in
SQL (a patient user reaches only their own compartment: anyone else's is 404) → decrypt →
minimum necessary → one durable audit entry naming the patient and every resource returned.
The page holds compartment resources (search mode "match") and the directory resources
they reference (mode "include").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from carevault.audit.models import Action, Outcome
from carevault.errors import CareVaultError, Gone, Invalid, NotFound
from carevault.fhir_types import CLINICAL_TYPES, DIRECTORY_TYPES
from carevault.identity.permissions import fhir_permission
from carevault.privacy.gate_hooks import GateHooks
from carevault.privacy.op_paging import open_state, seal_state
from carevault.privacy.type_history import page_size, parse_since
from carevault.records.compartment import CompartmentCursor, compartment_page, referenced
from carevault.records.params import SUPPORTED_TYPES
from carevault.records.store import Version

if TYPE_CHECKING:
    from carevault.privacy.gate import ResourceView

_KIND = "everything"


@dataclass(frozen=True)
class EverythingRequest:
    since: str | None = None
    types: str | None = None
    """`_type`: a comma-separated list of resource types."""
    count: str | None = None
    page: str | None = None


@dataclass(frozen=True)
class EverythingResult:
    patient_id: str
    resources: list[ResourceView]
    included: list[ResourceView]
    total: int
    next_page: str | None


@dataclass(frozen=True)
class _Found:
    versions: list[Version]
    included: list[Version]
    total: int
    next_cursor: CompartmentCursor | None


@dataclass(frozen=True)
class _Plan:
    since: str | None
    types: tuple[str, ...] | None
    count: int
    after: CompartmentCursor | None


def everything(gate: GateHooks, patient_id: str, request: EverythingRequest) -> EverythingResult:
    s = gate.services
    detail = "Patient/$everything"
    try:
        plan = _plan(gate, patient_id, request)
        gate.decide("Patient", "read")
        may_read = {t for t in SUPPORTED_TYPES if _may(gate, t)}
        wanted = may_read if plan.types is None else may_read & set(plan.types)
        compartment = [t for t in CLINICAL_TYPES if t in wanted]
        directory = [t for t in DIRECTORY_TYPES if t in wanted]
        with s.reader.connect() as conn:
            found = _work(gate, conn, patient_id, plan, compartment, directory)
            found = gate.screen(conn, compartment).everything(found, patient_id, compartment,
                                                              plan.since)  # fmt: skip
            conn.rollback()
    except CareVaultError as exc:
        gate.audit_refusal(Action.EVERYTHING, "Patient", (patient_id,), exc, detail)
        raise
    except Exception:
        gate.audit_refusal(Action.EVERYTHING, "Patient", (patient_id,), None, detail)
        raise
    returned = [*found.versions, *found.included]
    record = gate.record(Action.EVERYTHING, "Patient", Outcome.SUCCESS, 200, returned, (), detail)
    # Typed ids (the entry spans many types), and the patient named even on an empty page.
    ids = tuple(dict.fromkeys(f"{v.resource_type}/{v.resource_id}" for v in returned))
    record = replace(record, resource_ids=ids, patient_ids=(patient_id,))
    s.audit.commit(s.committer, gate.actor.tenant_id, record)
    next_page = None
    if found.next_cursor is not None:
        state = {
            "p": patient_id, "s": plan.since, "t": plan.types, "c": plan.count,
            "a": list(found.next_cursor),
        }  # fmt: skip
        next_page = seal_state(
            s.vault, gate.actor.tenant_id, gate.actor.user_id, _KIND, state, s.clock.now()
        )
    return EverythingResult(
        patient_id,
        [gate.minimum(v) for v in found.versions],
        [gate.minimum(v) for v in found.included],
        found.total,
        next_page,
    )


def _work(
    gate: GateHooks,
    conn: Connection,
    patient_id: str,
    plan: _Plan,
    compartment: list[str],
    directory: list[str],
) -> _Found:
    store, scope = gate.services.store, gate.scope
    patient = store.read(conn, scope, "Patient", patient_id)
    if patient is None:
        raise NotFound(f"Patient/{patient_id} is not known")
    if patient.deleted:
        raise Gone(f"Patient/{patient_id} was deleted")
    page = compartment_page(
        store,
        conn,
        scope,
        patient_id,
        compartment,
        since=plan.since,
        count=plan.count,
        after=plan.after,
    )
    included = []
    for rtype, rid in referenced(page.versions, directory):
        version = store.read(conn, scope, rtype, rid)
        if version is not None and not version.deleted:
            included.append(version)
    return _Found(page.versions, included, page.total, page.next_cursor)


def _plan(gate: GateHooks, patient_id: str, request: EverythingRequest) -> _Plan:
    if request.page is None:
        return _Plan(
            parse_since(request.since),
            _types(request.types),
            page_size(gate, request.count),
            None,
        )
    s = gate.services
    state = open_state(
        s.vault, gate.actor.tenant_id, gate.actor.user_id, _KIND, request.page, s.clock.now()
    )
    if state.get("p") != patient_id:
        raise Invalid("this paging link belongs to another patient's $everything")
    types: Any = state.get("t")
    after_type, after_id = state["a"]
    return _Plan(
        state.get("s"),
        tuple(types) if types is not None else None,
        int(state["c"]),
        (str(after_type), str(after_id)),
    )


def _types(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names or any(n not in SUPPORTED_TYPES for n in names):
        raise Invalid("_type must list resource types served here, separated by commas")
    return names


def _may(gate: GateHooks, rtype: str) -> bool:
    permission = fhir_permission(rtype, "read")
    return permission is not None and permission in gate.actor.permissions
