"""FHIR REST interactions: each handler parses the request and hands it to the gate."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from carevault.audit.models import Action
from carevault.errors import (
    CareVaultError,
    Invalid,
    NotAcceptable,
    NotFound,
    TooLarge,
    UnsupportedMediaType,
)
from carevault.web.fhir_api import bundles, messages
from carevault.web.fhir_api.capability import capability_statement
from carevault.web.fhir_api.deps import Records
from carevault.web.outcome import FHIR_JSON

T = TypeVar("T")
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
_JSON_FORMATS = frozenset({"json", *_JSON_TYPES})


async def json_only(request: Request) -> None:
    """`_format` may ask for JSON in any of its spellings; we serve nothing else."""
    wanted = request.query_params.get("_format")
    if wanted is not None and wanted.split(";")[0].strip().lower() not in _JSON_FORMATS:
        raise NotAcceptable("only JSON is served (_format=json)")


router = APIRouter(prefix="/fhir", dependencies=[Depends(json_only)])
_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


async def json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _JSON_TYPES:
        raise UnsupportedMediaType("send the resource as application/fhir+json")
    raw = await request.body()
    max_bytes = request.app.state.runtime.settings.max_body_bytes
    if len(raw) > max_bytes:
        raise TooLarge(f"the body is larger than {max_bytes} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid("the body is not well-formed JSON") from None


def lenient(request: Request, params: list[tuple[str, str]]) -> bool:
    prefer = request.headers.get("prefer", "").replace(" ", "").lower()
    return "handling=lenient" in prefer or ("handling", "lenient") in params


async def if_match(request: Request) -> int | None:
    header = request.headers.get("if-match")
    if header is None:
        return None
    match = _ETAG.match(header.strip())
    if match is None:
        raise Invalid('If-Match must be a version ETag such as W/"3"')
    return int(match[1])


async def checked(
    gate: Records, action: Action, rtype: str, ids: tuple[str, ...], parse: Awaitable[T]
) -> T:
    """Run a request parser; a refusal here is audited like a refusal inside the gate."""
    try:
        return await parse
    except CareVaultError as exc:
        refused = exc
        # Authenticates first: a bad token is answered (and audited) as a 401 instead.
        await gate(lambda g: g.audit_refusal(action, rtype, ids, refused))
        raise


async def _version_id(vid: str) -> int:
    if not vid.isdigit():
        raise NotFound("version ids are whole numbers")
    return int(vid)


async def _form(request: Request) -> list[tuple[str, str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("POST _search takes an application/x-www-form-urlencoded body")
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qsl(body, keep_blank_values=True)


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    return Response(orjson.dumps(capability_statement(base_url(request))), media_type=FHIR_JSON)


@router.get("/{rtype}")
async def search_get(request: Request, rtype: str, gate: Records) -> Response:
    params = list(request.query_params.multi_items())
    return await _search(request, rtype, gate, params, self_query=params)


@router.post("/{rtype}/_search")
async def search_post(request: Request, rtype: str, gate: Records) -> Response:
    form = await checked(gate, Action.SEARCH, rtype, (), _form(request))
    params = list(request.query_params.multi_items()) + form
    # The self link leaves out the posted parameters: they may be identifiers.
    return await _search(request, rtype, gate, params, self_query=[])


async def _search(
    request: Request,
    rtype: str,
    gate: Records,
    params: list[tuple[str, str]],
    *,
    self_query: list[tuple[str, str]],
) -> Response:
    page = next((v for k, v in params if k == "_page"), None)
    loose = lenient(request, params)
    result = await gate(lambda g: g.search(rtype, params, page=page, lenient=loose))
    return bundles.searchset(base_url(request), rtype, result, [] if page else self_query)


@router.post("/{rtype}")
async def create(request: Request, rtype: str, gate: Records) -> Response:
    body = await checked(gate, Action.CREATE, rtype, (), json_body(request))
    condition = request.headers.get("if-none-exist")
    if rtype == messages.RTYPE:  # a secure message to a patient is announced (messages.py)
        rt = gate.runtime
        found, created = await gate(lambda g: messages.create(g, rt, body, condition))
        return bundles.resource_response(base_url(request), found, status=201 if created else 200)
    if condition is not None:
        found, created = await gate(lambda g: g.create_unless_exists(rtype, body, condition))
        return bundles.resource_response(base_url(request), found, status=201 if created else 200)
    view = await gate(lambda g: g.create(rtype, body))
    return bundles.resource_response(base_url(request), view, status=201)


@router.put("/{rtype}")
async def update_where(request: Request, rtype: str, gate: Records) -> Response:
    """Conditional update: PUT Type?criteria (a 400 without criteria)."""
    body = await checked(gate, Action.UPDATE, rtype, (), json_body(request))
    version = await checked(gate, Action.UPDATE, rtype, (), if_match(request))
    query = request.url.query
    view, created = await gate(lambda g: g.update_where(rtype, query, body, if_match=version))
    return bundles.resource_response(base_url(request), view, status=201 if created else 200)


@router.delete("/{rtype}")
async def delete_where(request: Request, rtype: str, gate: Records) -> Response:
    """Conditional delete: DELETE Type?criteria (a 400 without criteria)."""
    query = request.url.query
    await gate(lambda g: g.delete_where(rtype, query))
    return Response(status_code=204)


@router.get("/{rtype}/{rid}")
async def read(request: Request, rtype: str, rid: str, gate: Records) -> Response:
    view = await gate(lambda g: g.read(rtype, rid))
    return bundles.resource_response(base_url(request), view)


@router.put("/{rtype}/{rid}")
async def update(request: Request, rtype: str, rid: str, gate: Records) -> Response:
    body = await checked(gate, Action.UPDATE, rtype, (rid,), json_body(request))
    version = await checked(gate, Action.UPDATE, rtype, (rid,), if_match(request))
    if rtype == messages.RTYPE:  # a draft sent to the patient is announced (messages.py)
        rt = gate.runtime
        view, created = await gate(lambda g: messages.update(g, rt, rid, body, version))
    else:
        view, created = await gate(lambda g: g.update(rtype, rid, body, if_match=version))
    return bundles.resource_response(base_url(request), view, status=201 if created else 200)


@router.delete("/{rtype}/{rid}")
async def delete(request: Request, rtype: str, rid: str, gate: Records) -> Response:
    await gate(lambda g: g.delete(rtype, rid))
    return Response(status_code=204)


@router.get("/{rtype}/{rid}/_history")
async def history(request: Request, rtype: str, rid: str, gate: Records) -> Response:
    versions = await gate(lambda g: g.history(rtype, rid))
    return bundles.history(base_url(request), versions)


@router.get("/{rtype}/{rid}/_history/{vid}")
async def vread(request: Request, rtype: str, rid: str, vid: str, gate: Records) -> Response:
    version = await checked(gate, Action.VREAD, rtype, (rid,), _version_id(vid))
    view = await gate(lambda g: g.vread(rtype, rid, version))
    return bundles.resource_response(base_url(request), view)
