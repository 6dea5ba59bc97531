"""Reading a batch or transaction Bundle into entries: method, target, condition, resource.

Messages name the entry and the element, never a value: URLs and conditions carry
identifiers.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from carevault.audit.models import Action
from carevault.errors import CareVaultError, Invalid, TooLarge
from carevault.records.params import SUPPORTED_TYPES

Query = tuple[tuple[str, str], ...]

METHODS = ("DELETE", "POST", "PUT", "GET")
"""FHIR's processing order for a transaction."""
_ACTIONS = {
    "GET": Action.READ,
    "POST": Action.CREATE,
    "PUT": Action.UPDATE,
    "DELETE": Action.DELETE,
}
_PERMISSIONS = {"GET": "read", "POST": "write", "PUT": "write", "DELETE": "delete"}
_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')
_IGNORED_PARAMS = frozenset({"_format", "_pretty"})


@dataclass(frozen=True)
class Entry:
    index: int
    method: str
    rtype: str
    rid: str | None
    """The id in the URL (Type/id), if any."""
    query: Query | None
    """Search parameters in the URL (Type?params): a search, or a conditional PUT/DELETE."""
    full_url: str | None
    resource: dict[str, Any] | None
    if_none_exist: Query | None
    if_match: int | None

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def action(self) -> Action:
        if self.method == "GET" and self.rid is None:
            return Action.SEARCH
        return _ACTIONS[self.method]

    @property
    def permission(self) -> str:
        return _PERMISSIONS[self.method]

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.rid,) if self.rid else ()

    @property
    def detail(self) -> str:
        """For the audit: the entry and the names (never values) of its conditions."""
        names = sorted({n for n, _ in (self.query or ()) + (self.if_none_exist or ())})
        return f"{self.where}" + (f"; params={','.join(names)}" if names else "")


@dataclass(frozen=True)
class BadEntry:
    """An entry that could not be read; a batch answers it alone, a transaction fails on it."""

    index: int
    error: CareVaultError
    rtype: str


def entries(bundle: Any, kind: str, max_entries: int) -> list[Entry | BadEntry]:
    """The entries of a Bundle of this type; refusals for the Bundle as a whole raise."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Invalid("the body must be a Bundle")
    if bundle.get("type") != kind:
        raise Invalid(f"the Bundle must be of type {kind}")
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise Invalid("Bundle.entry must be a list")
    if len(raw) > max_entries:
        raise TooLarge(f"a Bundle may carry at most {max_entries} entries")
    parsed: list[Entry | BadEntry] = []
    for index, item in enumerate(raw):
        try:
            parsed.append(_entry(index, item))
        except CareVaultError as exc:
            parsed.append(BadEntry(index, at_entry(index, exc), _type_hint(item)))
    full_urls = [e.full_url for e in parsed if isinstance(e, Entry) and e.full_url]
    if len(full_urls) != len(set(full_urls)):
        raise Invalid("two entries of the Bundle have the same fullUrl")
    return parsed


def at_entry(index: int, exc: CareVaultError) -> CareVaultError:
    """The same refusal, saying which entry it is about."""
    where = f"Bundle.entry[{index}]"
    if exc.message.startswith(where):
        return exc
    tagged = copy.copy(exc)
    tagged.message = f"{where}: {exc.message}"
    tagged.args = (tagged.message,)
    return tagged


def condition(query: str, what: str) -> Query:
    """Search parameters that must pick out one resource (conditional interactions)."""
    params = tuple(
        (name, value)
        for name, value in parse_qsl(query.lstrip("?"), keep_blank_values=True)
        if name not in _IGNORED_PARAMS
    )
    if not params or any(name.startswith("_") and name != "_id" for name, _ in params):
        raise Invalid(f"{what} needs search parameters (name=value) and no result parameters")
    return params


def if_match(value: Any) -> int | None:
    if value is None:
        return None
    match = _ETAG.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise Invalid('ifMatch must be a version ETag such as W/"3"')
    return int(match[1])


def _entry(index: int, item: Any) -> Entry:
    if not isinstance(item, dict):
        raise Invalid("an entry must be an object")
    request = item.get("request")
    if not isinstance(request, dict):
        raise Invalid("an entry needs a request (method and url)")
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        raise Invalid("request.method must be GET, POST, PUT or DELETE")
    if not isinstance(url, str) or not url or "://" in url:
        raise Invalid("request.url must be a relative URL such as Patient/123 or Patient?name=x")
    path, sep, query = url.lstrip("/").partition("?")
    parts = path.split("/")
    rtype = parts[0]
    rid = parts[1] if len(parts) == 2 and parts[1] else None
    if len(parts) > (1 if sep else 2) or (len(parts) == 2 and rid is None):
        raise Invalid("request.url must be Type, Type/id or Type?params")
    full_url = item.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise Invalid("fullUrl must be a string")
    resource = item.get("resource")
    if method in ("POST", "PUT") and not isinstance(resource, dict):
        raise Invalid(f"a {method} entry needs a resource")
    params: Query | None = None
    if method == "POST" and (rid is not None or sep):
        raise Invalid("a POST entry's url is the resource type alone")
    if method in ("PUT", "DELETE") and rid is None:
        params = condition(query, f"a conditional {method}")
    elif method == "GET" and rid is None:
        params = tuple(parse_qsl(query, keep_blank_values=True))
    if_none = request.get("ifNoneExist")
    if if_none is not None and (method != "POST" or not isinstance(if_none, str)):
        raise Invalid("ifNoneExist belongs to POST entries and is a query string")
    return Entry(
        index=index,
        method=method,
        rtype=rtype,
        rid=rid,
        query=params,
        full_url=full_url,
        resource=resource if method in ("POST", "PUT") else None,
        if_none_exist=condition(if_none, "ifNoneExist") if if_none is not None else None,
        if_match=if_match(request.get("ifMatch")) if method in ("PUT", "DELETE") else None,
    )


def _type_hint(item: Any) -> str:
    """The resource type an unreadable entry seems to be about, for its audit entry."""
    request = item.get("request") if isinstance(item, dict) else None
    url = request.get("url") if isinstance(request, dict) else None
    head = url.lstrip("/").partition("?")[0].split("/")[0] if isinstance(url, str) else ""
    return head if head in SUPPORTED_TYPES else "Bundle"
