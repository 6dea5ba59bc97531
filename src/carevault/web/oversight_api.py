"""The privacy officer's API for snooping alerts and restricted patients (problem+json errors).

    GET    /privacy/alerts?state=&kind=&user=&date=   alerts, newest first
    GET    /privacy/alerts/{id}                        one alert and its audit entries
    POST   /privacy/alerts/{id}/close  {"note": ...}   close it with a note
    GET    /privacy/restricted                         patients flagged restricted
    PUT    /privacy/restricted/{patient_id} {"reason"} flag (staff, public-figure, other)
    DELETE /privacy/restricted/{patient_id}            unflag

Inputs are parsed here by hand so that every refusal is a problem document, never a 500;
the service decides, audits and answers ids, codes and times only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from carevault.errors import CareVaultError, Invalid
from carevault.identity.models import Actor
from carevault.privacy.oversight.service import AlertFilter, OversightService
from carevault.privacy.oversight_models import AlertKind, AlertState
from carevault.web.problem_calls import problem, signed_in_call

T = TypeVar("T")
router = APIRouter(prefix="/privacy")
_FILTERS = {"state", "kind", "user", "date"}


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


async def _call(
    request: Request, operation: Callable[[OversightService, Actor], T]
) -> T | Response:
    """Authenticate, run the operation in a worker thread, map refusals to problem documents."""
    return await signed_in_call(
        request, lambda runtime, actor: operation(runtime.oversight.service, actor)
    )


async def _field(request: Request, name: str) -> object:
    """One field of a JSON object body, or None: the service checks it after the permission,
    so a malformed request from someone without the permission is still a 403."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def _filter(request: Request) -> AlertFilter:
    query = request.query_params
    unknown = set(query) - _FILTERS
    if unknown:
        raise Invalid(f"unknown parameter(s): {', '.join(sorted(unknown))[:200]}")
    try:
        state = AlertState(query["state"]) if "state" in query else None
        kind = AlertKind(query["kind"]) if "kind" in query else None
    except ValueError:
        raise Invalid("state or kind is not one of the known values") from None
    return AlertFilter(state, kind, query.get("user"), query.get("date"))


def _result(value: T | Response, shape: Callable[[T], Any], status: int = 200) -> Response:
    return value if isinstance(value, Response) else _json(shape(value), status)


@router.get("/alerts")
async def list_alerts(request: Request) -> Response:
    try:
        where = _filter(request)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    found = await _call(request, lambda svc, actor: svc.list_alerts(actor, where))
    return _result(found, lambda alerts: {"alerts": [_alert(a) for a in alerts]})


@router.get("/alerts/{alert_id}")
async def read_alert(request: Request, alert_id: str) -> Response:
    found = await _call(request, lambda svc, actor: svc.alert(actor, alert_id))
    return _result(found, lambda alert: _alert(alert, detail=True))


@router.post("/alerts/{alert_id}/close")
async def close_alert(request: Request, alert_id: str) -> Response:
    note = await _field(request, "note")
    closed = await _call(request, lambda svc, actor: svc.close(actor, alert_id, note))
    return _result(closed, _alert)


@router.get("/restricted")
async def list_restricted(request: Request) -> Response:
    found = await _call(request, lambda svc, actor: svc.restricted(actor))
    return _result(found, lambda rows: {"restricted": [asdict(r) for r in rows]})


@router.put("/restricted/{patient_id}")
async def flag(request: Request, patient_id: str) -> Response:
    reason = await _field(request, "reason")
    done = await _call(request, lambda svc, actor: svc.flag(actor, patient_id, reason))
    return _result(done, asdict, 201)


@router.delete("/restricted/{patient_id}")
async def unflag(request: Request, patient_id: str) -> Response:
    done = await _call(request, lambda svc, actor: svc.unflag(actor, patient_id))
    return done if isinstance(done, Response) else Response(status_code=204)


def _alert(alert: Any, *, detail: bool = False) -> dict[str, Any]:
    shaped = asdict(alert)
    if not detail:  # listings and the close answer: the alert alone
        shaped.pop("entries")
        shaped.pop("note")
    return shaped
