"""Dependencies: who is asking (bearer token → Actor) and the gate they go through.

Authentication and the gate call run together in one worker thread (`GateCall`):
one hop from the event loop per request instead of two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from carevault.audit.models import RequestInfo
from carevault.errors import Unauthorized
from carevault.identity.models import Actor
from carevault.privacy.gate import Gate
from carevault.runtime import Runtime
from carevault.web.refusals import audit_anonymous_refusal, bearer_token

T = TypeVar("T")


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


@dataclass(frozen=True)
class GateCall:
    """Runs an operation on the caller's gate: authenticate, open the gate, operate."""

    runtime: Runtime
    token: str | None
    info: RequestInfo
    method: str
    path: str
    open_gate: Callable[[Actor, RequestInfo], Any]

    async def __call__(self, operation: Callable[[Gate], T]) -> T:
        return await run_in_threadpool(self._run, operation)

    def _run(self, operation: Callable[[Gate], T]) -> T:
        return operation(self.open_gate(self._actor(), self.info))

    def _actor(self) -> Actor:
        try:
            return self.runtime.identity.authenticate(self.token)
        except Unauthorized as exc:
            audit_anonymous_refusal(
                self.runtime,
                token=self.token,
                status=401,
                reason=f"bearer token refused: {exc.message}",
                method=self.method,
                path=self.path,
                info=self.info,
            )
            raise


async def gate(request: Request) -> GateCall:
    rt = runtime(request)
    return GateCall(
        runtime=rt,
        token=bearer_token(request.headers.get("authorization")),
        info=request_info(request),
        method=request.method,
        path=request.url.path,
        open_gate=rt.gate,
    )


Records = Annotated[GateCall, Depends(gate)]
