"""The residual scan: search every output resource for the original identifying values of the
exported patients. A finding names the kind, the resource type and the element, never the
value; any finding fails the export (export.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from carevault.deid.fhir.strategies.scrub_attachment import attachment_text
from carevault.deid.fhir.values import KnownValues

# Structural strings: terminology systems and codes, extension URLs, profiles and MIME types
# are the same for everyone, and a code may collide with a ZIP or an identifier by chance.
_STRUCTURAL = frozenset(
    {"system", "code", "url", "profile", "resourceType", "contentType", "language", "status",
     "version", "use", "unit"}
)  # fmt: skip


@dataclass
class ResidualScan:
    kinds: frozenset[str]
    findings: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(kind, resource type, element path) -> occurrences."""
    resources: int = 0
    strings: int = 0

    def scan(self, values: KnownValues, body: dict[str, Any]) -> int:
        """Scan one de-identified resource; returns the number of findings in it."""
        self.resources += 1
        rtype = str(body.get("resourceType", ""))
        found = 0
        for path, text in _texts(body, rtype):
            self.strings += 1
            for hit in values.find(text, self.kinds):
                self.findings[(hit.kind, rtype, path)] += 1
                found += 1
        return found

    @property
    def clean(self) -> bool:
        return not self.findings

    def add(self, other: ResidualScan) -> None:
        self.findings.update(other.findings)
        self.resources += other.resources
        self.strings += other.strings

    def as_dict(self) -> dict[str, Any]:
        return {
            "kinds": sorted(self.kinds),
            "resources_scanned": self.resources,
            "strings_scanned": self.strings,
            "clean": self.clean,
            "findings": [
                {"kind": k, "resource_type": t, "element": p, "count": n}
                for (k, t, p), n in sorted(self.findings.items())
            ],
        }


def _texts(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        decoded = attachment_text(node) if "data" in node else None
        if decoded is not None:
            yield f"{path}.data", decoded
        for key, value in node.items():
            if key in _STRUCTURAL or (key == "data" and decoded is not None):
                continue
            yield from _texts(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item, path)
    elif isinstance(node, str):
        yield path, node
