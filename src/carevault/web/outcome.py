"""OperationOutcome responses for every error, with no PHI and no stack trace."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from carevault.errors import CareVaultError

FHIR_JSON = "application/fhir+json"

_HTTP_CODES = {
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-costly",
    415: "not-supported",
}


def outcome(
    status: int, code: str, message: str, issues: list[tuple[str, str]] | None = None
) -> Response:
    severity = "error" if status < 500 else "fatal"
    entries: list[dict[str, Any]] = [{"severity": severity, "code": code, "diagnostics": message}]
    entries += [
        {"severity": severity, "code": code, "diagnostics": text, "expression": [where]}
        for where, text in issues or []
    ]
    body = orjson.dumps({"resourceType": "OperationOutcome", "issue": entries})
    headers = {"WWW-Authenticate": 'Bearer realm="carevault"'} if status == 401 else None
    return Response(body, status_code=status, media_type=FHIR_JSON, headers=headers)


async def carevault_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CareVaultError)
    return outcome(exc.status, exc.code, exc.message, exc.issues)


async def validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Name the parameter, never the value that was sent.
    issues = [(".".join(str(p) for p in e["loc"]), str(e["msg"])) for e in exc.errors()]
    return outcome(400, "invalid", "the request is not well-formed", issues)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "processing")
    message = {404: "no such endpoint", 405: "method not allowed here"}.get(
        exc.status_code, str(exc.detail)
    )
    return outcome(exc.status_code, code, message)


async def unexpected_error(request: Request, _exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", "unknown")
    return outcome(500, "exception", f"internal error; quote request id {request_id}")
