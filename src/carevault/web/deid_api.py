"""De-identified data for the tenant's privacy officer, over HTTP.

- `POST /fhir/$deid-aggregate`: counts and rates (small cells suppressed), answered at once.
- `POST /fhir/$deid-export` (`Prefer: respond-async`): a research extract, made as a job
  like Bulk Data `$export`: 202 with `Content-Location: /fhir/deid-status/<job>`; polling
  answers 202 with progress, then the manifest (files with counts and SHA-256, the report
  and the data dictionary), or 422 when the residual scan withheld the extract (its report
  stays downloadable); `DELETE` cancels; files are fetched once from `/fhir/deid-files/`.

Bodies are FHIR Parameters resources (`valueString` or `valueCode`), or a plain JSON object
of the same names. Refusals are OperationOutcomes, audited.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from carevault.audit.models import Action
from carevault.deid.aggregates import aggregate
from carevault.deid.fhir import extract_jobs
from carevault.deid.fhir.export import tenant_policy
from carevault.deid.fhir.extract_jobs import ExtractRequest, start_extract
from carevault.deid.report import REPORT_NAME
from carevault.errors import Forbidden, Invalid
from carevault.privacy.bulk_jobs import COMPLETED, FAILED, ExportFailed, JobFailed, JobView
from carevault.privacy.deid_release import REQUESTER_ROLES
from carevault.privacy.gate import Gate
from carevault.web.fhir_api.bulk_export import in_progress
from carevault.web.fhir_api.deps import Records, runtime
from carevault.web.fhir_api.routes import base_url, checked

router = APIRouter(prefix="/fhir")
EXTRACT_PARAMETERS = frozenset({"profile", "format", "project", "purpose", "style"})
KINDS = (extract_jobs.LEVEL,)
RETRY_AFTER_SECONDS = 5
EXTRA_FILES = {"report": "deidReport", "dictionary": "dataDictionary"}
"""Files of an extract beside its data, by their manifest name."""
MEDIA_TYPES = {".ndjson": "application/fhir+ndjson", ".parquet": "application/vnd.apache.parquet",
               ".json": "application/json"}  # fmt: skip


def _parameters(raw: bytes) -> dict[str, Any]:
    """The body's named values: a Parameters resource's, or a plain object's."""
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise Invalid("the body is not JSON") from None
    if not isinstance(body, dict):
        raise Invalid("the body is a Parameters resource")
    if body.get("resourceType") != "Parameters":
        return body
    values: dict[str, Any] = {}
    for p in body.get("parameter") or []:
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            values[p["name"]] = p.get("valueString", p.get("valueCode"))
    return values


def _aggregate_arguments(values: dict[str, Any]) -> tuple[list[str], str]:
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
            if gate.actor.role not in REQUESTER_ROLES:
                raise Forbidden("de-identified aggregates are released to the privacy officer")
            dims, purpose = _aggregate_arguments(_parameters(raw))
        except (Forbidden, Invalid) as exc:
            gate.audit_refusal(Action.EXPORT, "", (), exc, "de-identified aggregate")
            raise
        rt = request.app.state.runtime
        return aggregate(rt, tenant_policy(rt), gate.actor.tenant_id, dims, purpose,
                         requested_by=gate.actor)  # fmt: skip

    document = await records(run)
    return Response(orjson.dumps(document), media_type="application/json")


@router.post("/$deid-export")
async def deid_export(request: Request, records: Records) -> Response:
    extract = await checked(records, Action.EXPORT, "", (), _extract_request(request))
    rt = runtime(request)

    def run(gate: Gate) -> str:
        try:
            return start_extract(rt, gate.actor, extract, str(request.url))
        except (Forbidden, Invalid) as exc:
            gate.audit_refusal(Action.EXPORT, "", (), exc, "de-identified extract")
            raise

    job_id = await records(run)
    location = f"{base_url(request)}/deid-status/{job_id}"
    return Response(status_code=202, headers={"Content-Location": location})


@router.get("/deid-status/{job_id}")
async def extract_status(request: Request, job_id: str, records: Records) -> Response:
    exports = runtime(request).exports
    view = await records(lambda g: exports.status(g.actor, job_id, KINDS))
    base = base_url(request)
    if view.state == FAILED:
        if any(o.name == REPORT_NAME for o in view.output):
            raise JobFailed(f"{view.error} The report: {_file_url(base, view, REPORT_NAME)}")
        raise ExportFailed(view.error or "the extract failed")
    if view.state != COMPLETED:
        return in_progress(view, "patients de-identified", RETRY_AFTER_SECONDS)
    return Response(orjson.dumps(manifest(base, view)), media_type="application/json")


@router.delete("/deid-status/{job_id}")
async def cancel_extract(request: Request, job_id: str, records: Records) -> Response:
    exports = runtime(request).exports
    await records(lambda g: exports.cancel(g.actor, job_id, KINDS))
    return Response(status_code=202)


@router.get("/deid-files/{job_id}/{name}")
async def extract_file(request: Request, job_id: str, name: str, records: Records) -> Response:
    exports = runtime(request).exports
    chunks = await records(lambda g: exports.download(g.actor, job_id, name, KINDS))
    media_type = next((t for s, t in MEDIA_TYPES.items() if name.endswith(s)), "application/json")
    return StreamingResponse(chunks, media_type=media_type)


def manifest(base: str, view: JobView) -> dict[str, Any]:
    """Bulk Data's manifest shape: the data files in `output`; the report (which also holds
    every file's digest) and the data dictionary in `extension`."""
    data = [o for o in view.output if o.resource_type not in EXTRA_FILES]
    extra = {o.resource_type: _file_url(base, view, o.name) for o in view.output
             if o.resource_type in EXTRA_FILES}  # fmt: skip
    output = [
        {"type": o.resource_type, "url": _file_url(base, view, o.name), "count": o.count,
         "sha256": o.sha256}
        for o in data
    ]  # fmt: skip
    return {
        "transactionTime": view.transaction_time,
        "request": view.request_url,
        "requiresAccessToken": True,
        "output": output,
        "error": [],
        "extension": {name: extra.get(kind) for kind, name in EXTRA_FILES.items()},
    }


def _file_url(base: str, view: JobView, name: str) -> str:
    return f"{base}/deid-files/{view.job_id}/{name}"


async def _extract_request(request: Request) -> ExtractRequest:
    prefer = request.headers.get("prefer", "").replace(" ", "").lower().split(",")
    if "respond-async" not in prefer:
        raise Invalid("$deid-export runs asynchronously: send the header Prefer: respond-async")
    values = _parameters(await request.body())
    if set(values) - EXTRACT_PARAMETERS:
        # Not echoed: a name typed by the caller could carry anything.
        raise Invalid(f"$deid-export takes only {', '.join(sorted(EXTRACT_PARAMETERS))}")
    chosen = {name: values[name] for name in EXTRACT_PARAMETERS if values.get(name)}
    if not all(isinstance(v, str) for v in chosen.values()):
        raise Invalid("each parameter of $deid-export is a string")
    fmt = chosen.pop("format", "ndjson")
    return ExtractRequest(fmt=fmt, **chosen)
