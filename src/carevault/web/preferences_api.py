"""Communication preferences: the one-click unsubscribe link and the patient's settings.

    GET|POST /unsubscribe?token=...     one click, no sign-in (RFC 8058 allows the POST)
    GET      /patient/preferences       {"marketing": bool, "service": true}
    POST     /patient/preferences       {"marketing": false} (service messages stay on)

The token is ids and an HMAC tag, not PHI; access logs drop query strings anyway. A forged
token is 403, a malformed one 400, and neither changes anything. Errors are problem+json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from carevault.errors import CareVaultError, Invalid
from carevault.identity.models import Actor
from carevault.messaging.preferences import Preferences
from carevault.runtime import Runtime
from carevault.web.problem_calls import problem, signed_in_call

T = TypeVar("T")
router = APIRouter()
_DONE = (
    "<!doctype html><title>Unsubscribed</title><h1>You are unsubscribed</h1>"
    "<p>We will send you no more marketing email. Messages about your account and your "
    "record are not marketing and keep coming.</p>"
)


def preferences_of(runtime: Runtime) -> Preferences:
    return Preferences(
        runtime.reader, runtime.committer, runtime.vault, runtime.clock, runtime.audit
    )


async def _unsubscribe(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    token = request.query_params.get("token", "")
    try:
        if not token or set(request.query_params) != {"token"}:
            raise Invalid("the unsubscribe link must carry exactly one token")
        await run_in_threadpool(preferences_of(runtime).unsubscribe, token)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    return HTMLResponse(_DONE)


router.add_api_route("/unsubscribe", _unsubscribe, methods=["GET", "POST"], include_in_schema=False)


async def _signed_in(
    request: Request, operation: Callable[[Preferences, Actor], T]
) -> T | Response:
    return await signed_in_call(
        request, lambda runtime, actor: operation(preferences_of(runtime), actor)
    )


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), 200, media_type="application/json")


@router.get("/patient/preferences")
async def read_preferences(request: Request) -> Response:
    found = await _signed_in(request, lambda prefs, actor: prefs.view(actor))
    return found if isinstance(found, Response) else _json(asdict(found))


@router.post("/patient/preferences")
async def set_preferences(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    if (
        not isinstance(body, dict)
        or set(body) - {"marketing", "service"}
        or any(not isinstance(v, bool) for v in body.values())
    ):
        return problem(400, "Invalid", 'send {"marketing": true|false} (and "service": true)')
    marketing, service = body.get("marketing"), body.get("service")
    done = await _signed_in(
        request, lambda prefs, actor: prefs.update(actor, marketing=marketing, service=service)
    )
    return done if isinstance(done, Response) else _json(asdict(done))
