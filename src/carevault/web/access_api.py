"""Reach beyond one's own record, over HTTP (JSON; errors are problem+json, never a 500).

    POST /access/break-glass                  {patient, reason}      open a 60-minute grant
    GET  /privacy/break-glass[?all=true]                             the review report
    POST /privacy/break-glass/{id}/review     {note}                 mark a grant reviewed
    GET  /access/representations                                     the tenant's relationships
    POST /access/representations              {representative, patient, kind,
                                               document_reference?, document_digest?,
                                               expires_at?}          record one (unverified)
    POST /access/representations/{id}/verify  {method}               verify it
    POST /access/representations/{id}/revoke                         end it at once
    PUT  /access/users/{id}/practitioner      {practitioner|null}    link a workforce user
    PUT  /access/users/{id}/break-glass       {allowed}              name a break-glass user

Bodies are parsed here by hand so every refusal is a problem document; the services in
privacy/ decide, audit and answer ids, codes and instants only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from carevault.audit.models import RequestInfo
from carevault.errors import CareVaultError, Invalid, Unauthorized
from carevault.identity.models import Actor
from carevault.runtime import Runtime
from carevault.web.fhir_api.deps import request_info
from carevault.web.problem_calls import problem
from carevault.web.refusals import audit_anonymous_refusal, bearer_token

T = TypeVar("T")
MAX_BODY = 16 * 1024
router = APIRouter()


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise Invalid("the body is too large")
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise Invalid("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body


async def _body_or_refusal(request: Request) -> tuple[dict[str, Any], CareVaultError | None]:
    """The JSON body, or the refusal to raise once the caller is known (so it is audited)."""
    try:
        return await _body(request), None
    except CareVaultError as exc:
        return {}, exc


async def _call(
    request: Request,
    operation: Callable[[Runtime, Actor, RequestInfo], T],
    shape: Callable[[T], Any],
    status: int = 200,
    *,
    refused: CareVaultError | None = None,
    subject: str = "Representation",
) -> Response:
    """Authenticate, run the operation in a worker thread, map refusals to problem documents."""
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
        if refused is not None:  # bad input, audited now that we know who sent it
            runtime.break_glass.audit_refusal(actor, info, refused, subject, "malformed request")
            raise refused
        return operation(runtime, actor, info)

    try:
        result = await run_in_threadpool(run)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    return _json(shape(result), status) if status != 204 else Response(status_code=204)


# -- break-glass -------------------------------------------------------------------


@router.post("/access/break-glass")
async def open_break_glass(request: Request) -> Response:
    body, bad = await _body_or_refusal(request)
    return await _call(
        request,
        lambda rt, actor, who: rt.break_glass.open(
            actor, body.get("patient"), body.get("reason"), who
        ),
        asdict,
        201,
        refused=bad,
        subject="BreakGlassGrant",
    )


@router.get("/privacy/break-glass")
async def break_glass_report(request: Request) -> Response:
    unknown = set(request.query_params) - {"all"}
    bad = None
    if unknown or request.query_params.get("all", "false") not in ("true", "false"):
        bad = Invalid("the only parameter is all=true|false")
    everything = request.query_params.get("all") == "true"
    return await _call(
        request,
        lambda rt, actor, who: rt.break_glass.report(actor, who, include_reviewed=everything),
        lambda items: {"grants": [asdict(i) for i in items]},
        refused=bad,
        subject="BreakGlassGrant",
    )


@router.post("/privacy/break-glass/{grant_id}/review")
async def review_break_glass(request: Request, grant_id: str) -> Response:
    body, bad = await _body_or_refusal(request)
    return await _call(
        request,
        lambda rt, actor, who: rt.break_glass.review(actor, grant_id, body.get("note"), who),
        lambda _none: {"grant": grant_id, "reviewed": True},
        refused=bad,
        subject="BreakGlassGrant",
    )


# -- representatives ---------------------------------------------------------------


@router.get("/access/representations")
async def list_representations(request: Request) -> Response:
    return await _call(
        request,
        lambda rt, actor, who: rt.representations.list(actor, who),
        lambda found: {"representations": [asdict(r) for r in found]},
    )


@router.post("/access/representations")
async def record_representation(request: Request) -> Response:
    body: dict[str, Any] = {}
    bad: CareVaultError | None = None
    try:
        body = await _body(request)
        unknown = set(body) - {
            "representative", "patient", "kind", "document_reference", "document_digest",
            "expires_at",
        }  # fmt: skip
        if unknown:
            raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
    except CareVaultError as exc:
        bad = exc
    return await _call(
        request,
        lambda rt, actor, who: rt.representations.record(
            actor,
            who,
            representative_id=body.get("representative"),
            patient_id=body.get("patient"),
            kind=body.get("kind"),
            document_ref=body.get("document_reference"),
            document_digest=body.get("document_digest"),
            expires_at=body.get("expires_at"),
        ),
        asdict,
        201,
        refused=bad,
        subject="Representation",
    )


@router.post("/access/representations/{representation_id}/verify")
async def verify_representation(request: Request, representation_id: str) -> Response:
    body, bad = await _body_or_refusal(request)
    return await _call(
        request,
        lambda rt, actor, who: rt.representations.verify(
            actor, who, representation_id, body.get("method")
        ),
        asdict,
        refused=bad,
        subject="Representation",
    )


@router.post("/access/representations/{representation_id}/revoke")
async def revoke_representation(request: Request, representation_id: str) -> Response:
    return await _call(
        request,
        lambda rt, actor, who: rt.representations.revoke(actor, who, representation_id),
        asdict,
    )


# -- workforce links ---------------------------------------------------------------


@router.put("/access/users/{user_id}/practitioner")
async def link_practitioner(request: Request, user_id: str) -> Response:
    body: dict[str, Any] = {}
    bad: CareVaultError | None = None
    try:
        body = await _body(request)
        if "practitioner" not in body:
            raise Invalid("practitioner is required (a Practitioner id, or null to unlink)")
    except CareVaultError as exc:
        bad = exc
    return await _call(
        request,
        lambda rt, actor, who: rt.representations.link_practitioner(
            actor, who, user_id, body["practitioner"]
        ),
        lambda _none: {"user": user_id, "practitioner": body["practitioner"]},
        refused=bad,
        subject="User",
    )


@router.put("/access/users/{user_id}/break-glass")
async def name_break_glass_user(request: Request, user_id: str) -> Response:
    body, bad = await _body_or_refusal(request)
    return await _call(
        request,
        lambda rt, actor, who: rt.break_glass.name_user(actor, user_id, body.get("allowed"), who),
        lambda _none: {"user": user_id, "may_break_glass": body.get("allowed")},
        refused=bad,
        subject="User",
    )
