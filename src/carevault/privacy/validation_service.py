"""$validate behind the gate: decide write permission on the type, check, audit; store nothing.

The structural checks every write runs (fhir.resources, required bindings) and the strict
R4 4.0.1 checks (fhircraft) both run; every problem is listed, named by element, never by
value. The audit entry names the resource type only: nothing was read or stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carevault.audit.models import Action, Outcome
from carevault.errors import CareVaultError, Invalid, NotFound, Unprocessable
from carevault.privacy.gate_hooks import GateHooks
from carevault.records import bindings, strict_validation, validation

MODES = ("create", "update", "delete")


@dataclass(frozen=True)
class ValidationIssue:
    severity: str
    expression: str | None
    message: str


def validate_resource(
    gate: GateHooks, rtype: str, payload: Any, *, rid: str | None = None, mode: str | None = None
) -> list[ValidationIssue]:
    """The problems found (empty: the resource is valid for that mode). Input errors raise."""
    s = gate.services
    try:
        resource, mode = _unwrap(payload, mode)
        gate.decide(rtype, "delete" if mode == "delete" else "write")
        issues = _check(gate, rtype, resource, rid, mode)
    except CareVaultError as exc:
        gate.audit_refusal(Action.VALIDATE, rtype, (), exc, "$validate")
        raise
    detail = f"$validate mode={mode or 'none'}; {len(issues)} problem(s)"
    record = gate.record(Action.VALIDATE, rtype, Outcome.SUCCESS, 200, [], (), detail)
    s.audit.commit(s.committer, gate.actor.tenant_id, record)
    return issues


def _check(
    gate: GateHooks, rtype: str, resource: Any, rid: str | None, mode: str | None
) -> list[ValidationIssue]:
    if mode in ("update", "delete") and rid is None:
        raise Invalid(f"mode {mode} validates against an existing resource: name its id")
    if mode == "delete":
        with gate.services.reader.connect() as conn:
            found = gate.services.store.read(conn, gate.scope, rtype, rid or "")
            conn.rollback()
        if found is None or found.deleted:
            raise NotFound(f"{rtype}/{rid} is not known")
        return []
    try:
        validation.validate(rtype, resource)  # Invalid (not an object, wrong type) propagates
        structural: list[tuple[str, str]] = []
    except Unprocessable as exc:
        structural = exc.issues or [(rtype, exc.message)]
        structural += _unbound(rtype, resource)  # validate() stops before these
    issues = [ValidationIssue("error", where, text) for where, text in structural]
    seen = {(i.expression, i.message) for i in issues}
    for where, text in strict_validation.check(rtype, resource):
        if (where, text) not in seen:
            seen.add((where, text))
            issues.append(ValidationIssue("error", where, text))
    if mode == "update" and resource.get("id") != rid:
        issues.append(ValidationIssue("error", f"{rtype}.id", "must match the id in the URL"))
    return issues


def _unbound(rtype: str, resource: dict[str, Any]) -> list[tuple[str, str]]:
    """Codes outside a required value set, also when the structure is broken elsewhere."""
    try:
        return [(where, _UNBOUND) for where in bindings.violations(rtype, resource)]
    except TypeError:  # an unhashable "code" (a list, an object): the structure says so
        return []


_UNBOUND = "code is not in the required value set"


def _unwrap(payload: Any, mode: str | None) -> tuple[Any, str | None]:
    """A bare resource, or a Parameters with `resource` (and `mode`) parts."""
    if isinstance(payload, dict) and payload.get("resourceType") == "Parameters":
        parts = payload.get("parameter")
        if not isinstance(parts, list):
            raise Invalid("Parameters.parameter must be a list of parts")
        resource = None
        for part in parts:
            if not isinstance(part, dict):
                raise Invalid("each Parameters.parameter must be an object")
            if part.get("name") == "resource":
                resource = part.get("resource")
            elif part.get("name") == "mode":
                given = part.get("valueCode", part.get("valueString"))
                mode = given if isinstance(given, str) else ""
        payload = resource
    if mode is not None and mode not in MODES:
        raise Invalid("mode must be create, update or delete")
    if payload is None and mode != "delete":
        raise Invalid("send the resource to validate (or a Parameters with a resource part)")
    return payload, mode


def warm_up() -> None:
    """Have the strict-validation worker load its models now, on spare CPU, so the first
    $validate a user sends does not wait the half-minute fhircraft takes to import."""
    strict_validation.warm_up()


def stop_strict_validation() -> None:
    strict_validation.shutdown()
