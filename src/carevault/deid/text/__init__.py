"""Free-text PHI scrubbing: rule-based, fast, pure Python (regular expressions, word lists
shipped in `lexicon/`, and context rules).

``find_phi(text)`` returns sorted, disjoint :class:`PhiSpan` s; ``scrub_text(text)`` replaces
them by a category tag (``[NAME]``) or by a surrogate drawn from HMAC(key, category|original),
so that one patient's same original always maps to the same surrogate."""

from __future__ import annotations

from .detect import find_phi, find_phi_in_notes
from .spans import CATEGORIES, PhiSpan
from .surrogate import STYLES, scrub_text

__all__ = ["CATEGORIES", "STYLES", "PhiSpan", "find_phi", "find_phi_in_notes", "scrub_text"]
