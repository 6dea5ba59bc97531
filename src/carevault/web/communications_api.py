"""Global Privacy Control and breach notices over HTTP. No logic: messaging/ decides.

    any request with `Sec-GPC: 1` and a bearer token    recorded as the person's opt-out of
                                                        sale and sharing (policy permitting)
    GET  /account/privacy-choices                       {"sale_and_sharing_opt_out": bool,
                                                        "since": str | null,
                                                        "global_privacy_control": bool}
    POST /privacy/breaches {"patient_ids": [...]}       the privacy officer: a breach notice
                                                        to each affected patient's accounts

`install(app)` adds the router and the GPC middleware: one line in app.py.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from carevault.errors import CareVaultError, Unauthorized
from carevault.identity.models import Actor
from carevault.messaging.breach import BreachNotices
from carevault.messaging.gpc import PrivacyChoices, gpc_signal
from carevault.runtime import Runtime
from carevault.web.fhir_api.deps import request_info
from carevault.web.problem_calls import problem
from carevault.web.refusals import audit_anonymous_refusal, bearer_token

router = APIRouter()


def choices_of(runtime: Runtime) -> PrivacyChoices:
    return PrivacyChoices(runtime.reader, runtime.committer, runtime.audit, runtime.clock,
                          lambda: runtime.policy)  # fmt: skip


class GpcMiddleware:
    """Pure ASGI: a request without the signal passes untouched; one with it and a valid
    bearer token is recorded before it goes on (a bad token is the route's to refuse)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers") or []}  # fmt: skip
            token = bearer_token(headers.get("authorization"))
            if token is not None and gpc_signal(headers):
                runtime: Runtime = scope["app"].state.runtime
                await run_in_threadpool(_record, runtime, token)
        await self.app(scope, receive, send)


def _record(runtime: Runtime, token: str) -> None:
    try:
        actor = runtime.identity.authenticate(token)
    except CareVaultError:
        return
    choices_of(runtime).record_gpc(actor)


async def _signed_in(request: Request) -> Actor:
    runtime: Runtime = request.app.state.runtime
    token = bearer_token(request.headers.get("authorization"))

    def run() -> Actor:
        try:
            return runtime.identity.authenticate(token)
        except Unauthorized as exc:
            audit_anonymous_refusal(runtime, token=token, status=401,
                                    reason=f"bearer token refused: {exc.message}",
                                    method=request.method, path=request.url.path,
                                    info=request_info(request))  # fmt: skip
            raise

    return await run_in_threadpool(run)


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


@router.get("/account/privacy-choices")
async def read_choices(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        actor = await _signed_in(request)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    choices = choices_of(runtime)
    since = await run_in_threadpool(
        choices.sale_and_sharing_opt_out, actor.tenant_id, actor.user_id
    )
    return _json({"sale_and_sharing_opt_out": since is not None, "since": since,
                  "global_privacy_control": choices.honours_gpc()})  # fmt: skip


@router.post("/privacy/breaches")
async def breach_notices(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    try:
        actor = await _signed_in(request)
        ids = body.get("patient_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            ids = []  # the service refuses it, audited
        notices = BreachNotices(runtime.reader, runtime.committer, runtime.audit, runtime.clock)
        report = await run_in_threadpool(notices.notify, actor, ids)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    return _json(asdict(report), 201)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_middleware(GpcMiddleware)
