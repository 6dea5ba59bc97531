"""FHIR Bulk Data Access (v2) `$export`: kick-off, status polling, cancel and download.

https://hl7.org/fhir/uv/bulkdata/export.html. The work is in privacy/bulk_jobs.py; this
module parses requests and shapes answers. It is included before the generic FHIR
routes, whose `/fhir/{rtype}` and `/fhir/{rtype}/{rid}` would otherwise take these paths.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from carevault.audit.models import Action
from carevault.errors import Invalid
from carevault.privacy.bulk_jobs import COMPLETED, FAILED, ExportFailed, JobView, KickOff
from carevault.web.fhir_api.deps import Records, runtime
from carevault.web.fhir_api.routes import base_url, checked

router = APIRouter(prefix="/fhir")

NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
PARAMETERS = frozenset({"_type", "_since", "_outputFormat"})
RETRY_AFTER_SECONDS = 2


@router.get("/$export")
async def export_system(request: Request, gate: Records) -> Response:
    return await _kick_off(request, gate, "system")


@router.get("/Patient/$export")
async def export_patients(request: Request, gate: Records) -> Response:
    return await _kick_off(request, gate, "patient")


@router.get("/Group/{group_id}/$export")
async def export_group(request: Request, group_id: str, gate: Records) -> Response:
    return await _kick_off(request, gate, "group", group_id)


@router.get("/bulk-status/{job_id}")
async def status(request: Request, job_id: str, gate: Records) -> Response:
    exports = runtime(request).exports
    view = await gate(lambda g: exports.status(g.actor, job_id))
    if view.state == FAILED:
        raise ExportFailed(view.error or "the export failed")
    if view.state != COMPLETED:
        return in_progress(view, "resources exported", RETRY_AFTER_SECONDS)
    body = orjson.dumps(manifest(base_url(request), view))
    return Response(body, media_type="application/json")


@router.delete("/bulk-status/{job_id}")
async def cancel(request: Request, job_id: str, gate: Records) -> Response:
    exports = runtime(request).exports
    await gate(lambda g: exports.cancel(g.actor, job_id))
    return Response(status_code=202)


@router.get("/bulk-files/{job_id}/{name}")
async def download(request: Request, job_id: str, name: str, gate: Records) -> Response:
    exports = runtime(request).exports
    chunks = await gate(lambda g: exports.download(g.actor, job_id, name))
    return StreamingResponse(chunks, media_type=NDJSON)


def in_progress(view: JobView, counted: str, retry_after: int) -> Response:
    """202 for a job still queued or running: how far it is, and when to ask again."""
    headers = {"X-Progress": f"{view.state}: {view.progress} {counted}",
               "Retry-After": str(retry_after)}  # fmt: skip
    return Response(status_code=202, headers=headers)


def manifest(base: str, view: JobView) -> dict[str, Any]:
    return {
        "transactionTime": view.transaction_time,
        "request": view.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": o.resource_type,
                "url": f"{base}/bulk-files/{view.job_id}/{o.name}",
                "count": o.count,
            }
            for o in view.output
        ],
        "error": [],
    }


async def _kick_off(
    request: Request, gate: Records, level: str, group_id: str | None = None
) -> Response:
    rtype = {"system": "", "patient": "Patient", "group": "Group"}[level]
    ids = (group_id,) if group_id else ()
    kick = await checked(gate, Action.EXPORT, rtype, ids, _parse(request, level, group_id))
    exports = runtime(request).exports
    job_id = await gate(lambda g: exports.kick_off(g, kick, gate.info))
    location = f"{base_url(request)}/bulk-status/{job_id}"
    return Response(status_code=202, headers={"Content-Location": location})


async def _parse(request: Request, level: str, group_id: str | None) -> KickOff:
    prefer = request.headers.get("prefer", "").replace(" ", "").lower().split(",")
    if "respond-async" not in prefer:
        raise Invalid("$export runs asynchronously: send the header Prefer: respond-async")
    params = list(request.query_params.multi_items())
    if {name for name, _ in params} - PARAMETERS:
        # Not echoed: a parameter name typed by the caller could carry anything.
        raise Invalid("$export supports only the parameters _type, _since and _outputFormat")
    for name in PARAMETERS:
        if sum(1 for n, _ in params if n == name) > 1 and name != "_type":
            raise Invalid(f"{name} may be given once")
    values = dict(params)
    output_format = values.get("_outputFormat")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise Invalid("_outputFormat must be application/fhir+ndjson")
    types: list[str] = []
    for name, value in params:
        if name == "_type":
            types += [t.strip() for t in value.split(",")]
    if any(not t for t in types):
        raise Invalid("_type is a comma-separated list of resource types")
    since = values.get("_since")
    if since is not None and not since.strip():
        raise Invalid("_since must be a FHIR instant")
    return KickOff(
        level=level,
        request_url=str(request.url),
        types=tuple(types) if types else None,
        since=since,
        group_id=group_id,
    )
