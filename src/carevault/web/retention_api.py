"""Retention and deletion: the privacy officer's admin routes and the patient's own deletions.

    GET    /privacy/holds                          live legal holds
    POST   /privacy/holds {"patient_id"?, "reason"} file one (no patient_id: the whole tenant)
    POST   /privacy/holds/{hold_id}/lift           lift it
    POST   /privacy/deletions {"patient_id", "written_request", "verified_by",
                               "tenant_instruction": true}   permanent deletion → certificate
    GET    /privacy/soft-deletes                   what is hidden (ids only)
    POST   /privacy/soft-deletes {"patient_id"} | {"resource_type", "resource_id"}   hide
    POST   /privacy/soft-deletes/restore {"patient_id"} | {"resource_type", "resource_id"}
    GET    /privacy/retention/dry-run              what the next retention run would delete
    GET    /privacy/certificates                   ids, kinds, times
    GET    /privacy/certificates/{id}              the signed JSON;  /{id}/pdf  the PDF
    DELETE /patient/submissions/{type}/{id}        a patient deletes what they submitted
    POST   /patient/account/close                  a patient closes (inactivates) their account
    POST   /privacy/accounts/{user_id}/inactivate  the officer or account administrator does

The services decide, audit and refuse (holds, duties, roles); this module parses and maps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from carevault.errors import Invalid
from carevault.identity.models import Actor
from carevault.retention import certificates
from carevault.retention.job import RetentionJob
from carevault.retention.models import Certificate, DeletionRequest
from carevault.retention.service import Retention
from carevault.web.preferences_api import router as preferences_router
from carevault.web.problem_calls import signed_in_call

T = TypeVar("T")
router = APIRouter()
router.include_router(preferences_router)  # /unsubscribe, /patient/preferences: one app line


async def _call(request: Request, operation: Callable[[Retention, Actor], T]) -> T | Response:
    return await signed_in_call(
        request, lambda runtime, actor: operation(Retention.from_runtime(runtime), actor)
    )


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


def _out(value: T | Response, shape: Callable[[T], Any], status: int = 200) -> Response:
    return value if isinstance(value, Response) else _json(shape(value), status)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise Invalid(f"'{name}' must be a string")
    return value


def _cert(cert: Certificate) -> Any:
    return orjson.loads(certificates.to_json(cert))


@router.get("/privacy/holds")
async def list_holds(request: Request) -> Response:
    def op(r: Retention, actor: Actor) -> Any:
        r.authorize_officer(actor, "list legal holds")
        return r.holds.listed(actor)

    found = await _call(request, op)
    return _out(found, lambda holds: {"holds": [asdict(h) for h in holds]})


@router.post("/privacy/holds")
async def file_hold(request: Request) -> Response:
    body = await _body(request)
    patient = body.get("patient_id")

    def op(r: Retention, actor: Actor) -> Any:
        r.authorize_officer(actor, "file a legal hold")
        if patient is not None and not isinstance(patient, str):
            raise Invalid("'patient_id' must be a string or absent")
        return r.holds.file(actor, patient, _text(body, "reason"))

    return _out(await _call(request, op), asdict, 201)


@router.post("/privacy/holds/{hold_id}/lift")
async def lift_hold(request: Request, hold_id: str) -> Response:
    done = await _call(request, lambda r, actor: r.holds.lift(actor, hold_id))
    return _out(done, lambda _: {"lifted": hold_id})


@router.post("/privacy/deletions")
async def delete_patient(request: Request) -> Response:
    body = await _body(request)

    def field(name: str) -> str:  # missing or mistyped: empty, so the service refuses (audited)
        value = body.get(name)
        return value if isinstance(value, str) else ""

    def op(r: Retention, actor: Actor) -> Certificate:
        r.authorize_officer(actor, "order a permanent deletion")
        deletion = DeletionRequest(
            field("written_request"), field("verified_by"), body.get("tenant_instruction") is True
        )
        return r.delete_patient(actor, field("patient_id"), deletion)

    return _out(await _call(request, op), _cert, 201)


@router.get("/privacy/soft-deletes")
async def list_hidden(request: Request) -> Response:
    found = await _call(request, lambda r, actor: r.soft.list_hidden(actor))
    return _out(found, lambda rows: {"hidden": [asdict(h) for h in rows]})


def _soft(body: dict[str, Any], restore: bool) -> Callable[[Retention, Actor], int]:
    def op(r: Retention, actor: Actor) -> int:
        r.authorize_officer(actor, "soft-delete records")
        if "patient_id" in body:
            pid = _text(body, "patient_id")
            return (r.soft.restore_patient if restore else r.soft.hide_patient)(actor, pid)
        rtype, rid = _text(body, "resource_type"), _text(body, "resource_id")
        return (r.soft.restore_resource if restore else r.soft.hide_resource)(actor, rtype, rid)

    return op


@router.post("/privacy/soft-deletes")
async def hide(request: Request) -> Response:
    found = await _call(request, _soft(await _body(request), restore=False))
    return _out(found, lambda n: {"hidden": n}, 201)


@router.post("/privacy/soft-deletes/restore")
async def restore(request: Request) -> Response:
    found = await _call(request, _soft(await _body(request), restore=True))
    return _out(found, lambda n: {"restored": n})


@router.get("/privacy/retention/dry-run")
async def dry_run(request: Request) -> Response:
    def op(r: Retention, actor: Actor) -> Any:
        r.authorize_officer(actor, "see the retention report")
        return RetentionJob(r).run(actor.tenant_id, dry_run=True)

    return _out(await _call(request, op), asdict)


@router.get("/privacy/certificates")
async def list_certificates(request: Request) -> Response:
    def op(r: Retention, actor: Actor) -> Any:
        r.authorize_officer(actor, "read deletion certificates")
        return certificates.list_ids(r.services, actor.tenant_id)

    found = await _call(request, op)
    return _out(
        found,
        lambda rows: {"certificates": [{"id": i, "kind": k, "issued_at": at} for i, k, at in rows]},
    )


def _load(certificate_id: str) -> Callable[[Retention, Actor], Certificate]:
    def op(r: Retention, actor: Actor) -> Certificate:
        r.authorize_officer(actor, "read deletion certificates")
        return certificates.load(r.services, actor.tenant_id, certificate_id)

    return op


@router.get("/privacy/certificates/{certificate_id}")
async def read_certificate(request: Request, certificate_id: str) -> Response:
    return _out(await _call(request, _load(certificate_id)), _cert)


@router.get("/privacy/certificates/{certificate_id}/pdf")
async def certificate_pdf(request: Request, certificate_id: str) -> Response:
    found = await _call(request, _load(certificate_id))
    if isinstance(found, Response):
        return found
    return Response(certificates.to_pdf(found), 200, media_type="application/pdf")


@router.delete("/patient/submissions/{rtype}/{rid}")
async def delete_own(request: Request, rtype: str, rid: str) -> Response:
    done = await _call(request, lambda r, actor: r.delete_own_submission(actor, rtype, rid))
    return _out(done, _cert)


@router.post("/patient/account/close")
async def close_account(request: Request) -> Response:
    done = await _call(request, lambda r, actor: r.close_own_account(actor))
    return _out(done, lambda kept: {"inactivated": True, "data_kept_until": kept})


@router.post("/privacy/accounts/{user_id}/inactivate")
async def inactivate(request: Request, user_id: str) -> Response:
    done = await _call(
        request, lambda r, actor: r.inactivate_account(actor, user_id, allow_self=False)
    )
    return _out(done, lambda kept: {"inactivated": user_id, "data_kept_until": kept})
