"""Resolve a Table E.1-1 code to one action, for one attribute, in one IOD (PS3.15 E.1.1).

The combined codes keep an attribute only as far as the IOD needs it: X/Z is "X unless Z is
required to keep the IOD conformant (Type 3 vs Type 2)", X/D "X unless D is required (Type 3
vs Type 1)", X/Z/D and Z/D likewise, and X/Z/U* "X unless Z, or the replacement of the UIDs
the sequence holds (U), is required (Type 3 vs 2 vs 1)".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from carevault.deid.dicom.standard import IodTypes, ProfileTable

# How present each action leaves an attribute: X removes it, Z keeps it empty, D and U keep a
# value. A Type 2 attribute needs presence 1, a Type 1 attribute presence 2.
PRESENCE = {"X": 0, "Z": 1, "D": 2, "U": 2, "K": 2, "C": 2}

# Attributes outside Table E.1-1 removed anyway: the file meta AE titles name the sending and
# receiving stations (as Station Name does in the data set), and private file meta data is
# private. Rules as data: tag → action.
EXTRA_RULES: dict[int, str] = {
    0x00020016: "X",  # Source Application Entity Title
    0x00020017: "X",  # Sending Application Entity Title
    0x00020018: "X",  # Receiving Application Entity Title
    0x00020100: "X",  # Private Information Creator UID
    0x00020102: "X",  # Private Information
    # Free text and labels the table of this edition does not list but that people type:
    0x0040A160: "D",  # Text Value: SR free text, inside the Content Sequence (itself D)
    0x30060002: "X/Z/D",  # Structure Set Label (seen holding the Study ID)
    0x30060004: "X/Z/D",  # Structure Set Name
}

# UI attributes outside the table that name a definition (a class, a syntax, a coding scheme),
# never an instance: they keep their value. Every other UID not in pydicom's registry of
# well-known UIDs is remapped (a safety net beyond the table, counted as U).
DEFINITIONAL_UID_KEYWORD_ENDINGS = (
    "ClassUID",
    "TransferSyntaxUID",
    "CodingSchemeUID",
    "ContextUID",
    "MappingResourceUID",
    "ContextGroupExtensionCreatorUID",
    "ImplementationClassUID",
)


@cache
def resolve(code: str, rank: int | None) -> str:
    """One action for a code; rank is the attribute's type strength, None if the IOD is unknown.

    >>> resolve("X/Z/D", 0), resolve("X/Z/D", 1), resolve("X/Z/D", 2)
    ('X', 'Z', 'D')
    """
    options = [part.rstrip("*") for part in code.split("/")]
    if len(options) == 1:
        return options[0]
    if rank is None:  # unknown IOD: keep conformance whatever the type (every option is safe)
        return options[-1]
    for option in options:  # the table lists options from the weakest to the strongest
        if PRESENCE[option] >= rank:
            return option
    return options[-1]


@dataclass
class IodContext:
    """The types of the combined-code tags in the instance's IOD, with a per-tag fallback."""

    types: dict[int, dict[tuple[int, ...], int]] | None
    _fallback: dict[int, int] = field(default_factory=dict)

    @classmethod
    def for_sop_class(cls, iods: IodTypes, sop_class_uid: str | None) -> IodContext:
        ciod = iods.sop_to_ciod.get(sop_class_uid or "")
        return cls(iods.by_ciod.get(ciod) if ciod else None)

    def rank(self, tag: int, parents: tuple[int, ...]) -> int | None:
        if self.types is None:
            return None
        by_path = self.types.get(tag)
        if by_path is None:
            return 0  # not in this IOD at all: like Type 3, nothing needs it
        found = by_path.get(parents)
        if found is not None:
            return found
        # In a nesting the tables do not list (a private or a newer macro): the strongest
        # type the attribute has anywhere in the IOD, so conformance is never broken.
        fallback = self._fallback.get(tag)
        if fallback is None:
            fallback = self._fallback[tag] = max(by_path.values())
        return fallback


def table_code(table: ProfileTable, tag: int) -> str | None:
    """The Basic Profile code of a standard (even-group) tag, or None when it is not listed."""
    code = table.exact.get(tag)
    if code is not None:
        return code
    group = tag >> 16
    if group & 0xFF00 in (0x5000, 0x6000):  # repeating groups: curves, overlays
        for mask, value, masked_code in table.masked:
            if tag & mask == value:
                return masked_code
    return EXTRA_RULES.get(tag) or table.safety_net.get(tag)
