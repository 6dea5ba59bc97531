"""Type history, Patient/$everything and $validate: parse the request, hand it to the gate.

Included before the generic router so `/fhir/{rtype}/_history` is not read as a resource id.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from carevault.audit.models import Action
from carevault.errors import Invalid
from carevault.privacy.everything import EverythingRequest, EverythingResult
from carevault.privacy.gate import ResourceView
from carevault.privacy.type_history import HistoryResult
from carevault.privacy.validation_service import ValidationIssue
from carevault.web.fhir_api import bundles
from carevault.web.fhir_api.deps import Records
from carevault.web.fhir_api.routes import base_url, checked, json_body, json_only, lenient
from carevault.web.outcome import FHIR_JSON

router = APIRouter(prefix="/fhir", dependencies=[Depends(json_only)])


def _one(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise Invalid(f"{name} may be given once")
    return values[0] if values else None


async def _query(request: Request, *names: str) -> dict[str, str | None]:
    """The named parameters (each at most once); any other is a 400 unless handling=lenient."""
    unknown = sorted({k for k in request.query_params if k not in names} - _ALWAYS_ALLOWED)
    if unknown and not lenient(request, list(request.query_params.multi_items())):
        raise Invalid(f"unsupported parameter(s): {', '.join(unknown)}")
    return {name: _one(request, name) for name in names}


_ALWAYS_ALLOWED = frozenset({"_format", "_pretty", "handling"})


@router.get("/{rtype}/_history")
async def history_type(request: Request, rtype: str, gate: Records) -> Response:
    q = await checked(gate, Action.HISTORY, rtype, (), _query(request, "_since", "_count", "_page"))
    result = await gate(
        lambda g: g.history_type(rtype, since=q["_since"], count=q["_count"], page=q["_page"])
    )
    return _history_bundle(base_url(request), rtype, result)


@router.get("/Patient/{pid}/$everything")
async def everything_get(request: Request, pid: str, gate: Records) -> Response:
    q = await checked(
        gate, Action.EVERYTHING, "Patient", (pid,), _query(request, *_EVERYTHING_PARAMS)
    )
    return await _everything(request, pid, gate, q)


@router.post("/Patient/{pid}/$everything")
async def everything_post(request: Request, pid: str, gate: Records) -> Response:
    q = await checked(gate, Action.EVERYTHING, "Patient", (pid,), _posted_everything(request))
    return await _everything(request, pid, gate, q)


@router.post("/{rtype}/$validate")
async def validate_type(request: Request, rtype: str, gate: Records) -> Response:
    return await _validate(request, rtype, None, gate)


@router.post("/{rtype}/{rid}/$validate")
async def validate_instance(request: Request, rtype: str, rid: str, gate: Records) -> Response:
    return await _validate(request, rtype, rid, gate)


# -- $everything ------------------------------------------------------------------

_EVERYTHING_PARAMS = ("_since", "_type", "_count", "_page")
_PART_VALUES = ("valueInstant", "valueDateTime", "valueString", "valueCode", "valueInteger")


async def _posted_everything(request: Request) -> dict[str, str | None]:
    """Query parameters, and a Parameters body (optional) with `_since`, `_type`, `_count`."""
    found = await _query(request, *_EVERYTHING_PARAMS)
    if not await request.body():
        return found
    body = await json_body(request)
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise Invalid("POST $everything takes a Parameters resource (or no body)")
    parts = body.get("parameter", [])
    if not isinstance(parts, list):
        raise Invalid("POST $everything takes a Parameters resource (or no body)")
    for part in parts:
        name = part.get("name") if isinstance(part, dict) else None
        if name not in ("_since", "_type", "_count"):
            raise Invalid("$everything takes the parameters _since, _type and _count")
        value = next((part[k] for k in _PART_VALUES if k in part), None)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise Invalid(f"the {name} parameter needs a value")
        found[name] = str(value)
    return found


async def _everything(
    request: Request, pid: str, gate: Records, q: dict[str, str | None]
) -> Response:
    ask = EverythingRequest(since=q["_since"], types=q["_type"], count=q["_count"], page=q["_page"])
    result = await gate(lambda g: g.everything(pid, ask))
    return _everything_bundle(base_url(request), result)


def _everything_bundle(base: str, result: EverythingResult) -> Response:
    here = f"{base}/Patient/{result.patient_id}/$everything"
    links = [{"relation": "self", "url": here}]
    if result.next_page:
        links.append(
            {"relation": "next", "url": f"{here}?{urlencode({'_page': result.next_page})}"}
        )
    entries = [_entry(base, v, "match") for v in result.resources]
    entries += [_entry(base, v, "include") for v in result.included]
    bundle = {
        "resourceType": "Bundle", "type": "searchset", "total": result.total, "link": links,
        "entry": entries,
    }  # fmt: skip
    return Response(orjson.dumps(bundle), media_type=FHIR_JSON)


def _entry(base: str, view: ResourceView, mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{view.resource_type}/{view.resource_id}",
        "resource": orjson.Fragment(view.body or b"{}"),
        "search": {"mode": mode},
    }


# -- type history -------------------------------------------------------------------


def _history_bundle(base: str, rtype: str, result: HistoryResult) -> Response:
    links = [{"relation": "self", "url": f"{base}/{rtype}/_history"}]
    if result.next_page:
        query = urlencode({"_page": result.next_page})
        links.append({"relation": "next", "url": f"{base}/{rtype}/_history?{query}"})
    return bundles.history(base, result.versions, total=result.total, links=links)


# -- $validate ----------------------------------------------------------------------


async def _validate(request: Request, rtype: str, rid: str | None, gate: Records) -> Response:
    # Audited with the type only, like the gate does: nothing was read or stored.
    payload = await checked(gate, Action.VALIDATE, rtype, (), _validate_body(request))
    mode = await checked(gate, Action.VALIDATE, rtype, (), _query(request, "mode"))
    issues = await gate(lambda g: g.validate(rtype, payload, rid=rid, mode=mode["mode"]))
    return Response(orjson.dumps(_outcome(issues)), media_type=FHIR_JSON)


async def _validate_body(request: Request) -> Any:
    if not await request.body():
        return None  # mode=delete needs no resource; the gate says so otherwise
    return await json_body(request)


def _outcome(issues: list[ValidationIssue]) -> dict[str, Any]:
    found: list[dict[str, Any]]
    if not issues:
        found = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    else:
        found = [
            {"severity": i.severity, "code": "invalid", "diagnostics": i.message}
            | ({"expression": [i.expression]} if i.expression else {})
            for i in issues
        ]
    return {"resourceType": "OperationOutcome", "issue": found}
