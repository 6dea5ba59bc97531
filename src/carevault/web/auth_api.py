"""Sign-in over HTTP (JSON; errors are problem+json, never a 500).

    POST /auth/sign-in                 {tenant, email, password, purpose?, delivery?}
    POST /auth/second-factor           {code}                   TOTP step of sign-in
    POST /auth/totp/enrol                                       → {otpauth_uri}, once
    POST /auth/totp/confirm            {code}
    POST /auth/webauthn/register/begin | /register/complete {credential}
    POST /auth/webauthn/authenticate/begin | /authenticate/complete {credential, password?}
    POST /auth/reauth                  {password, code?}        fresh for 5 minutes
    PUT  /auth/email {email} · PUT /auth/phone {phone}          need a fresh session
    POST /auth/sign-out · POST /auth/sign-out-everywhere
    POST /auth/password-reset          {tenant, email}          always 202
    POST /auth/password-reset/webauthn {tenant_id, token}
    POST /auth/password-reset/confirm  {tenant_id, token, password, code?, credential?}
    GET  /auth/session                                          who am I

The session travels as `Authorization: Bearer cvs1...` (API clients, `delivery: "bearer"`)
or as an HttpOnly, Secure, SameSite=Strict cookie (portals, the default).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from carevault.errors import CareVaultError, Invalid
from carevault.identity.account_base import Client
from carevault.identity.account_core import SignIn
from carevault.identity.lockout import Throttled
from carevault.runtime import Runtime
from carevault.web.fhir_api.deps import request_info
from carevault.web.problem_calls import problem
from carevault.web.refusals import audit_anonymous_refusal, bearer_token

COOKIE = "cv_session"
MAX_BODY = 16 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
router = APIRouter(prefix="/auth", include_in_schema=False)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status, media_type="application/json")


def client_of(request: Request) -> Client:
    info = request_info(request)
    agent = _CONTROL.sub(" ", info.user_agent)[:256] if info.user_agent else None
    return Client(info.request_id, info.source_ip, agent)


def session_token(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization")) or request.cookies.get(COOKIE)


async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadInput("the body is too large")
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise BadInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def text(body: dict[str, Any], name: str, *, required: bool = True, limit: int = 1024) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise BadInput(f"'{name}' must be a string of at most {limit} characters")
    return value


def obj(body: dict[str, Any], name: str, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise BadInput(f"'{name}' must be a JSON object")
    return value


class BadInput(Invalid):
    """A malformed body or field, refused here before any service saw it."""


def audit_bad_input(request: Request, exc: CareVaultError) -> None:
    """Bad input is audited too (in the chain of the tenant the session names, if any)."""
    audit_anonymous_refusal(
        request.app.state.runtime,
        token=session_token(request),
        status=exc.status,
        reason=f"refused as bad input: {exc.message}",  # names fields, never their values
        method=request.method,
        path=request.url.path,
        info=request_info(request),
    )


async def guarded(request: Request, call: Callable[[], Response]) -> Response:
    """Run blocking work off the event loop; every refusal becomes a problem document."""
    try:
        return await run_in_threadpool(call)
    except BadInput as exc:
        await run_in_threadpool(audit_bad_input, request, exc)
        return problem(exc.status, "Invalid", exc.message)
    except Throttled as exc:
        headers = {"Retry-After": str(exc.retry_after_seconds)}
        return problem(429, "Throttled", exc.message, headers)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _session_answer(signed: SignIn, *, bearer: bool) -> Response:
    body: dict[str, Any] = {
        "stage": signed.stage.value,
        "next": {"mfa": "second-factor", "enrol": "enrol"}.get(signed.stage.value),
        "factors": list(signed.factors),
        "expires_at": signed.expires_at,
    }
    if bearer:
        body["token"] = signed.token
    response = json_response(body)
    if not bearer:
        response.set_cookie(
            COOKIE, signed.token, httponly=True, secure=True, samesite="strict", path="/"
        )
    return response


def _uses_bearer(request: Request) -> bool:
    return bearer_token(request.headers.get("authorization")) is not None


async def _with_body(request: Request) -> dict[str, Any] | Response:
    try:
        return await read_body(request)
    except BadInput as exc:
        await run_in_threadpool(audit_bad_input, request, exc)
        return problem(exc.status, "Invalid", exc.message)


@dataclass(frozen=True)
class Call:
    """What a route's work needs: the runtime, the caller's session and client, the body."""

    rt: Runtime
    token: str | None
    client: Client
    body: dict[str, Any]
    bearer: bool
    """The session travels as a bearer token (else as the cookie): answer the same way."""


async def _answer(
    request: Request, work: Callable[[Call], Response], *, with_body: bool = True
) -> Response:
    """Read the JSON body (bad input is audited), then run the work off the event loop."""
    body: dict[str, Any] = {}
    if with_body:
        read = await _with_body(request)
        if isinstance(read, Response):
            return read
        body = read
    call = Call(
        _rt(request), session_token(request), client_of(request), body, _uses_bearer(request)
    )
    return await guarded(request, lambda: work(call))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    def work(c: Call) -> Response:
        delivery = text(c.body, "delivery", required=False, limit=8) or "cookie"
        if delivery not in ("cookie", "bearer"):
            raise BadInput("'delivery' must be cookie or bearer")
        signed = c.rt.accounts.sign_in(
            text(c.body, "tenant", limit=64),
            text(c.body, "email", limit=320),
            text(c.body, "password", limit=100_000),  # the service refuses > 128 with a 400
            text(c.body, "purpose", required=False, limit=16),
            c.client,
        )
        return _session_answer(signed, bearer=delivery == "bearer")

    return await _answer(request, work)


@router.post("/second-factor")
async def second_factor(request: Request) -> Response:
    def work(c: Call) -> Response:
        signed = c.rt.accounts.second_factor(c.token, text(c.body, "code", limit=16), c.client)
        return _session_answer(signed, bearer=c.bearer)

    return await _answer(request, work)


@router.post("/totp/enrol")
async def totp_enrol(request: Request) -> Response:
    def work(c: Call) -> Response:
        return json_response({"otpauth_uri": c.rt.accounts.totp_enrol(c.token, c.client)})

    return await _answer(request, work, with_body=False)


@router.post("/totp/confirm")
async def totp_confirm(request: Request) -> Response:
    def work(c: Call) -> Response:
        signed = c.rt.accounts.totp_confirm(c.token, text(c.body, "code", limit=16), c.client)
        if signed is None:
            return json_response({"enrolled": "totp"})
        return _session_answer(signed, bearer=c.bearer)

    return await _answer(request, work)


@router.post("/webauthn/register/begin")
async def webauthn_register_begin(request: Request) -> Response:
    def work(c: Call) -> Response:
        return json_response(c.rt.accounts.webauthn_register_begin(c.token, c.client))

    return await _answer(request, work, with_body=False)


@router.post("/webauthn/register/complete")
async def webauthn_register_complete(request: Request) -> Response:
    def work(c: Call) -> Response:
        credential = obj(c.body, "credential")
        signed = c.rt.accounts.webauthn_register_complete(c.token, credential, c.client)
        if signed is None:
            return json_response({"enrolled": "webauthn"})
        return _session_answer(signed, bearer=c.bearer)

    return await _answer(request, work)


@router.post("/webauthn/authenticate/begin")
async def webauthn_authenticate_begin(request: Request) -> Response:
    def work(c: Call) -> Response:
        return json_response(c.rt.accounts.webauthn_begin(c.token, c.client))

    return await _answer(request, work, with_body=False)


@router.post("/webauthn/authenticate/complete")
async def webauthn_authenticate_complete(request: Request) -> Response:
    def work(c: Call) -> Response:
        password = text(c.body, "password", required=False, limit=100_000)
        credential = obj(c.body, "credential")
        result = c.rt.accounts.webauthn_complete(c.token, credential, password, c.client)
        if isinstance(result, str):
            return json_response({"fresh_until": result})
        return _session_answer(result, bearer=c.bearer)

    return await _answer(request, work)


@router.post("/reauth")
async def reauth(request: Request) -> Response:
    def work(c: Call) -> Response:
        fresh = c.rt.accounts.reauthenticate(
            c.token,
            text(c.body, "password", limit=100_000),
            text(c.body, "code", required=False, limit=16),
            c.client,
        )
        return json_response({"fresh_until": fresh})

    return await _answer(request, work)


@router.put("/email")
async def change_email(request: Request) -> Response:
    def work(c: Call) -> Response:
        c.rt.accounts.change_email(c.token, text(c.body, "email", limit=320), c.client)
        return Response(status_code=204)

    return await _answer(request, work)


@router.put("/phone")
async def change_phone(request: Request) -> Response:
    def work(c: Call) -> Response:
        c.rt.accounts.change_phone(c.token, text(c.body, "phone", limit=32), c.client)
        return Response(status_code=204)

    return await _answer(request, work)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    return await _answer(request, _sign_out(everywhere=False), with_body=False)


@router.post("/sign-out-everywhere")
async def sign_out_everywhere(request: Request) -> Response:
    return await _answer(request, _sign_out(everywhere=True), with_body=False)


def _sign_out(*, everywhere: bool) -> Callable[[Call], Response]:
    def work(c: Call) -> Response:
        ended = c.rt.accounts.sign_out(c.token, c.client, everywhere=everywhere)
        response = json_response({"ended": ended})
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    return work


@router.get("/session")
async def whoami(request: Request) -> Response:
    def work(c: Call) -> Response:
        return json_response(asdict(c.rt.accounts.whoami(c.token, c.client)))

    return await _answer(request, work, with_body=False)


@router.post("/password-reset")
async def password_reset(request: Request) -> Response:
    def work(c: Call) -> Response:
        tenant, email = text(c.body, "tenant", limit=64), text(c.body, "email", limit=320)
        c.rt.accounts.request_password_reset(tenant, email, c.client)
        return json_response({"status": "if the account exists, a link is on its way"}, 202)

    return await _answer(request, work)


@router.post("/password-reset/webauthn")
async def password_reset_webauthn(request: Request) -> Response:
    def work(c: Call) -> Response:
        tenant_id, token = text(c.body, "tenant_id", limit=64), text(c.body, "token", limit=256)
        return json_response(c.rt.accounts.reset_webauthn_begin(tenant_id, token, c.client))

    return await _answer(request, work)


@router.post("/password-reset/confirm")
async def password_reset_confirm(request: Request) -> Response:
    def work(c: Call) -> Response:
        c.rt.accounts.confirm_password_reset(
            text(c.body, "tenant_id", limit=64),
            text(c.body, "token", limit=256),
            text(c.body, "password", limit=100_000),
            c.client,
            code=text(c.body, "code", required=False, limit=16),
            passkey=obj(c.body, "credential", required=False),
        )
        return Response(status_code=204)

    return await _answer(request, work)
