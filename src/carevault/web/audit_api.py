"""The audit over HTTP: reports (privacy officer), AuditEvent (FHIR, read-only), and the
patient's own access log.

    GET /audit/report[.csv|.pdf]?patient=&user=&action=&outcome=&since=&until=&count=&before=
    GET /fhir/AuditEvent?patient=&agent=&date=&action=&outcome=&_count=&_cursor=
    GET /fhir/AuditEvent/{id}                 any other method: 405 OperationOutcome
    GET /patient/access-log?patient=&count=&before=

Report and access-log errors are problem+json; AuditEvent errors are OperationOutcomes.
Query parameters are parsed by hand so that bad input is a 4xx, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from carevault.audit.access_log import AccessLog, AccessLogPage
from carevault.audit.audit_event import for_patient, parse_search, to_audit_event
from carevault.audit.models import Outcome, RequestInfo, audit_entries
from carevault.audit.pdf import to_pdf
from carevault.audit.reports import AuditReports, ReportFilter, to_csv
from carevault.errors import CareVaultError, Invalid, NotFound, Unauthorized
from carevault.identity.models import Actor
from carevault.identity.permissions import COMPARTMENT_ROLES, Permission
from carevault.runtime import Runtime
from carevault.web.fhir_api.deps import request_info
from carevault.web.outcome import FHIR_JSON, outcome
from carevault.web.practitioner_names import practitioner_names
from carevault.web.problem_calls import problem
from carevault.web.refusals import audit_anonymous_refusal, bearer_token

T = TypeVar("T")
router = APIRouter()
_REPORT_PARAMS = {"patient", "user", "action", "outcome", "since", "until", "count", "before"}
_LOG_PARAMS = {"patient", "count", "before"}


class Services:
    def __init__(self, rt: Runtime) -> None:
        self.runtime = rt
        self.reports = AuditReports(rt.reader, rt.committer, rt.audit, rt.clock)
        self.access_log = AccessLog(rt.reader, rt.committer, rt.audit, rt.clock)


async def _call(request: Request, operation: Callable[[Services, Actor, RequestInfo], T]) -> T:
    runtime: Runtime = request.app.state.runtime
    info = request_info(request)

    def run() -> T:
        token = bearer_token(request.headers.get("authorization"))
        try:
            actor = runtime.identity.authenticate(token)
        except Unauthorized as exc:
            audit_anonymous_refusal(
                runtime, token=token, status=401, reason=f"bearer token refused: {exc.message}",
                method=request.method, path=request.url.path, info=info,
            )  # fmt: skip
            raise
        return operation(Services(runtime), actor, info)

    return await run_in_threadpool(run)


def _int(text: str | None, name: str, default: int | None) -> int | None:
    if text is None or text == "":
        return default
    if not text.isdigit() or len(text) > 18:
        raise Invalid(f"{name} must be a positive whole number")
    return int(text)


def _only(request: Request, allowed: set[str]) -> dict[str, str]:
    unknown = set(request.query_params) - allowed
    if unknown:
        raise Invalid(f"unknown parameter(s): {', '.join(sorted(unknown))[:200]}")
    return dict(request.query_params)


# -- reports -------------------------------------------------------------------------


def _entry(row: Any) -> dict[str, Any]:
    skip = ("prev_hash", "user_agent")
    out = {str(c.name): row[c.name] for c in audit_entries.columns if c.name not in skip}
    out["resource_ids"] = orjson.loads(row["resource_ids"])
    out["patient_ids"] = orjson.loads(row["patient_ids"])
    return out


@router.get("/audit/report")
async def report(request: Request) -> Response:
    try:
        params = _only(request, _REPORT_PARAMS)
        flt = ReportFilter.parse(params)
        count = _int(params.get("count"), "count", 50) or 0
        before = _int(params.get("before"), "before", None)
        page = await _call(request, lambda s, a, i: s.reports.page(a, i, flt, count, before))
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    body: dict[str, Any] = {
        "generated_at": page.generated_at,
        "filters": flt.describe(),
        "entries": [_entry(r) for r in page.entries],
    }
    if page.next_before is not None:
        query = {**params, "before": str(page.next_before)}
        body["next"] = f"{request.url.path}?{urlencode(query)}"
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/audit/report.{kind}")
async def report_file(request: Request, kind: str) -> Response:
    if kind not in ("csv", "pdf"):
        return problem(404, "NotFound", "reports are served as .csv or .pdf")
    try:
        flt = ReportFilter.parse(_only(request, _REPORT_PARAMS - {"count", "before"}))

        def export(s: Services, a: Actor, i: RequestInfo) -> bytes:
            page = s.reports.export(a, i, flt, kind)
            if kind == "csv":
                return to_csv(page)
            return to_pdf(page, a.tenant_id)

        data = await _call(request, export)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    media = "text/csv; charset=utf-8" if kind == "csv" else "application/pdf"
    disposition = f'attachment; filename="audit-report.{kind}"'
    return Response(data, media_type=media, headers={"Content-Disposition": disposition})


# -- the patient's access log -------------------------------------------------------


ACCESS_LOG_NAMES = "patient access log: practitioner names"
"""The system actor reading the names of the practitioners a patient's access log shows."""


