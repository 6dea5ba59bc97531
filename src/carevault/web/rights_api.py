"""Rights requests over HTTP (application/problem+json errors). No logic: rights/ decides.

Patient-facing (a signed-in patient, representative or account holder; CCPA requests may
also come from someone not signed in, verified by data points, or, with no account at all,
by the token an email check sent to their address):
    POST /rights/email-checks                      {"email"}: a one-use token sent there
    POST /rights/requests                          open a case; the answer names the rulebook
    GET  /rights/requests/{id}                     the case, its deadline and written notices
    GET  /rights/requests/{id}?token=              the same, from the link a notice emailed
    GET  /rights/requests/{id}/copy?form=          the copy (bundle | pdf | json | note)
    GET  /rights/requests/{id}/copy?form=&token=   the same, by the emailed link
    POST /rights/requests/{id}/statements          a statement of disagreement {"statement"}
The privacy officer (the vendor's operators for CCPA cases):
    GET  /admin/rights/queue?due_before=DATE       open cases, soonest due first, late marked
    POST /admin/rights/requests/{id}/extend        {"reason"}: the one extension
    POST /admin/rights/requests/{id}/decide        {"decision": accept|deny, "basis", "reason"}
    POST /admin/rights/requests/{id}/fulfil        {"amended": [...]} | {"corrected": "..."} | {}
    POST /admin/rights/requests/{id}/rebuttal      {"statement"}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from carevault.audit.models import RequestInfo
from carevault.errors import CareVaultError, Invalid
from carevault.identity.models import Actor
from carevault.rights.statements import RightsService
from carevault.rights.wiring import rights_for
from carevault.web.fhir_api.deps import request_info
from carevault.web.problem_calls import problem, problem_call

T = TypeVar("T")
router = APIRouter()
_FORMS = {"bundle", "pdf", "json", "note"}


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


async def _body(request: Request) -> object:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid("the body must be JSON") from None


async def _call(
    request: Request,
    operation: Callable[[RightsService, Actor | None, RequestInfo], T],
    *,
    anonymous: bool = False,
) -> T | Response:
    """Authenticate (optional where `anonymous`), run in a worker thread, map refusals."""
    who = request_info(request)
    return await problem_call(
        request,
        lambda runtime, actor: operation(rights_for(runtime), actor, who),
        anonymous=anonymous,
    )


def _signed_in(actor: Actor | None) -> Actor:
    assert actor is not None  # _call authenticates unless the route is anonymous
    return actor


def _result(value: Any, status: int = 200) -> Response:
    return value if isinstance(value, Response) else _json(asdict(value), status)


@router.post("/rights/requests")
async def open_request(request: Request) -> Response:
    try:
        body = await _body(request)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    done = await _call(
        request, lambda svc, actor, who: svc.receive(actor, body, who), anonymous=True
    )
    if isinstance(done, Response):
        return done
    view, route = done
    return _json({"request": asdict(view), "route": asdict(route)}, 201)


@router.post("/rights/email-checks")
async def email_check(request: Request) -> Response:
    body = await _object(request)
    done = await _call(
        request, lambda svc, _actor, who: svc.send_email_check(body, who), anonymous=True
    )
    return done if isinstance(done, Response) else _json(done, 202)


@router.get("/rights/requests/{request_id}")
async def read_request(request: Request, request_id: str) -> Response:
    if set(request.query_params) - {"token"}:
        return problem(400, "Invalid", "the only parameter is token (from the emailed link)")
    token = request.query_params.get("token")
    if token is not None:  # no account: the link is the credential
        found = await _call(
            request, lambda svc, _a, who: svc.get_by_link(request_id, token, who), anonymous=True
        )
        return _result(found)
    found = await _call(request, lambda svc, a, who: svc.get(_signed_in(a), request_id, who))
    return _result(found)


@router.get("/rights/requests/{request_id}/copy")
async def download_copy(request: Request, request_id: str) -> Response:
    form = request.query_params.get("form", "bundle")
    if form not in _FORMS or set(request.query_params) - {"form", "token"}:
        return problem(400, "Invalid", f"form must be one of: {', '.join(sorted(_FORMS))}")
    token = request.query_params.get("token")
    if token is not None:
        found = await _call(
            request,
            lambda svc, _a, who: svc.copy_by_link(request_id, token, form, who),
            anonymous=True,
        )
    else:
        found = await _call(
            request, lambda svc, a, who: svc.copy(_signed_in(a), request_id, form, who)
        )
    if isinstance(found, Response):
        return found
    media, body = found
    return Response(body, 200, media_type=media, headers={"Cache-Control": "no-store"})


@router.post("/rights/requests/{request_id}/statements")
async def file_statement(request: Request, request_id: str) -> Response:
    text = await _field(request, "statement")
    done = await _call(
        request, lambda svc, a, who: svc.file_statement(_signed_in(a), request_id, text, who)
    )
    return _result(done, 201)


@router.get("/admin/rights/queue")
async def queue(request: Request) -> Response:
    if set(request.query_params) - {"due_before"}:
        return problem(400, "Invalid", "the only parameter is due_before")
    due = request.query_params.get("due_before")
    found = await _call(request, lambda svc, a, who: svc.queue(_signed_in(a), due, who))
    if isinstance(found, Response):
        return found
    return _json({"requests": [asdict(item) for item in found]})


@router.post("/admin/rights/requests/{request_id}/extend")
async def extend(request: Request, request_id: str) -> Response:
    reason = await _field(request, "reason")
    done = await _call(
        request, lambda svc, a, who: svc.extend(_signed_in(a), request_id, reason, who)
    )
    return _result(done)


@router.post("/admin/rights/requests/{request_id}/decide")
async def decide(request: Request, request_id: str) -> Response:
    body = await _object(request)
    done = await _call(
        request, lambda svc, a, who: svc.decide(_signed_in(a), request_id, body, who)
    )
    return _result(done)


@router.post("/admin/rights/requests/{request_id}/fulfil")
async def fulfil(request: Request, request_id: str) -> Response:
    body = await _object(request)
    done = await _call(
        request, lambda svc, a, who: svc.fulfil(_signed_in(a), request_id, body, who)
    )
    return _result(done)


@router.post("/admin/rights/requests/{request_id}/rebuttal")
async def rebut(request: Request, request_id: str) -> Response:
    text = await _field(request, "statement")
    done = await _call(request, lambda svc, a, who: svc.rebut(_signed_in(a), request_id, text, who))
    return _result(done, 201)


async def _object(request: Request) -> object:
    """The body, or None when it is not JSON: the service refuses it after the permission."""
    try:
        return await _body(request)
    except CareVaultError:
        return None


async def _field(request: Request, name: str) -> object:
    body = await _object(request)
    return body.get(name) if isinstance(body, dict) else None
