"""POST /fhir: batch and transaction Bundles, handed whole to the gate."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from carevault.audit.models import Action
from carevault.errors import CareVaultError, Invalid
from carevault.privacy.bundle_processing import BundleResponse, EntryResult
from carevault.web.fhir_api.deps import Records
from carevault.web.fhir_api.routes import base_url, checked, json_body, json_only
from carevault.web.outcome import FHIR_JSON

router = APIRouter(prefix="/fhir", dependencies=[Depends(json_only)])


async def _bundle_kind(body: Any) -> str:
    kind = body.get("type") if isinstance(body, dict) else None
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise Invalid("POST /fhir takes a Bundle of type batch or transaction")
    if kind not in ("batch", "transaction"):
        raise Invalid("POST /fhir takes a Bundle of type batch or transaction")
    return str(kind)


@router.post("")
async def process_bundle(request: Request, gate: Records) -> Response:
    body = await checked(gate, Action.CREATE, "Bundle", (), json_body(request))
    kind = await checked(gate, Action.CREATE, "Bundle", (), _bundle_kind(body))
    limit = request.app.state.runtime.settings.bundle_max_entries
    if kind == "transaction":
        answer = await gate(lambda g: g.transaction(body, max_entries=limit))
    else:
        answer = await gate(lambda g: g.batch(body, max_entries=limit))
    minimal = "return=minimal" in request.headers.get("prefer", "").replace(" ", "").lower()
    return Response(orjson.dumps(_bundle(base_url(request), answer, minimal)), media_type=FHIR_JSON)


def _bundle(base: str, answer: BundleResponse, minimal: bool) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": answer.kind,
        "entry": [_entry(base, result, minimal) for result in answer.entries],
    }


def _entry(base: str, result: EntryResult, minimal: bool) -> dict[str, Any]:
    response: dict[str, Any] = {"status": _status(result.status)}
    entry: dict[str, Any] = {"response": response}
    if result.error is not None:
        response["outcome"] = _outcome(result.error)
        return entry
    view = result.version
    if view is not None:
        url = f"{view.resource_type}/{view.resource_id}"
        entry["fullUrl"] = f"{base}/{url}"
        if result.status in (200, 201):
            response["location"] = f"{url}/_history/{view.version_id}"
        response["etag"] = f'W/"{view.version_id}"'
        response["lastModified"] = view.last_updated
        if view.body is not None and not minimal:
            entry["resource"] = orjson.Fragment(view.body)
    elif result.matches is not None and not minimal:
        entry["resource"] = _searchset(base, result)
    return entry


def _searchset(base: str, result: EntryResult) -> dict[str, Any]:
    """A search entry's first page, its includes after its matches."""
    found = [(v, "match") for v in result.matches or []]
    found += [(v, "include") for v in result.included]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["entry"] = [
        {
            "fullUrl": f"{base}/{v.resource_type}/{v.resource_id}",
            "resource": orjson.Fragment(v.body or b"{}"),
            "search": {"mode": mode},
        }
        for v, mode in found
    ]
    return bundle


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _outcome(error: CareVaultError) -> dict[str, Any]:
    issues: list[dict[str, Any]] = [
        {"severity": "error", "code": error.code, "diagnostics": error.message}
    ]
    issues += [
        {"severity": "error", "code": error.code, "diagnostics": text, "expression": [where]}
        for where, text in error.issues
    ]
    return {"resourceType": "OperationOutcome", "issue": issues}
