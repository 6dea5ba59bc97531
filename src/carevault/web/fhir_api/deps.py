"""Dependencies: who is asking (bearer token → Actor) and the gate they go through."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import Unauthorized
from carevault.identity.models import Actor
from carevault.privacy.gate import Gate, RequestInfo
from carevault.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def request_info(request: Request) -> RequestInfo:
    client = request.client.host if request.client else None
    return RequestInfo(
        request_id=request.state.request_id,
        source_ip=client,
        user_agent=request.headers.get("user-agent"),
    )


async def current_actor(request: Request) -> Actor:
    rt = runtime(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    try:
        return await run_in_threadpool(rt.identity.authenticate, token or None)
    except Unauthorized as exc:
        info = request_info(request)
        record = AuditRecord(
            recorded_at=isoformat(rt.clock.now()),
            actor_id="anonymous",
            actor_role="none",
            action=Action.LOGIN,
            outcome=Outcome.DENIED,
            status=401,
            request_id=info.request_id,
            source_ip=info.source_ip,
            user_agent=info.user_agent,
            detail=f"bearer token refused: {exc.message}; {request.method} {request.url.path}",
        )
        tenant = await run_in_threadpool(rt.identity.tenant_of_token, token or None)
        await run_in_threadpool(rt.identity.audit_refusal, tenant, record)
        raise


async def gate(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Gate:
    return runtime(request).gate(actor, request_info(request))


Records = Annotated[Gate, Depends(gate)]