@router.get("/patient/access-log")
async def access_log(request: Request) -> Response:
    try:
        params = _only(request, _LOG_PARAMS)
        count = _int(params.get("count"), "count", 20) or 0
        before = _int(params.get("before"), "before", None)

        def run(s: Services, a: Actor, i: RequestInfo) -> AccessLogPage:
            names = practitioner_names(s.runtime, a.tenant_id, ACCESS_LOG_NAMES)
            return s.access_log.page(a, i, params.get("patient"), count, before, names)

        page = await _call(request, run)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    body: dict[str, Any] = {"entries": page.items}
    if page.next_before is not None:
        body["next"] = f"{request.url.path}?{urlencode({**params, 'before': page.next_before})}"
    return Response(orjson.dumps(body), media_type="application/json")


# -- AuditEvent ----------------------------------------------------------------------


def _search(request: Request) -> Callable[[Services, Actor, RequestInfo], dict[str, Any]]:
    params = list(request.query_params.multi_items())
    flt = parse_search(params)
    values = dict(params)
    count = _int(values.get("_count"), "_count", 20) or 0
    before = _int(values.get("_cursor"), "_cursor", None)
    base = str(request.base_url).rstrip("/") + "/fhir/AuditEvent"

    def run(s: Services, actor: Actor, info: RequestInfo) -> dict[str, Any]:
        if actor.role in COMPARTMENT_ROLES:
            # Patients see their own events only, cut to what concerns them.
            patients = s.access_log.patients_for(actor, info, flt.patient_id)
            rows, more = s.access_log.rows(actor, info, patients, flt, count, before,
                                           what="AuditEvent search (own)")  # fmt: skip
            resources = [for_patient(r, patients) for r in rows]
        else:
            page = s.reports.page(actor, info, flt, count, before)
            rows, more = page.entries, page.next_before
            resources = [to_audit_event(r) for r in rows]
        links = [{"relation": "self", "url": f"{base}?{urlencode(params)}"}]
        if more is not None:
            rest = [(k, v) for k, v in params if k != "_cursor"] + [("_cursor", str(more))]
            links.append({"relation": "next", "url": f"{base}?{urlencode(rest)}"})
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": links,
            "entry": [
                {"fullUrl": f"{base}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in resources
            ],
        }

    return run


def _fhir(value: dict[str, Any]) -> Response:
    return Response(orjson.dumps(value), media_type=FHIR_JSON)


@router.get("/fhir/AuditEvent")
async def search_audit_events(request: Request) -> Response:
    try:
        return _fhir(await _call(request, _search(request)))
    except CareVaultError as exc:
        return outcome(exc.status, exc.code, exc.message, exc.issues)


@router.get("/fhir/AuditEvent/{event_id}")
async def read_audit_event(request: Request, event_id: str) -> Response:
    def run(s: Services, actor: Actor, info: RequestInfo) -> dict[str, Any]:
        s.reports.require(actor, info, Permission.AUDIT_LOG_READ, "AuditEvent read")
        row = None
        if event_id.isdigit() and len(event_id) < 19:
            with s.runtime.reader.connect() as conn:
                row = (
                    conn.execute(
                        audit_entries.select().where(
                            audit_entries.c.tenant_id == actor.tenant_id,
                            audit_entries.c.seq == int(event_id),
                        )
                    )
                    .mappings()
                    .one_or_none()
                )
        if row is None:
            s.reports.refuse(actor, info, Outcome.NOT_FOUND, 404, "AuditEvent read: no such entry")
            raise NotFound(f"AuditEvent/{event_id[:20]} is not known")
        s.reports.record(actor, info, Outcome.SUCCESS, 200, (event_id,), (), "AuditEvent read")
        return to_audit_event(row)

    try:
        return _fhir(await _call(request, run))
    except CareVaultError as exc:
        return outcome(exc.status, exc.code, exc.message, exc.issues)


@router.api_route(
    "/fhir/AuditEvent", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
@router.api_route(
    "/fhir/AuditEvent/{event_id}",
    methods=["POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def audit_event_is_read_only(request: Request) -> Response:
    return outcome(405, "not-supported", "AuditEvent is read-only: the audit is never edited")
