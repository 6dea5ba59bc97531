"""Audit entries as FHIR R4 `AuditEvent`s, following IHE Basic Audit Log Patterns (BALP).

- type: `rest` (audit-event-type) for RESTful interactions, with the FHIR interaction as
  subtype; DICOM 110106 Export / 110107 Import / 110114 User Authentication otherwise.
- action C/R/U/D/E, outcome 0 (success) / 4 (refused: minor failure) / 8 (server failure).
- agent: the user (requestor), their role, network address, purpose of use (v3-ActReason);
  a second agent for whom they acted, when there is one.
- source: the tenant's CareVault; entity: each patient (type 1 Person, role 1 Patient)
  and each resource (type 2 System Object, role 4 Domain Resource, `what` its reference).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from carevault.audit.models import Action, Outcome
from carevault.audit.reports import ReportFilter, instant
from carevault.clock import isoformat
from carevault.errors import Invalid

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SECURITY_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_SYSTEM = "urn:carevault:role"
USER_SYSTEM = "urn:carevault:user"
TENANT_SYSTEM = "urn:carevault:tenant"

_REST = {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
_TYPES: dict[Action, dict[str, str]] = {
    Action.EXPORT: {"system": DCM, "code": "110106", "display": "Export"},
    Action.IMPORT: {"system": DCM, "code": "110107", "display": "Import"},
    Action.LOGIN: {"system": DCM, "code": "110114", "display": "User Authentication"},
    Action.ADMIN: {"system": DCM, "code": "110100", "display": "Application Activity"},
}
_SUBTYPES: dict[Action, tuple[str, str, str]] = {
    Action.CREATE: (INTERACTION, "create", "create"),
    Action.READ: (INTERACTION, "read", "read"),
    Action.VREAD: (INTERACTION, "vread", "vread"),
    Action.UPDATE: (INTERACTION, "update", "update"),
    Action.DELETE: (INTERACTION, "delete", "delete"),
    Action.SEARCH: (INTERACTION, "search-type", "search-type"),
    Action.HISTORY: (INTERACTION, "history-instance", "history-instance"),
    Action.EVERYTHING: (INTERACTION, "operation", "operation"),
    Action.VALIDATE: (INTERACTION, "operation", "operation"),
    Action.LOGIN: (DCM, "110122", "Login"),
}
ACTION_CODE: dict[Action, str] = {
    Action.CREATE: "C",
    Action.IMPORT: "C",
    Action.READ: "R",
    Action.VREAD: "R",
    Action.HISTORY: "R",
    Action.EXPORT: "R",
    Action.UPDATE: "U",
    Action.ADMIN: "U",
    Action.DELETE: "D",
    Action.SEARCH: "E",
    Action.EVERYTHING: "E",
    Action.VALIDATE: "E",
    Action.LOGIN: "E",
}
OUTCOME_CODE: dict[Outcome, str] = {
    Outcome.SUCCESS: "0",
    Outcome.DENIED: "4",
    Outcome.INVALID: "4",
    Outcome.NOT_FOUND: "4",
    Outcome.FAILED: "8",
}


def _action(value: str) -> Action | None:
    try:
        return Action(value)
    except ValueError:  # an action added by a later issue: still shown, as Execute
        return None


def to_audit_event(row: Mapping[Any, Any]) -> dict[str, Any]:
    """One audit entry (a row of audit_entries) as an AuditEvent resource (a dict)."""
    action = _action(row["action"])
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row["seq"]),
        "meta": {"lastUpdated": row["recorded_at"]},
        "type": _TYPES.get(action, _REST) if action else _REST,
        "action": ACTION_CODE.get(action, "E") if action else "E",
        "recorded": row["recorded_at"],
        "outcome": OUTCOME_CODE.get(_outcome(row["outcome"]), "8"),
        "agent": _agents(row),
        "source": {
            "site": f"CareVault tenant {row['tenant_id']}",
            "observer": {
                "identifier": {"system": TENANT_SYSTEM, "value": row["tenant_id"]},
                "display": "CareVault",
            },
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    if action in _SUBTYPES:
        system, code, display = _SUBTYPES[action]
        event["subtype"] = [{"system": system, "code": code, "display": display}]
    if row["outcome"] != Outcome.SUCCESS.value:
        event["outcomeDesc"] = f"{row['outcome']} (HTTP {row['status']})"
    if row["purpose"]:
        event["purposeOfEvent"] = [_purpose(row["purpose"])]
    entities = _entities(row)
    if entities:
        event["entity"] = entities
    return event


def _outcome(value: str) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:
        return Outcome.FAILED


def _purpose(code: str) -> dict[str, Any]:
    return {"coding": [{"system": ACT_REASON, "code": code}]}


def _agents(row: Mapping[Any, Any]) -> list[dict[str, Any]]:
    system = row["actor_role"] == "system"
    agent: dict[str, Any] = {
        "type": {
            "coding": [{
                "system": SECURITY_ROLE,
                "code": "dataprocessor" if system else "humanuser",
                "display": "data processor" if system else "human user",
            }]
        },
        "role": [{"coding": [{"system": ROLE_SYSTEM, "code": row["actor_role"]}]}],
        "who": {"identifier": {"system": USER_SYSTEM, "value": row["actor_id"]}},
        "requestor": True,
    }  # fmt: skip
    if row["purpose"]:
        agent["purposeOfUse"] = [_purpose(row["purpose"])]
    if row["source_ip"]:
        agent["network"] = {"address": row["source_ip"], "type": "2"}
    agents = [agent]
    if row["on_behalf_of"]:
        agents.append({
            "type": {"coding": [{"system": PARTICIPATION, "code": "PRCP",
                                 "display": "primary information recipient"}]},
            "who": {"identifier": {"system": USER_SYSTEM, "value": row["on_behalf_of"]}},
            "requestor": False,
        })  # fmt: skip
    return agents


def _entities(row: Mapping[Any, Any], only_patients: frozenset[str] | None = None) -> list[Any]:
    patients = [p for p in orjson.loads(row["patient_ids"]) if only_patients is None
                or p in only_patients]  # fmt: skip
    out: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{p}"},
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
        }
        for p in patients
    ]
    rtype = row["resource_type"]
    if rtype and only_patients is None:
        for rid in orjson.loads(row["resource_ids"]):
            out.append({
                "what": {"reference": f"{rtype}/{rid}"},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            })  # fmt: skip
    elif rtype:
        out.append({"type": {"system": ENTITY_TYPE, "code": "2"}, "name": rtype})
    return out


def for_patient(row: Mapping[Any, Any], patients: frozenset[str]) -> dict[str, Any]:
    """The event as a patient may see it: their own patient entity, no other patient, no
    resource ids, no network address."""
    event = to_audit_event(row)
    for agent in event["agent"]:
        agent.pop("network", None)
    event["entity"] = _entities(row, patients)
    return event


# -- search parameters -------------------------------------------------------------

_BY_CODE: dict[str, tuple[Action, ...]] = {}
for _a, _c in ACTION_CODE.items():
    _BY_CODE[_c] = (*_BY_CODE.get(_c, ()), _a)
_OUTCOMES: dict[str, tuple[Outcome, ...]] = {}
for _o, _c in OUTCOME_CODE.items():
    _OUTCOMES[_c] = (*_OUTCOMES.get(_c, ()), _o)
SEARCH_PARAMS = frozenset({"patient", "agent", "date", "action", "outcome", "_count", "_cursor",
                           "_format"})  # fmt: skip


def parse_search(params: list[tuple[str, str]]) -> ReportFilter:
    """AuditEvent search parameters → a report filter; unknown parameters are refused."""
    values: dict[str, str] = {}
    since: str | None = None
    until: str | None = None
    for name, value in params:
        if name not in SEARCH_PARAMS:
            raise Invalid(f"unknown search parameter '{name}' for AuditEvent")
        if name == "date":
            since, until = _date(value, since, until)
        elif name in values:
            raise Invalid(f"'{name}' may be given once")
        else:
            values[name] = value
    actions: tuple[Action, ...] = ()
    for code in filter(None, values.get("action", "").split(",")):
        if code not in _BY_CODE:
            raise Invalid("action must be C, R, U, D or E")
        actions += _BY_CODE[code]
    outcomes: tuple[Outcome, ...] = ()
    for code in filter(None, values.get("outcome", "").split(",")):
        if code not in _OUTCOMES and code != "12":
            raise Invalid("outcome must be 0, 4, 8 or 12")
        outcomes += _OUTCOMES.get(code, ())
    base = ReportFilter.parse({k: v for k, v in (("patient", values.get("patient")),
                                                  ("user", values.get("agent"))) if v})  # fmt: skip
    if "12" in values.get("outcome", "").split(",") and not outcomes:
        # No entry of ours is a major failure (12): an empty time range finds nothing.
        since, until = "9999", "0000"
    return ReportFilter(base.patient_id, base.user_id, actions, outcomes, since, until)


_PREFIXES = ("ge", "gt", "le", "lt", "eq")


def _date(value: str, since: str | None, until: str | None) -> tuple[str | None, str | None]:
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    day = len(text) == 10
    start = instant(text, "date")
    after = (
        instant(text, "date", end_of_day=True)
        if day
        else isoformat(datetime.fromisoformat(start) + timedelta(microseconds=1))
    )
    if prefix == "ge":
        since = max(since or start, start)
    elif prefix == "gt":
        since = max(since or after, after)
    elif prefix == "lt":
        until = min(until or start, start)
    elif prefix == "le":
        until = min(until or after, after)
    else:
        since, until = max(since or start, start), min(until or after, after)
    return since, until
