"""Disclosures, authorizations and the documents they rest on: parse, hand over, answer.

    POST /fhir/Patient/{id}/$disclose   Parameters → Bundle (collection) or OperationOutcome
    POST /fhir/Consent/{id}/$sign       Parameters {password, code} → the signed Consent
    POST /fhir/Consent/{id}/$revoke     → the revoked Consent
    POST /fhir/Consent/{id}/$expiry-event-occurred → the Consent, ended by its expiry event
    GET|POST /admin/business-associate-agreements
    GET|POST /admin/legal-orders · POST /admin/legal-orders/{id}/lift-gag   (problem+json)

$disclose parameters: information (valueReference, repeated) or a class — type (valueCode,
repeated), from / to (valueDate); recipient (valueReference), purpose, basis (valueCode),
authorization (valueReference Consent/id), order (valueString), requestCopy (valueString).
A refused basis is 403, an incomplete document 422, bad input 400; each refusal is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from carevault.audit.models import Action, RequestInfo
from carevault.errors import CareVaultError, Invalid, Unauthorized
from carevault.identity.models import Actor
from carevault.privacy.disclosure.gather import DisclosureRequest
from carevault.privacy.disclosure.service import DISCLOSE, Released
from carevault.runtime import Runtime
from carevault.web.auth_api import client_of, json_response, read_body, session_token
from carevault.web.fhir_api import bundles
from carevault.web.fhir_api.deps import Records, request_info
from carevault.web.fhir_api.routes import base_url, checked, json_body, json_only
from carevault.web.outcome import FHIR_JSON
from carevault.web.problem_calls import problem
from carevault.web.refusals import audit_anonymous_refusal

T = TypeVar("T")
router = APIRouter(include_in_schema=False)
fhir = APIRouter(prefix="/fhir", dependencies=[Depends(json_only)])
_VALUES = ("valueReference", "valueString", "valueCode", "valueDate", "valueUri", "valueDateTime")
_REPEATED = frozenset({"information", "type"})
_NAMES = frozenset({"information", "type", "from", "to", "recipient", "purpose", "basis",
                    "authorization", "order", "requestCopy", "password", "code"})  # fmt: skip


async def _parameters(request: Request, allowed: frozenset[str]) -> dict[str, list[str]]:
    """A Parameters body as name → values; names outside `allowed` are refused."""
    body = await json_body(request)
    parts = body.get("parameter") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or body.get("resourceType") != "Parameters"
        or not isinstance(parts, list)
    ):
        raise Invalid("send a Parameters resource")
    found: dict[str, list[str]] = {}
    for part in parts:
        name = part.get("name") if isinstance(part, dict) else None
        if name not in allowed:
            raise Invalid(f"unknown parameter; this operation takes: {', '.join(sorted(allowed))}")
        value = next((part[k] for k in _VALUES if k in part), None)
        if isinstance(value, dict):
            value = value.get("reference")
        if not isinstance(value, str) or not value or len(value) > 20_000:
            raise Invalid(f"the {name} parameter needs a value")
        found.setdefault(name, []).append(value)
        if len(found[name]) > 1 and name not in _REPEATED:
            raise Invalid(f"{name} may be given once")
    return found


def _one(p: dict[str, list[str]], name: str) -> str | None:
    return p.get(name, [None])[0]


def _consent_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith("Consent/"):
        raise Invalid("authorization must be a reference Consent/id")
    return value.split("/", 1)[1]


async def _disclosure(request: Request, pid: str) -> DisclosureRequest:
    p = await _parameters(request, _NAMES - {"password", "code"})
    for required in ("recipient", "purpose", "basis"):
        if required not in p:
            raise Invalid(f"the {required} parameter is required")
    return DisclosureRequest(
        patient_id=pid, recipient=p["recipient"][0], basis=p["basis"][0],
        purpose=p["purpose"][0], refs=tuple(p.get("information", [])),
        types=tuple(p.get("type", [])), date_from=_one(p, "from"), date_to=_one(p, "to"),
        authorization=_consent_id(_one(p, "authorization")), order=_one(p, "order"),
        request_copy=_one(p, "requestCopy"),
    )  # fmt: skip


@fhir.post("/Patient/{pid}/$disclose")
async def disclose(request: Request, pid: str, gate: Records) -> Response:
    req = await checked(gate, DISCLOSE, "Patient", (pid,), _disclosure(request, pid))
    rt: Runtime = request.app.state.runtime
    who = request_info(request)
    done = await gate(lambda g: rt.disclosures.service.disclose(g.actor, who, req))
    return _released(base_url(request), done)


def _released(base: str, done: Released) -> Response:
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/{ref}", "resource": orjson.Fragment(body)}
        for ref, body in done.resources
    ]
    issues = [{"severity": "information", "code": "informational",
               "diagnostics": f"disclosure {done.disclosure_id} on the basis {done.basis.value}; "
                              f"patient notice: {done.notice}"}]  # fmt: skip
    issues += [{"severity": "warning", "code": "suppressed", "diagnostics": why}
               for why in done.withheld]  # fmt: skip
    entries.append({"resource": {"resourceType": "OperationOutcome", "issue": issues}})
    bundle = {
        "resourceType": "Bundle", "type": "collection",
        "identifier": {"system": "urn:carevault:disclosure", "value": done.disclosure_id},
        "entry": entries,
    }  # fmt: skip
    return Response(orjson.dumps(bundle), media_type=FHIR_JSON)


@fhir.post("/Consent/{cid}/$sign")
async def sign(request: Request, cid: str, gate: Records) -> Response:
    p = await checked(gate, Action.UPDATE, "Consent", (cid,),
                      _parameters(request, frozenset({"password", "code"})))  # fmt: skip
    password, code = _one(p, "password"), _one(p, "code")
    if password is None or code is None:
        missing = Invalid("re-authenticate to sign: the password and code parameters")
        await gate(lambda g: g.audit_refusal(Action.UPDATE, "Consent", (cid,), missing))
        raise missing
    rt: Runtime = request.app.state.runtime
    who, client = request_info(request), client_of(request)

    def run(actor: Actor) -> Any:
        def step_up() -> None:
            rt.accounts.step_up(actor, password, code, client, reason="authorization signing")

        return rt.disclosures.authorizations.sign(actor, who, cid, step_up)

    view = await gate(lambda g: run(g.actor))
    return bundles.resource_response(base_url(request), view)


@fhir.post("/Consent/{cid}/$revoke")
async def revoke(request: Request, cid: str, gate: Records) -> Response:
    rt: Runtime = request.app.state.runtime
    who = request_info(request)
    view = await gate(lambda g: rt.disclosures.authorizations.revoke(g.actor, who, cid))
    return bundles.resource_response(base_url(request), view)


@fhir.post("/Consent/{cid}/$expiry-event-occurred")
async def expiry_event_occurred(request: Request, cid: str, gate: Records) -> Response:
    """The event an authorization expires on ("end of the study") has happened."""
    rt: Runtime = request.app.state.runtime
    who = request_info(request)
    authorizations = rt.disclosures.authorizations
    view = await gate(lambda g: authorizations.expiry_event_occurred(g.actor, who, cid))
    return bundles.resource_response(base_url(request), view)


# -- admin: BAAs and legal orders (problem+json) ------------------------------------------


async def _admin(
    request: Request, operation: Callable[[Runtime, Actor, RequestInfo, dict[str, Any]], T],
    shape: Callable[[T], Any], status: int = 200, *, with_body: bool = False,
) -> Response:  # fmt: skip
    rt: Runtime = request.app.state.runtime
    who = request_info(request)
    bad: CareVaultError | None = None
    body: dict[str, Any] = {}
    if with_body:
        try:
            body = await read_body(request)
        except CareVaultError as exc:
            bad = exc

    def run() -> T:
        token = session_token(request)
        try:
            actor = rt.identity.authenticate(token)
        except Unauthorized as exc:
            audit_anonymous_refusal(
                rt, token=token, status=401, reason=f"admin API refused: {exc.message}",
                method=request.method, path=request.url.path, info=request_info(request),
            )  # fmt: skip
            raise
        if bad is not None:
            rt.disclosures.legal.audit_refusal(actor, who, bad, "LegalOrder", "malformed request")
            raise bad
        return operation(rt, actor, who, body)

    try:
        result = await run_in_threadpool(run)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    return json_response(shape(result), status)


def _order_view(order: Any) -> dict[str, Any]:
    view = asdict(order)
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in view.items()}


@router.get("/admin/business-associate-agreements")
async def list_baas(request: Request) -> Response:
    return await _admin(request, lambda rt, a, w, _b: rt.disclosures.legal.list_baas(a, w),
                        lambda found: {"agreements": [asdict(b) for b in found]})  # fmt: skip


@router.post("/admin/business-associate-agreements")
async def file_baa(request: Request) -> Response:
    return await _admin(request, lambda rt, a, w, b: rt.disclosures.legal.file_baa(a, w, b),
                        asdict, 201, with_body=True)  # fmt: skip


@router.get("/admin/legal-orders")
async def list_orders(request: Request) -> Response:
    return await _admin(request, lambda rt, a, w, _b: rt.disclosures.legal.list_orders(a, w),
                        lambda found: {"orders": [_order_view(o) for o in found]})  # fmt: skip


@router.post("/admin/legal-orders")
async def file_order(request: Request) -> Response:
    return await _admin(request, lambda rt, a, w, b: rt.disclosures.legal.file_order(a, w, b),
                        _order_view, 201, with_body=True)  # fmt: skip


@router.post("/admin/legal-orders/{order_id}/lift-gag")
async def lift_gag(request: Request, order_id: str) -> Response:
    return await _admin(
        request, lambda rt, a, w, _b: rt.disclosures.legal.lift_gag(a, w, order_id[:64]),
        _order_view,
    )  # fmt: skip


router.include_router(fhir)
