"""Dependencies: who is asking (bearer token → Actor) and the gate they go through."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from carevault.errors import Unauthorized
from carevault.identity.models import Actor
from carevault.privacy.gate import Gate, RequestInfo
from carevault.runtime import Runtime
from carevault.web.refusals import audit_anonymous_refusal, bearer_token


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
    token = bearer_token(request.headers.get("authorization"))
    try:
        return await run_in_threadpool(rt.identity.authenticate, token)
    except Unauthorized as exc:
        await run_in_threadpool(
            partial(
                audit_anonymous_refusal,
                rt,
                token=token,
                status=401,
                reason=f"bearer token refused: {exc.message}",
                method=request.method,
                path=request.url.path,
                info=request_info(request),
            )
        )
        raise


async def gate(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Gate:
    return runtime(request).gate(actor, request_info(request))


Records = Annotated[Gate, Depends(gate)]
