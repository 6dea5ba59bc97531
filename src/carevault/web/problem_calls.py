"""The JSON routes' one way to run a service call: authenticate the bearer token (a refused
token is audited as an anonymous 401), run the call in a worker thread, and answer a refusal
as an application/problem+json document."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from carevault.errors import CareVaultError, Unauthorized
from carevault.identity.models import Actor
from carevault.runtime import Runtime
from carevault.web.fhir_api.deps import request_info
from carevault.web.refusals import audit_anonymous_refusal, bearer_token

T = TypeVar("T")
PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """An application/problem+json answer (RFC 9457); a 401 names the Bearer scheme."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="carevault"'}
    return Response(orjson.dumps(body), status, media_type=PROBLEM_JSON, headers=headers)


def authenticated(runtime: Runtime, request: Request) -> Actor:
    """The token's actor; a refused token is audited (in a worker thread: it writes)."""
    token = bearer_token(request.headers.get("authorization"))
    try:
        return runtime.identity.authenticate(token)
    except Unauthorized as exc:
        audit_anonymous_refusal(
            runtime,
            token=token,
            status=401,
            reason=f"bearer token refused: {exc.message}",
            method=request.method,
            path=request.url.path,
            info=request_info(request),
        )
        raise


async def problem_call(
    request: Request, operation: Callable[[Runtime, Actor | None], T], *, anonymous: bool = False
) -> T | Response:
    """Run `operation(runtime, actor)`; where `anonymous`, a request with no Authorization
    header runs with actor None (e.g. a CCPA request by someone without an account)."""
    runtime: Runtime = request.app.state.runtime

    def run() -> T:
        if anonymous and request.headers.get("authorization") is None:
            return operation(runtime, None)
        return operation(runtime, authenticated(runtime, request))

    try:
        return await run_in_threadpool(run)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)


async def signed_in_call(
    request: Request, operation: Callable[[Runtime, Actor], T]
) -> T | Response:
    """As problem_call, for routes that always need a signed-in actor."""

    def with_actor(runtime: Runtime, actor: Actor | None) -> T:
        assert actor is not None  # not anonymous: authenticated() returned or raised
        return operation(runtime, actor)

    return await problem_call(request, with_actor)
