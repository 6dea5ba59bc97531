"""FHIR Bundles (collection, transaction, batch, searchset): their entries' resources, streamed.

Two streaming passes over the file: the first reads the Bundle's type and the `urn:uuid`
full URLs of its entries, the second yields each resource with those references rewritten
to `Type/id`, so a transaction written with `urn:uuid` references imports as it reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson
import orjson

from carevault.transfer.sources import Item, UnreadableFile

IMPORTED_TYPES = frozenset({"collection", "transaction", "batch", "searchset"})
_URN = "urn:uuid:"


class BundleFile:
    unit = "entry"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self.size_bytes = path.stat().st_size
        self._urns: dict[str, str] | None = None

    def items(self) -> Iterator[Item]:
        if self._urns is None:  # read again for each type an import writes: scan once
            self._urns = self._check_and_map()
        urns = self._urns
        with self.path.open("rb") as stream:
            try:
                entries = ijson.items(stream, "entry.item", use_float=True)
                for number, entry in enumerate(entries, 1):
                    resource = entry.get("resource") if isinstance(entry, dict) else None
                    if _is_outcome(entry):
                        continue  # a searchset's OperationOutcome is about the search, not data
                    if not isinstance(resource, dict):
                        yield Item(number, b"null")  # refused by the check: not a resource
                        continue
                    yield Item(number, orjson.dumps(_with_ids(resource, entry, urns)))
            except ijson.JSONError:
                raise UnreadableFile("not valid JSON") from None

    def count_hint(self) -> None:
        return None  # known only once the file has been read

    def _check_and_map(self) -> dict[str, str]:
        """The Bundle's own checks, and `urn:uuid:…` → `Type/id` for its entries."""
        try:
            resource_type, kind, entries = _scan(self.path)
        except ijson.JSONError:
            raise UnreadableFile("not valid JSON") from None
        if resource_type != "Bundle":
            raise UnreadableFile("not a FHIR Bundle")
        if kind not in IMPORTED_TYPES:
            raise UnreadableFile(f"a Bundle of type {kind!s} is not imported")
        return {
            url: f"{rtype}/{rid or url.removeprefix(_URN)}"
            for url, rtype, rid in entries
            if url.startswith(_URN) and rtype
        }


def looks_like_bundle(path: Path) -> bool:
    with path.open("rb") as stream:
        try:
            for prefix, event, value in ijson.parse(stream):
                if prefix == "resourceType" and event == "string":
                    return bool(value == "Bundle")
        except ijson.JSONError:
            return True  # a broken Bundle is still reported, not passed over
    return False


def _scan(path: Path) -> tuple[str | None, str | None, list[tuple[str, str | None, str | None]]]:
    """The Bundle's resourceType and type, and (fullUrl, type, id) of each entry: small,
    whatever the size of the resources."""
    found: list[tuple[str, str | None, str | None]] = []
    resource_type = kind = url = rtype = rid = None
    with path.open("rb") as stream:
        for prefix, event, value in ijson.parse(stream):
            if event == "string":
                if prefix == "resourceType":
                    resource_type = value
                elif prefix == "type":
                    kind = value
                elif prefix == "entry.item.fullUrl":
                    url = value
                elif prefix == "entry.item.resource.resourceType":
                    rtype = value
                elif prefix == "entry.item.resource.id":
                    rid = value
            elif prefix == "entry.item" and event == "start_map":
                url = rtype = rid = None
            elif prefix == "entry.item" and event == "end_map" and url:
                found.append((url, rtype, rid))
    return resource_type, kind, found


def _is_outcome(entry: Any) -> bool:
    search = entry.get("search") if isinstance(entry, dict) else None
    return isinstance(search, dict) and search.get("mode") == "outcome"


def _with_ids(resource: dict[str, Any], entry: dict[str, Any], urns: dict[str, str]) -> Any:
    """The resource with `urn:uuid` references rewritten; an id-less entry takes its uuid."""
    rewritten = _rewrite(resource, urns)
    url = entry.get("fullUrl")
    if "id" not in rewritten and isinstance(url, str) and url in urns:
        rewritten["id"] = urns[url].split("/", 1)[1]
    return rewritten


def _rewrite(node: Any, urns: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, urns) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {key: _rewrite(value, urns) for key, value in node.items()}
    reference = copy.get("reference")
    if isinstance(reference, str) and reference in urns:
        copy["reference"] = urns[reference]
    return copy
