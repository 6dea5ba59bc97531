"""The accounting of disclosures (45 CFR 164.528) and its suspensions.

    GET  /fhir/Patient/{id}/$accounting-of-disclosures           FHIR Bundle of AuditEvent
         ?_format=json                                           the plain JSON report
         ?_format=pdf                                            a printable PDF
    GET  /admin/accounting-suspensions                           the privacy officer's list
    POST /admin/accounting-suspensions                           file one (JSON body below)
    POST /admin/accounting-suspensions/{id}/end                  lift one now

A suspension's body: {"patient": id | null (every patient), "kind": "law-enforcement" |
"health-oversight", "agency_name": ..., "agency": "Organization/<id>" (optional: only
disclosures to it), "statement": the agency's statement, "statement_form": "written" | "oral",
"ends_at": ISO instant}. The FHIR route answers OperationOutcome; the admin routes
application/problem+json. The service (privacy/disclosure/accounting.py) decides and audits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from carevault.audit.models import RequestInfo
from carevault.errors import CareVaultError, Invalid, NotAcceptable, Unauthorized
from carevault.identity.models import Actor
from carevault.policy import PrivacyPolicy, load_profile
from carevault.privacy.disclosure.accounting import Accounting, Suspension
from carevault.privacy.disclosure.accounting_forms import to_fhir, to_json
from carevault.privacy.disclosure.accounting_pdf import to_pdf
from carevault.runtime import Runtime
from carevault.web.fhir_api.deps import request_info
from carevault.web.outcome import FHIR_JSON
from carevault.web.problem_calls import problem
from carevault.web.refusals import audit_anonymous_refusal, bearer_token

T = TypeVar("T")
router = APIRouter()
_FORMATS = {None: "fhir", "fhir": "fhir", FHIR_JSON: "fhir", "application/json+fhir": "fhir",
            "json": "json", "application/json": "json", "pdf": "pdf",
            "application/pdf": "pdf"}  # fmt: skip


def _policy(runtime: Runtime) -> PrivacyPolicy:
    """The deployment's policy (`runtime.policy`, from the disclosure path), or the default."""
    policy = getattr(runtime, "policy", None)
    return policy if isinstance(policy, PrivacyPolicy) else load_profile()


def _service(runtime: Runtime) -> Accounting:
    return Accounting(runtime.gate_services, lambda: _policy(runtime))


def _authenticate(request: Request, runtime: Runtime) -> Actor:
    token = bearer_token(request.headers.get("authorization"))
    try:
        return runtime.identity.authenticate(token)
    except Unauthorized as exc:
        audit_anonymous_refusal(
            runtime, token=token, status=401, reason=f"bearer token refused: {exc.message}",
            method=request.method, path=request.url.path, info=request_info(request),
        )  # fmt: skip
        raise


def _format(request: Request) -> str:
    unknown = set(request.query_params) - {"_format", "_pretty"}
    if unknown:
        raise Invalid(f"unsupported parameter(s): {', '.join(sorted(unknown))[:200]}")
    wanted = request.query_params.get("_format")
    key = None if wanted is None else wanted.split(";")[0].strip().lower()
    form = _FORMATS.get(key)
    if form is None:
        raise NotAcceptable("_format may be json, pdf or FHIR JSON")
    return form


@router.get("/fhir/Patient/{pid}/$accounting-of-disclosures")
async def accounting_of_disclosures(request: Request, pid: str) -> Response:
    runtime: Runtime = request.app.state.runtime
    who = request_info(request)
    try:
        form: str | CareVaultError = _format(request)
    except CareVaultError as exc:
        form = exc

    def run() -> Response:
        actor = _authenticate(request, runtime)
        service = _service(runtime)
        if isinstance(form, CareVaultError):  # bad input, audited now that we know who sent it
            service.audit_refusal(actor, who, form, "Disclosure", "accounting of disclosures")
            raise form
        report = service.report(actor, pid, who, form)
        if form == "pdf":
            disposition = 'attachment; filename="accounting-of-disclosures.pdf"'
            return Response(to_pdf(report, actor.tenant_id), media_type="application/pdf",
                            headers={"Content-Disposition": disposition})  # fmt: skip
        if form == "json":
            return Response(orjson.dumps(to_json(report)), media_type="application/json")
        return Response(orjson.dumps(to_fhir(report)), media_type=FHIR_JSON)

    return await run_in_threadpool(run)  # refusals: OperationOutcome (the app's handler)


# -- suspensions ---------------------------------------------------------------------------


def _suspension(s: Suspension) -> dict[str, Any]:
    return {
        "id": s.suspension_id, "patient": s.patient_id, "kind": s.kind.value,
        "agency": s.agency_ref, "agency_name": s.agency_name, "statement": s.statement,
        "statement_form": s.statement_form.value, "filed_at": s.filed_at, "filed_by": s.filed_by,
        "ends_at": s.ends_at, "ended_at": s.ended_at, "ended_by": s.ended_by,
    }  # fmt: skip


async def _admin(
    request: Request,
    operation: Callable[[Accounting, Actor, RequestInfo], T],
    shape: Callable[[T], Any],
    status: int = 200,
) -> Response:
    runtime: Runtime = request.app.state.runtime
    who = request_info(request)

    def run() -> T:
        return operation(_service(runtime), _authenticate(request, runtime), who)

    try:
        result = await run_in_threadpool(run)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    return Response(orjson.dumps(shape(result)), status, media_type="application/json")


@router.get("/admin/accounting-suspensions", include_in_schema=False)
async def list_suspensions(request: Request) -> Response:
    return await _admin(
        request,
        lambda svc, actor, who: svc.list_suspensions(actor, who),
        lambda found: {"suspensions": [_suspension(s) for s in found]},
    )


@router.post("/admin/accounting-suspensions", include_in_schema=False)
async def file_suspension(request: Request) -> Response:
    try:
        body: object = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None  # refused by the service after the permission check (a 403 comes first)
    return await _admin(
        request, lambda svc, actor, who: svc.file_suspension(actor, who, body), _suspension, 201
    )


@router.post("/admin/accounting-suspensions/{suspension_id}/end", include_in_schema=False)
async def end_suspension(request: Request, suspension_id: str) -> Response:
    return await _admin(
        request,
        lambda svc, actor, who: svc.end_suspension(actor, who, suspension_id),
        _suspension,
    )
