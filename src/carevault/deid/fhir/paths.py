"""FHIRPath-like element paths: `Patient.contact.name`, `**.identifier`, `*.onset*Age.value`.

A path is matched against an element's location, its segments being the resource type and
the element names on the way down (arrays are transparent, as in FHIRPath). A segment may
be a glob (`deceased*`, `*Age`); `**` matches any number of segments, none included.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

_GLOB = frozenset("*?[")


@dataclass(frozen=True)
class PathPattern:
    text: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> PathPattern:
        segments = tuple(text.replace("[x]", "*").split("."))
        if not text or any(s == "" for s in segments):
            raise ValueError(f"empty segment in element path {text!r}")
        return cls(text, segments)

    def matches(self, location: tuple[str, ...]) -> bool:
        return _match(self.segments, location)

    @property
    def literal_head(self) -> str | None:
        """The resource type this pattern is bound to, or None for any type."""
        head = self.segments[0]
        return None if _GLOB & set(head) else head


@lru_cache(maxsize=65536)
def _match(pattern: tuple[str, ...], location: tuple[str, ...]) -> bool:
    if not pattern:
        return not location
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        # `**` eats zero or more segments
        return any(_match(rest, location[i:]) for i in range(len(location) + 1))
    if not location:
        return False
    ok = fnmatchcase(location[0], head) if _GLOB & set(head) else head == location[0]
    return ok and _match(rest, location[1:])
