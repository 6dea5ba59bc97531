"""`POST /fhir/$deid-aggregate`: a de-identified aggregate for the tenant's privacy officer.

Body: a FHIR Parameters resource (`by`: "condition,age_band,state", `purpose`: "research"),
or the same two fields as a plain JSON object. The answer is the aggregate document (small
cells suppressed), recorded as a release; refusals are OperationOutcomes, audited.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from carevault.audit.models import Action
from carevault.deid.aggregates import aggregate
from carevault.deid.fhir.export import tenant_policy
from carevault.errors import Forbidden, Invalid
from carevault.identity.permissions import Role
from carevault.privacy.gate import Gate
from carevault.web.fhir_api.deps import Records

router = APIRouter(prefix="/fhir")
ALLOWED_ROLES = frozenset({Role.PRIVACY_OFFICER})


def _arguments(body: Any) -> tuple[list[str], str]:
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        values = {p.get("name"): p.get("valueString") for p in body.get("parameter", [])
                  if isinstance(p, dict)}  # fmt: skip
    elif isinstance(body, dict):
        values = {"by": body.get("by"), "purpose": body.get("purpose", "research")}
    else:
        raise Invalid("the body is a Parameters resource naming `by` and `purpose`")
    by, purpose = values.get("by"), values.get("purpose") or "research"
    dims = by if isinstance(by, list) else str(by or "").split(",")
    if not isinstance(purpose, str):
        raise Invalid("`purpose` is a string, e.g. research")
    return [str(d).strip() for d in dims if str(d).strip()], purpose


@router.post("/$deid-aggregate")
async def deid_aggregate(request: Request, records: Records) -> Response:
    raw = await request.body()

    def run(gate: Gate) -> dict[str, Any]:
        try:
            if gate.actor.role not in ALLOWED_ROLES:
                raise Forbidden("de-identified aggregates are released to the privacy officer")
            try:
                body = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError:
                raise Invalid("the body is not JSON") from None
            dims, purpose = _arguments(body)
        except (Forbidden, Invalid) as exc:
            gate.audit_refusal(Action.EXPORT, "", (), exc, "de-identified aggregate")
            raise
        rt = request.app.state.runtime
        return aggregate(rt, tenant_policy(rt), gate.actor.tenant_id, dims, purpose,
                         requested_by=gate.actor)  # fmt: skip

    document = await records(run)
    return Response(orjson.dumps(document), media_type="application/json")
