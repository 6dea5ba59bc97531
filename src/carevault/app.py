"""create_app(): routers, middleware, error handlers. No logic lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from carevault import __version__
from carevault.audit.models import RequestInfo
from carevault.errors import CareVaultError
from carevault.runtime import Runtime
from carevault.web import outcome
from carevault.web.access_api import router as access_router
from carevault.web.accounting_api import router as accounting_router
from carevault.web.admin_api import router as admin_router
from carevault.web.audit_api import router as audit_router
from carevault.web.auth_api import router as auth_router
from carevault.web.communications_api import install as install_communications
from carevault.web.deid_api import router as deid_router
from carevault.web.disclosure_api import router as disclosure_router
from carevault.web.fhir_api.bulk_export import router as bulk_export_router
from carevault.web.fhir_api.openapi import install as describe_fhir_api
from carevault.web.fhir_api.operations import router as operations_router
from carevault.web.fhir_api.routes import router as fhir_router
from carevault.web.fhir_api.transactions import router as bundle_router
from carevault.web.middleware import RequestMiddleware
from carevault.web.oversight_api import router as oversight_router
from carevault.web.policy_api import router as policy_router
from carevault.web.refusals import audit_anonymous_refusal, bearer_token
from carevault.web.retention_api import router as retention_router
from carevault.web.rights_api import router as rights_router


def create_app(runtime: Runtime, *, close_runtime: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if close_runtime:  # the served app owns its runtime: it runs the background scans
            runtime.start_sentinel()
        yield
        if close_runtime:
            runtime.close()

    app = FastAPI(
        title="CareVault",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,  # the FHIR API documents itself at /fhir/metadata
    )
    app.state.runtime = runtime
    app.include_router(auth_router)  # /auth: sign-in, sessions, factors, password reset
    app.include_router(admin_router)  # /admin: the account administrator
    app.include_router(audit_router)  # /fhir/AuditEvent (read-only), before /fhir/{rtype}
    app.include_router(bulk_export_router)  # before the generic /fhir/{rtype} routes
    app.include_router(bundle_router)  # POST /fhir, before the generic /fhir routes
    app.include_router(deid_router)  # POST /fhir/$deid-aggregate, before /fhir/{rtype}
    app.include_router(disclosure_router)  # $disclose, Consent $sign/$revoke, BAAs, orders
    app.include_router(operations_router)  # {type}/_history, $everything, $validate
    app.include_router(accounting_router)  # Patient/$accounting-of-disclosures, suspensions
    app.include_router(fhir_router)
    app.include_router(oversight_router)  # /privacy: snooping alerts, restricted patients
    app.include_router(access_router)  # /access: break-glass, representatives; its review
    app.include_router(retention_router)  # holds, deletions, certificates; /unsubscribe
    app.include_router(rights_router)  # /rights/requests and the officer's /admin/rights queue
    app.include_router(policy_router)  # /privacy-policy and its posted versions
    install_communications(app)  # Sec-GPC opt-outs, /account/privacy-choices, /privacy/breaches
    describe_fhir_api(app)  # /openapi.json: the FHIR API as it behaves

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_exception_handler(CareVaultError, outcome.carevault_error)
    app.add_exception_handler(RequestValidationError, outcome.validation_error)
    app.add_exception_handler(StarletteHTTPException, outcome.http_error)
    app.add_exception_handler(Exception, outcome.unexpected_error)

    async def audit_refused(scope: Scope, status: int, reason: str, request_id: str) -> None:
        headers = Headers(scope=scope)
        client = scope.get("client")
        info = RequestInfo(request_id, client[0] if client else None, headers.get("user-agent"))
        token = bearer_token(headers.get("authorization"))
        await run_in_threadpool(
            partial(
                audit_anonymous_refusal,
                runtime,
                token=token,
                status=status,
                reason=reason,
                method=scope["method"],
                path=scope["path"],
                info=info,
            )
        )

    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=runtime.settings.max_body_bytes,
        on_refused=audit_refused,
    )
    return app
