"""Bundles and single-resource responses, built around the gate's JSON bytes without re-parsing."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from carevault.privacy.gate import ResourceView, SearchResult
from carevault.web.outcome import FHIR_JSON


def resource_headers(base: str, view: ResourceView) -> dict[str, str]:
    return {
        "ETag": f'W/"{view.version_id}"',
        "Last-Modified": view.last_updated,
        "Content-Location": f"{base}/{view.resource_type}/{view.resource_id}"
        f"/_history/{view.version_id}",
    }


def resource_response(base: str, view: ResourceView, status: int = 200) -> Response:
    headers = resource_headers(base, view)
    if status == 201:
        headers["Location"] = headers["Content-Location"]
    return Response(view.body, status_code=status, media_type=FHIR_JSON, headers=headers)


def searchset(
    base: str, rtype: str, result: SearchResult, self_query: list[tuple[str, str]]
) -> Response:
    self_url = f"{base}/{rtype}" + (f"?{urlencode(self_query)}" if self_query else "")
    links: list[dict[str, str]] = [{"relation": "self", "url": self_url}]
    if result.next_page and not result.summary_count:
        links.append(
            {"relation": "next", "url": f"{base}/{rtype}?{urlencode({'_page': result.next_page})}"}
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = links
    entries = [_entry(base, v, "match") for v in result.resources]
    entries += [_entry(base, v, "include") for v in result.included]
    if result.ignored:
        entries.append(_ignored_outcome(result.ignored))
    if result.warnings:
        entries.append(_warnings_outcome(result.warnings))
    bundle["entry"] = entries
    return Response(orjson.dumps(bundle), media_type=FHIR_JSON)


def _entry(base: str, view: ResourceView, mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{view.resource_type}/{view.resource_id}",
        "resource": orjson.Fragment(view.body or b"{}"),
        "search": {"mode": mode},
    }


def _warnings_outcome(messages: tuple[str, ...]) -> dict[str, Any]:
    issues = [{"severity": "warning", "code": "informational", "diagnostics": m} for m in messages]
    return {
        "resource": {"resourceType": "OperationOutcome", "issue": issues},
        "search": {"mode": "outcome"},
    }


def _ignored_outcome(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "warning",
                    "code": "not-supported",
                    "diagnostics": f"ignored unsupported search parameter(s): {', '.join(names)}",
                }
            ],
        },
        "search": {"mode": "outcome"},
    }


def history(
    base: str,
    versions: list[ResourceView],
    *,
    total: int | None = None,
    links: list[dict[str, str]] | None = None,
) -> Response:
    """A history Bundle: one entry per version, with the interaction that made it."""
    entries = []
    for v in versions:
        url = f"{v.resource_type}/{v.resource_id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
        if v.body is not None:
            entry["resource"] = orjson.Fragment(v.body)
        method = "DELETE" if v.deleted else ("POST" if v.version_id == 1 else "PUT")
        entry["request"] = {"method": method, "url": url if method != "POST" else v.resource_type}
        entry["response"] = {
            "status": "204" if v.deleted else ("201" if v.version_id == 1 else "200"),
            "etag": f'W/"{v.version_id}"',
            "lastModified": v.last_updated,
        }
        entries.append(entry)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(entries) if total is None else total,
    }
    if links:
        bundle["link"] = links
    bundle["entry"] = entries
    return Response(orjson.dumps(bundle), media_type=FHIR_JSON)
