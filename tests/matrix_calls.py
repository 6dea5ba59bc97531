"""The authorization matrix's requests: any route of the app, aimed at a target of the world
(tests/matrix_targets.py), as concrete requests; and the scan of an answer for markers.

Path parameters are filled from real ids through one generator per parameter name; a route
with a parameter name this module does not know raises UnknownParameter, so a new route
cannot escape the matrix. Requests carry ids only, never a marker.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import routing
from fastapi.testclient import TestClient
from httpx import Response

from tests.matrix_targets import Target, forbidden_markers

# -- routes and requests --------------------------------------------------------------------

SKIPPED_ROUTES: dict[str, str] = {}
"""'METHOD path' -> why it is left out. Empty: even /health, /openapi.json and /fhir/metadata
are asked, since asking costs nothing and proves they hold no PHI."""


@dataclass(frozen=True)
class RouteKey:
    method: str
    path: str
    route: Any = field(compare=False, hash=False, repr=False)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def app_routes(app: Any) -> list[RouteKey]:
    """Every method x path template the app answers (HEAD is GET's twin and not asked)."""
    found = []
    for route in routing.iter_route_contexts(app.routes):
        path = getattr(route, "path", None)
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD" and path is not None:
                key = RouteKey(method, path, route)
                if str(key) not in SKIPPED_ROUTES:
                    found.append(key)
    return found


FHIR_TYPES = ("Patient", "Observation", "Condition", "Group", "Practitioner")
"""The types a `{rtype}` parameter takes: compartment, cohort and directory ones."""

Filler = Callable[[Target, str], str]
"""(target, rtype chosen for the request) -> the path parameter's value."""

PATH_PARAMETERS: dict[str, Filler] = {
    "rid": lambda t, rtype: t.rid(rtype),
    "pid": lambda t, _: t.person.patient_id,
    "patient_id": lambda t, _: t.person.patient_id,
    "vid": lambda _t, _r: "1",
    "group_id": lambda t, _: t.site.group_id,
    "job_id": lambda t, _: t.site.job_id,
    "name": lambda t, _: t.site.job_file,
    "user_id": lambda t, _: t.site.spare_user_id,
    # Ids of oversight and access records: the site's real one when the world made one,
    # else an id that exists nowhere (the route must still answer 4xx, and leak nothing).
    "representation_id": lambda t, _: t.site.record_id("representation_id"),
    "alert_id": lambda t, _: t.site.record_id("alert_id"),
    "grant_id": lambda t, _: t.site.record_id("grant_id"),
    "cid": lambda t, _: t.site.record_id("cid"),
    "order_id": lambda t, _: t.site.record_id("order_id"),
    "request_id": lambda t, _: t.site.record_id("request_id"),
    "suspension_id": lambda t, _: t.site.record_id("suspension_id"),
    "hold_id": lambda t, _: t.site.record_id("hold_id"),
    "certificate_id": lambda t, _: t.site.record_id("certificate_id"),
    "event_id": lambda _t, _r: "2",  # AuditEvent ids are the tenant chain's sequence numbers
    "number": lambda _t, _r: "0",  # a privacy policy version: 0 is the deployment's file
}
"""One generator per path parameter name (besides `rtype`). Add one for a new name."""


class UnknownParameter(LookupError):
    pass


@dataclass(frozen=True)
class Call:
    """One concrete request of the matrix."""

    route: RouteKey
    method: str
    url: str
    params: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    form: dict[str, str] | None = None
    rtype: str | None = None

    @property
    def mutating(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")

    def __str__(self) -> str:
        return f"{self.route} as {self.rtype or '-'}"


def path_parameters(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def calls_for(route: RouteKey, target: Target) -> list[Call]:
    """The requests that aim the route at the target; UnknownParameter for a new name."""
    names = path_parameters(route.path)
    unknown = [n for n in names if n != "rtype" and n not in PATH_PARAMETERS]
    if unknown:
        raise UnknownParameter(
            f"{route}: no generator for path parameter(s) {unknown}; "
            "add one to tests/matrix_targets.py PATH_PARAMETERS"
        )
    rtypes: tuple[str | None, ...] = FHIR_TYPES if "rtype" in names else (None,)
    if "rtype" not in names and "rid" in names:
        raise UnknownParameter(f"{route}: `rid` without `rtype`; say which type it names")
    calls = []
    for rtype in rtypes:
        values = {n: (rtype or "") if n == "rtype" else PATH_PARAMETERS[n](target, rtype or "")
                  for n in names}  # fmt: skip
        url = route.path
        for name, value in values.items():
            url = url.replace("{" + name + "}", value)
        calls.append(_shape(route, url, target, rtype, values))
    return calls


def _shape(
    route: RouteKey, url: str, target: Target, rtype: str | None, values: dict[str, str]
) -> Call:
    """Query and body for a call: FHIR interactions by their form; other routes by their model."""
    method, path = route.method, route.path
    rid = values.get("rid") or (target.rid(rtype) if rtype else None)
    neutral = _neutral(rtype, target, rid) if rtype else None
    if path.startswith("/fhir"):
        if path == "/fhir" and method == "POST":
            return Call(route, method, url, json=_batch(target))
        if path.endswith("/_search"):
            return Call(route, method, url, form={"_id": rid or ""}, rtype=rtype)
        if path == "/fhir/{rtype}" and method == "GET":
            params = [("_id", rid or "")]
            if rtype == "Patient":
                params.append(("_revinclude", "Observation:subject"))
            if rtype == "Observation":
                params.append(("_include", "Observation:subject"))
            return Call(route, method, url, params=params, rtype=rtype)
        if path == "/fhir/{rtype}" and method in ("PUT", "DELETE"):
            body = {**(neutral or {}), "id": rid} if method == "PUT" else None
            return Call(route, method, url, params=[("_id", rid or "")], json=body, rtype=rtype)
        if path.endswith("$everything") and method == "POST":
            return Call(route, method, url, json={"resourceType": "Parameters"})
        if method in ("POST", "PUT"):
            body = dict(neutral or {"resourceType": "Parameters"})
            if method == "PUT" or path.endswith("{rid}/$validate"):
                body["id"] = rid
            return Call(route, method, url, json=body, rtype=rtype)
        return Call(route, method, url, rtype=rtype)
    return _other(route, url, target)


def _neutral(rtype: str, target: Target, rid: str | None) -> dict[str, Any]:
    """A valid body of the type carrying no marker, about the target's patient."""
    ref = {"reference": f"Patient/{target.person.patient_id}"}
    bodies: dict[str, dict[str, Any]] = {
        "Patient": {"resourceType": "Patient", "name": [{"family": "Neutral"}]},
        "Observation": {"resourceType": "Observation", "status": "final", "subject": ref,
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}},
        "Condition": {"resourceType": "Condition", "subject": ref, "code": {"text": "neutral"}},
        "Group": {"resourceType": "Group", "type": "person", "actual": True,
                  "member": [{"entity": ref}]},
        "Practitioner": {"resourceType": "Practitioner", "name": [{"family": "Neutral"}]},
    }  # fmt: skip
    return bodies[rtype]


def _batch(target: Target) -> dict[str, Any]:
    """A batch of reads and searches of the target's records: a classic way round a wall."""
    pid = target.person.patient_id
    urls = [f"Patient/{pid}", f"Observation/{target.rid('Observation')}",
            f"Group/{target.site.group_id}", f"Observation?patient={pid}",
            f"Condition?_id={target.rid('Condition')}", f"Patient/{pid}/_history"]  # fmt: skip
    return {"resourceType": "Bundle", "type": "batch",
            "entry": [{"request": {"method": "GET", "url": u}} for u in urls]}  # fmt: skip


# Query and body fields of non-FHIR routes, by name: ids of the target, never markers.
FIELD_VALUES: dict[str, Callable[[Target], Any]] = {
    "patient": lambda t: t.person.patient_id,
    "patient_id": lambda t: t.person.patient_id,
    "user": lambda t: t.site.spare_user_id,
    "user_id": lambda t: t.site.spare_user_id,
    "tenant": lambda t: t.site.tenant_id,
    "tenant_id": lambda t: t.site.tenant_id,
    "email": lambda _t: f"matrix-{uuid.uuid4().hex[:8]}@example.org",
    "password": lambda _t: "a long passphrase",
    "format": lambda _t: "json",
}


def _other(route: RouteKey, url: str, target: Target) -> Call:
    """A non-FHIR route: query and body filled from its declared parameters and model."""
    dependant = getattr(route.route, "dependant", None)
    params: list[tuple[str, str]] = []
    for param in getattr(dependant, "query_params", []) or []:
        alias = getattr(param, "alias", param.name)
        filler = FIELD_VALUES.get(alias)
        if filler is not None:
            params.append((alias, str(filler(target))))
    body_field = getattr(route.route, "body_field", None)
    if route.method in ("GET", "HEAD", "DELETE") or body_field is None:
        return Call(route, route.method, url, params=params)
    schema = _body_schema(route.route)
    body = _example(schema, target)
    if _is_form(route.route):
        return Call(route, route.method, url, params=params,
                    form={k: str(v) for k, v in body.items()})  # fmt: skip
    return Call(route, route.method, url, params=params, json=body)


def _body_schema(route: Any) -> dict[str, Any]:
    from pydantic import TypeAdapter

    body_field = route.body_field
    annotation = getattr(getattr(body_field, "field_info", None), "annotation", None)
    try:
        return dict(TypeAdapter(annotation).json_schema())  # type: ignore[arg-type]
    except Exception:  # an annotation pydantic cannot describe: send an empty object
        return {}


def _is_form(route: Any) -> bool:
    info = getattr(route.body_field, "field_info", None)
    return type(info).__name__ == "Form"


def _example(schema: dict[str, Any], target: Target) -> dict[str, Any]:
    """The required fields of a JSON schema, with values from the target where named."""
    defs = schema.get("$defs", {})
    properties = schema.get("properties", {})
    body = {}
    for name in schema.get("required", []):
        prop = properties.get(name, {})
        if "$ref" in prop:
            prop = defs.get(prop["$ref"].rsplit("/", 1)[1], {})
        filler = FIELD_VALUES.get(name)
        if filler is not None:
            body[name] = filler(target)
        elif "enum" in prop:
            body[name] = prop["enum"][0]
        else:
            body[name] = {"integer": 1, "number": 1, "boolean": False, "array": [],
                          "object": {}}.get(prop.get("type", "string"), "x")  # fmt: skip
    return body


def send(client: TestClient, call: Call, headers: dict[str, str]) -> Response:
    extra: dict[str, Any] = {}
    if call.form is not None:
        extra["data"] = call.form
    elif call.json is not None:
        extra["content"] = orjson.dumps(call.json)
        headers = {**headers, "Content-Type": "application/fhir+json"}
    response: Response = client.request(
        call.method, call.url, params=call.params, headers=headers, **extra
    )
    return response


def answer_text(response: Response) -> str:
    """Everything a client receives, as lower-case text: headers, body, a PDF's text."""
    parts = [f"{k}: {v}" for k, v in response.headers.items()]
    content = response.content
    parts.append(content.decode("utf-8", errors="replace"))
    if content.startswith(b"%PDF") or "pdf" in response.headers.get("content-type", ""):
        parts.append(pdf_text(content))
    return "\n".join(parts).lower()


def pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def leaks(role: str, response: Response) -> list[str]:
    text = answer_text(response)
    return [marker for marker in forbidden_markers(role) if marker in text]


def iter_calls(routes: list[RouteKey], target: Target) -> Iterator[Call]:
    for route in routes:
        yield from calls_for(route, target)
