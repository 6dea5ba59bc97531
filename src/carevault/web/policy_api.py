"""The privacy policy's versions over HTTP. No logic: policy/posting.py decides and audits.

Public (the website the policy is posted on; no PHI, no sign-in):
    GET  /privacy-policy?format=html|markdown            the notice in effect, with its dates
    GET  /privacy-policy/versions/{n}?format=...         one posted version's notice
Signed in (problem+json errors):
    GET  /admin/privacy-policy/versions                  every version: posted, in effect, state
    POST /admin/privacy-policy/versions                  body: the policy file (YAML); 201
                                                         (the vendor's operators only)
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from carevault.errors import CareVaultError, Invalid, UnsupportedMediaType
from carevault.policy.posting import POST_REFUSED, view
from carevault.policy.render import Format
from carevault.runtime import Runtime
from carevault.web.auth_api import json_response
from carevault.web.fhir_api.deps import request_info
from carevault.web.problem_calls import PROBLEM_JSON, authenticated, problem

router = APIRouter(include_in_schema=False)
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/plain"})
MEDIA = {Format.HTML: "text/html; charset=utf-8", Format.MARKDOWN: "text/markdown; charset=utf-8"}


def _format(request: Request) -> Format:
    try:
        return Format(request.query_params.get("format", Format.HTML.value))
    except ValueError:
        raise Invalid("format must be html or markdown") from None


def _text(raw: bytes, content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in YAML_TYPES:
        raise UnsupportedMediaType("send the policy file as application/yaml")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the policy file must be UTF-8 text") from None


async def _notice(request: Request, number: int | None) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        fmt = _format(request)
        text = await run_in_threadpool(rt.policy_posts.notice, number, fmt)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)
    return Response(text, 200, media_type=MEDIA[fmt])


@router.get("/privacy-policy")
async def notice_in_effect(request: Request) -> Response:
    return await _notice(request, None)


@router.get("/privacy-policy/versions/{number}")
async def notice_of_version(request: Request, number: str) -> Response:
    if not number.isdigit() or len(number) > 9:
        return problem(404, "NotFound", "there is no such privacy policy version")
    return await _notice(request, int(number))


@router.get("/admin/privacy-policy/versions")
async def list_versions(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime

    def run() -> Response:
        listed = rt.policy_posts.listed(authenticated(rt, request), request_info(request))
        return json_response({"versions": [asdict(v) for v in listed]})

    try:
        return await run_in_threadpool(run)
    except CareVaultError as exc:
        return problem(exc.status, type(exc).__name__, exc.message)


@router.post("/admin/privacy-policy/versions")
async def post_version(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    raw = await request.body()
    content_type = request.headers.get("content-type")

    def run() -> Response:
        actor = authenticated(rt, request)
        who = request_info(request)
        try:
            rt.policy_posts.may_post(actor)  # who asks, before what they sent is looked at
            text = _text(raw, content_type)
        except CareVaultError as exc:
            rt.policy_posts.refused(actor, who, exc, POST_REFUSED)
            raise
        posted = rt.policy_posts.post(actor, text, "the posted policy", who)
        return json_response(asdict(view(rt.policy_posts.timeline, posted, rt.clock.now())), 201)

    try:
        return await run_in_threadpool(run)
    except CareVaultError as exc:
        return _problem(exc)


def _problem(exc: CareVaultError) -> Response:
    """problem+json; a refused policy file also lists each problem, as `check` prints them."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": type(exc).__name__,
        "status": exc.status,
        "detail": exc.message,
    }
    if exc.issues:
        body["issues"] = [{"path": path, "message": message} for path, message in exc.issues]
    return Response(orjson.dumps(body), exc.status, media_type=PROBLEM_JSON)
