"""How strings and tokens are normalized before they are hashed, on both write and search."""

from __future__ import annotations

import unicodedata

MAX_PREFIX = 32
"""Names are matched on their first 32 characters; longer prefixes are cut to that."""
MAX_CONTAINS = 128
"""`:contains` sees the first 128 folded characters of a value (and of a query)."""
MIN_CONTAINS = 3


def fold(text: str) -> str:
    """Case- and accent-insensitive form, as FHIR string search asks for."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.split())


def telecom(value: str) -> str:
    """Phone numbers compare by their digits; emails case-insensitively."""
    if "@" in value:
        return value.strip().casefold()
    digits = "".join(c for c in value if c.isdigit() or c == "+")
    return digits or value.strip().casefold()


def trigrams(folded: str) -> set[str]:
    """The distinct 3-character windows of a folded value (its first MAX_CONTAINS characters)."""
    text = folded[:MAX_CONTAINS]
    return {text[i : i + 3] for i in range(len(text) - 2)}
