"""/openapi.json that describes the FHIR API as it behaves (schemathesis fuzzes it).

The handlers read requests themselves (FHIR JSON of any type, search parameters that vary
by type), so FastAPI sees only `rtype: str` and no bodies. This fills in, on the generated
document and without touching a handler: `rtype` as the enum of served types, id patterns,
the query parameters each interaction takes, FHIR JSON request bodies and responses,
OperationOutcome errors and the bearer scheme. Routes added later get the generic parts.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from carevault.privacy.catalog import SERVED_TYPES
from carevault.web.outcome import FHIR_JSON

Schema = dict[str, Any]

_ID = {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"}
_PATH_SCHEMAS: dict[str, Schema] = {
    "rtype": {"type": "string", "enum": list(SERVED_TYPES)},
    "rid": _ID,
    "pid": _ID,
    "vid": {"type": "string", "pattern": "^[0-9]{1,9}$"},
}
_RESOURCE: Schema = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": list(SERVED_TYPES)},
        "id": _ID,
        "meta": {"type": "object"},
    },
    "additionalProperties": True,
}
_PARAMETERS: Schema = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Parameters"]},
        "parameter": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}},
                "additionalProperties": True,
            },
        },
    },
}
_BUNDLE: Schema = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["batch", "transaction"]},
        "entry": {"type": "array", "items": {"type": "object"}},
    },
}
_FHIR_RESPONSE: Schema = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
}
_OUTCOME: Schema = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {"type": "array", "items": {"type": "object"}},
    },
}


def _q(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


_COUNT = _q("_count", {"type": "integer", "minimum": 0}, "Page size (capped by the server).")
_PAGE = _q("_page", {"type": "string"}, "Opaque paging token from a `next` link.")
_SINCE = _q("_since", {"type": "string", "format": "date-time"}, "Only what changed since.")
_FORMAT = _q("_format", {"type": "string", "enum": ["json", FHIR_JSON]}, "JSON only.")
_QUERY: dict[tuple[str, str], list[Schema]] = {
    ("get", "/fhir/{rtype}"): [
        _COUNT, _PAGE, _FORMAT,
        _q("_id", {"type": "string"}, "Logical id."),
        _q("_lastUpdated", {"type": "string"}, "Date with an optional prefix (ge2026-01-01)."),
        _q("_sort", {"type": "string"}, "Sort keys, `-` for descending."),
        _q("_summary", {"type": "string", "enum": ["count", "true", "false"]}, "Summary form."),
        _q("_include", {"type": "string"}, "Type:param of references to include."),
        _q("_revinclude", {"type": "string"}, "Type:param of resources citing these."),
    ],
    ("get", "/fhir/{rtype}/_history"): [_SINCE, _COUNT, _PAGE],
    ("get", "/fhir/Patient/{pid}/$everything"): [
        _SINCE, _COUNT, _PAGE, _q("_type", {"type": "string"}, "Comma-separated types."),
    ],
    ("post", "/fhir/{rtype}/$validate"): [
        _q("mode", {"type": "string", "enum": ["create", "update", "delete"]}, "Validation mode.")
    ],
}  # fmt: skip
_QUERY[("post", "/fhir/Patient/{pid}/$everything")] = _QUERY[
    ("get", "/fhir/Patient/{pid}/$everything")
]
_QUERY[("post", "/fhir/{rtype}/{rid}/$validate")] = _QUERY[("post", "/fhir/{rtype}/$validate")]
_HEADERS: dict[tuple[str, str], list[Schema]] = {
    ("put", "/fhir/{rtype}/{rid}"): [
        {"name": "If-Match", "in": "header", "required": False,
         "schema": {"type": "string", "pattern": '^W/"[0-9]{1,9}"$'},
         "description": "Version the update applies to."},
    ],
    ("post", "/fhir/{rtype}"): [
        {"name": "If-None-Exist", "in": "header", "required": False,
         "schema": {"type": "string"}, "description": "Conditional create: a search query."},
    ],
}  # fmt: skip


def _body(path: str, method: str) -> Schema | None:
    """The request body an operation takes, or None."""
    if method not in ("post", "put"):
        return None
    if path.endswith("/_search"):
        form = {"type": "object", "additionalProperties": {"type": "string"}}
        return {
            "required": False,
            "content": {"application/x-www-form-urlencoded": {"schema": form}},
        }
    if path == "/fhir":
        return _json(_BUNDLE, required=True)
    if path.endswith("/$everything"):
        return _json(_PARAMETERS, required=False)
    if path.endswith("/$validate"):
        return _json({"anyOf": [_RESOURCE, _PARAMETERS]}, required=False)
    if "{rtype}" in path:
        return _json(_RESOURCE, required=True)
    return None


def _json(schema: Schema, *, required: bool) -> Schema:
    return {"required": required, "content": {FHIR_JSON: {"schema": schema}}}


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document, with the FHIR API described (a new dict)."""
    doc = deepcopy(document)
    for path, operations in doc.get("paths", {}).items():
        if not path.startswith("/fhir"):
            continue
        for method, op in operations.items():
            for parameter in op.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] in _PATH_SCHEMAS:
                    parameter["schema"] = dict(_PATH_SCHEMAS[parameter["name"]])
            known = {p["name"] for p in op.get("parameters", [])}
            extra = _QUERY.get((method, path), []) + _HEADERS.get((method, path), [])
            op.setdefault("parameters", []).extend(p for p in extra if p["name"] not in known)
            if not op["parameters"]:
                del op["parameters"]
            body = _body(path, method)
            if body is not None and "requestBody" not in op:
                op["requestBody"] = body
            op["responses"] = _responses(op.get("responses", {}))
            op["security"] = [{"bearer": []}] if path != "/fhir/metadata" else []
    schemes = doc.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["bearer"] = {"type": "http", "scheme": "bearer"}
    return doc


def _responses(generated: dict[str, Any]) -> dict[str, Any]:
    found = {
        code: {**value, "content": {FHIR_JSON: {"schema": _FHIR_RESPONSE}}}
        for code, value in generated.items()
        if code.startswith("2")
    }
    found["4XX"] = {
        "description": "Refused: an OperationOutcome naming the problem (never a value)",
        "content": {FHIR_JSON: {"schema": _OUTCOME}},
    }
    return found


def install(app: FastAPI) -> None:
    """Serve the described document at /openapi.json (built once, on first request)."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            generated = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=_ABOUT
            )
            cached.update(describe(generated))
        return cached

    setattr(app, "openapi", openapi)  # noqa: B010 (FastAPI's documented override)


_ABOUT = (
    "CareVault's FHIR R4 API. `GET /fhir/metadata` (the CapabilityStatement) is the "
    "authority on the search parameters each type supports."
)
