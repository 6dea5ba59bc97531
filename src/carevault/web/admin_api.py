"""The account administrator's API (JSON; problem+json errors; identity:user:manage).

    GET   /admin/users                                  accounts of the caller's tenant
    POST  /admin/users          {email, role, password?, patient?, guardian_consent?}
    PATCH /admin/users/{id}     {role?, active?, may_break_glass?}
    POST  /admin/users/{id}/mfa-reset
    GET   /admin/policy · PUT /admin/policy {care_rule, session_idle_minutes,
                                             session_absolute_minutes}

The tenant is the caller's (from the session or token): a `tenant_id` in a body is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from carevault.errors import CareVaultError, Unauthorized
from carevault.identity.account_base import Client
from carevault.identity.models import Actor
from carevault.identity.tenant_policy import TenantPolicy
from carevault.privacy.minor_accounts import MinorAccounts
from carevault.runtime import Runtime
from carevault.web.auth_api import (
    BadInput,
    audit_bad_input,
    client_of,
    guarded,
    json_response,
    read_body,
    session_token,
    text,
)
from carevault.web.fhir_api.deps import request_info
from carevault.web.problem_calls import problem
from carevault.web.refusals import audit_anonymous_refusal

router = APIRouter(prefix="/admin", include_in_schema=False)


def _actor(request: Request, rt: Runtime) -> Actor:
    token = session_token(request)
    try:
        return rt.identity.authenticate(token)
    except Unauthorized as exc:
        audit_anonymous_refusal(
            rt,
            token=token,
            status=401,
            reason=f"admin API refused: {exc.message}",
            method=request.method,
            path=request.url.path,
            info=request_info(request),
        )
        raise


async def _call(
    request: Request,
    operation: Callable[[Runtime, Actor, Client, dict[str, Any]], Response],
    *,
    with_body: bool = False,
) -> Response:
    rt: Runtime = request.app.state.runtime
    client = client_of(request)

    def authorized() -> Actor:
        # Who asks, and may they manage accounts at all, before their body is looked at:
        # a patient's malformed request is a 403, not a 400.
        actor = _actor(request, rt)
        rt.accounts.admin.authorize(actor, client, f"{request.method} {request.url.path}")
        return actor

    try:
        actor = await run_in_threadpool(authorized)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    body: dict[str, Any] = {}
    if with_body:
        try:
            body = await read_body(request)
            if "tenant_id" in body or "tenant" in body:
                raise BadInput("the tenant comes from your session, not the body")
        except BadInput as exc:
            await run_in_threadpool(audit_bad_input, request, exc)
            return problem(exc.status, "Invalid", exc.message)
    return await guarded(request, lambda: operation(rt, actor, client, body))


def _policy(policy: TenantPolicy) -> dict[str, Any]:
    return {
        "care_rule": policy.care_rule.value,
        "session_idle_minutes": int(policy.session_idle.total_seconds() // 60),
        "session_absolute_minutes": int(policy.session_absolute.total_seconds() // 60),
    }


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadInput(f"'{name}' must be true or false")
    return value


def _minutes(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1440:
        raise BadInput(f"'{name}' must be a whole number of minutes from 1 to 1440")
    return value


@router.get("/users")
async def list_users(request: Request) -> Response:
    def op(rt: Runtime, actor: Actor, client: Client, _body: dict[str, Any]) -> Response:
        views = rt.accounts.admin.list_users(actor, client)
        return json_response({"users": [asdict(v) for v in views]})

    return await _call(request, op)


def _minor_accounts(rt: Runtime) -> MinorAccounts:
    """A minor's portal account needs a guardian's permission (AM-37): birthDate is PHI, so
    the check is privacy's, reading through the gate."""
    return MinorAccounts(
        rt.gate_services, rt.policy, lambda reader, pid: rt.gate(reader).read("Patient", pid)
    )


@router.post("/users")
async def create_user(request: Request) -> Response:
    def op(rt: Runtime, actor: Actor, client: Client, body: dict[str, Any]) -> Response:
        patient = text(body, "patient", required=False, limit=64)
        guardian = text(body, "guardian_consent", required=False, limit=64)
        if guardian is not None and patient is None:
            raise BadInput("'guardian_consent' goes with 'patient', the account's Patient id")
        minors = _minor_accounts(rt)
        user_id = rt.accounts.admin.create_user(
            actor,
            text(body, "email", limit=320),
            text(body, "role", limit=32),
            text(body, "password", required=False, limit=100_000),
            client,
            patient_id=patient,
            admit=lambda pid: minors.admit(actor.tenant_id, pid, guardian),
        )
        return json_response({"user_id": user_id}, 201)

    return await _call(request, op, with_body=True)


@router.patch("/users/{user_id}")
async def update_user(request: Request, user_id: str) -> Response:
    def op(rt: Runtime, actor: Actor, client: Client, body: dict[str, Any]) -> Response:
        guardian = text(body, "guardian_consent", required=False, limit=64)
        minors = _minor_accounts(rt)
        rt.accounts.admin.update_user(
            actor,
            user_id[:64],
            client,
            role=text(body, "role", required=False, limit=32),
            active=_flag(body, "active"),
            may_break_glass=_flag(body, "may_break_glass"),
            admit=lambda pid: minors.admit(actor.tenant_id, pid, guardian),
        )
        return Response(status_code=204)

    return await _call(request, op, with_body=True)


@router.post("/users/{user_id}/mfa-reset")
async def reset_mfa(request: Request, user_id: str) -> Response:
    def op(rt: Runtime, actor: Actor, client: Client, _body: dict[str, Any]) -> Response:
        rt.accounts.admin.reset_mfa(actor, user_id[:64], client)
        return Response(status_code=204)

    return await _call(request, op)


@router.get("/policy")
async def get_policy(request: Request) -> Response:
    def op(rt: Runtime, actor: Actor, client: Client, _body: dict[str, Any]) -> Response:
        return json_response(_policy(rt.accounts.admin.policy(actor, client)))

    return await _call(request, op)


@router.put("/policy")
async def set_policy(request: Request) -> Response:
    def op(rt: Runtime, actor: Actor, client: Client, body: dict[str, Any]) -> Response:
        policy = rt.accounts.admin.set_policy(
            actor,
            client,
            care_rule=text(body, "care_rule", limit=16),
            idle_minutes=_minutes(body, "session_idle_minutes"),
            absolute_minutes=_minutes(body, "session_absolute_minutes"),
        )
        return json_response(_policy(policy))

    return await _call(request, op, with_body=True)
