"""The PS3.15 Table E.1-1 and the PS3.3 IOD tables, loaded as data from `dicom-standard`.

The MIT-licensed PyPI package `dicom-standard` 0.1.0 (Innolitics) installs JSON parsed from
the NEMA web edition of the standard into `<prefix>/standard/`. Its files are dated
2020-04-07, so they reflect the edition current then (2020a, published 2020-01-22, or 2020b;
the package does not name the edition, hence the date and a digest in PROFILE_EDITION).
Nothing of Table E.1-1 is typed here: every attribute and action comes from that JSON.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydicom._dicom_dict import DicomDictionary

from carevault.deid.dicom.errors import ProfileDataError

DISTRIBUTION = "dicom-standard"
PROFILE_FILE = "confidentiality_profile_attributes.json"
PARSED_ON = "2020-04-07"  # the timestamp of the JSON files in the dicom-standard 0.1.0 wheel

# Type strength in an IOD: a stronger type forces a stronger combined action (E.1.1). A
# conditional type counts as its unconditional one: the attribute is present, so its
# condition is taken as met (the safe side for conformance; every option removes the value).
# Where an attribute has several types in one IOD (several modules), the strongest counts.
TYPE_RANK = {"3": 0, "2C": 1, "2": 1, "1C": 2, "1": 2}

# Beyond the table: every date and time attribute it does not list (Instance Creation Date,
# Date of Last Calibration …) is handled as X/Z/D, because HIPAA Safe Harbor removes every
# element of a date but the year, and a residual scan must find no original date. The tags
# come from pydicom's data dictionary (PS3.6), by VR: still data, not a hand-typed list.
SAFETY_NET_VRS = frozenset({"DA", "DT", "TM"})
SAFETY_NET_CODE = "X/Z/D"

_TAG = re.compile(r"\(([0-9A-FX]{4}),([0-9A-FX]{4})\)")


@dataclass(frozen=True)
class ProfileTable:
    """Table E.1-1 as data: exact tags, group-masked tags (50xx, 60xx) and the private rule."""

    exact: dict[int, str]
    """tag → Basic Profile code (D, Z, X, U, X/Z, X/D, X/Z/D, Z/D, X/Z/U*)."""
    safety_net: dict[int, str]
    """Tags outside the table handled anyway (see SAFETY_NET_VRS), with their code."""
    masked: tuple[tuple[int, int, str], ...]
    """(mask, value, code): the attribute matches when tag & mask == value."""
    private_code: str
    names: dict[int, str]


@dataclass(frozen=True)
class IodTypes:
    """For the tags with a combined code: their Type in each IOD, by nesting path."""

    by_ciod: dict[str, dict[int, dict[tuple[int, ...], int]]]
    """ciod id → tag → parent sequence path → type rank (0 = Type 3, 1 = Type 2, 2 = Type 1)."""
    sop_to_ciod: dict[str, str]


def data_dir() -> Path:
    """Where the package put its JSON: asked of the installed distribution, then sys.prefix."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
        for entry in dist.files or ():
            if entry.name == PROFILE_FILE:
                return Path(str(dist.locate_file(entry))).resolve().parent
    except importlib.metadata.PackageNotFoundError:
        pass
    fallback = Path(sys.prefix) / "standard"
    if (fallback / PROFILE_FILE).is_file():
        return fallback
    raise ProfileDataError(f"{DISTRIBUTION} is not installed: {PROFILE_FILE} not found")


def _load(name: str) -> Any:
    path = data_dir() / name
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ProfileDataError(f"cannot read {name} of {DISTRIBUTION}") from exc


def _merge_codes(first: str, second: str) -> str:
    """The table lists (3008,0105) twice (X/Z and X): keep the code with more options."""
    return first if len(first) >= len(second) else second


@cache
def profile_table() -> ProfileTable:
    exact: dict[int, str] = {}
    names: dict[int, str] = {}
    masked: list[tuple[int, int, str]] = []
    private_code = ""
    for row in _load(PROFILE_FILE):
        code = row["basicProfile"]
        found = _TAG.fullmatch(row["tag"])
        if found is None:
            if "ODD" in row["tag"].upper():  # "(GGGG,EEEE) WHERE GGGG IS ODD"
                private_code = code
                continue
            raise ProfileDataError("unexpected tag form in Table E.1-1")
        group, elem = found.groups()
        if "X" in group + elem:
            mask = int("".join("0" if c == "X" else "F" for c in group + elem), 16)
            value = int((group + elem).replace("X", "0"), 16)
            masked.append((mask, value, code))
            continue
        tag = int(group + elem, 16)
        exact[tag] = _merge_codes(exact[tag], code) if tag in exact else code
        names[tag] = row["name"]
    if len(exact) < 300 or private_code != "X":  # the pass removes private tags outright
        raise ProfileDataError(f"{PROFILE_FILE} looks incomplete or changed its private rule")
    safety_net = {
        int(tag): SAFETY_NET_CODE
        for tag, entry in DicomDictionary.items()
        if entry[0] in SAFETY_NET_VRS and tag not in exact and tag >> 16 != 0x0002
    }
    return ProfileTable(exact, safety_net, tuple(masked), private_code, names)


def _path_tags(path: str) -> tuple[int, ...]:
    """'module:00081110:00081150' → (0x00081110, 0x00081150); repeating groups (60xx) → ()."""
    try:
        return tuple(int(part, 16) for part in path.split(":")[1:])
    except ValueError:
        return ()


def _add(
    into: dict[int, dict[tuple[int, ...], int]], tags: tuple[int, ...], kind: str, wanted: set[int]
) -> None:
    tag, parents = tags[-1], tags[:-1]
    rank = TYPE_RANK.get(kind)
    if tag not in wanted or rank is None:
        return
    by_path = into.setdefault(tag, {})
    by_path[parents] = max(rank, by_path.get(parents, -1))


@cache
def iod_types() -> IodTypes:
    """Index the types of the combined-code tags per IOD (modules and functional groups)."""
    from carevault.deid.dicom.profile import EXTRA_RULES  # the rules beyond the table

    table = profile_table()
    extra = {tag for tag, code in EXTRA_RULES.items() if "/" in code}
    wanted = {tag for tag, code in table.exact.items() if "/" in code} | set(table.safety_net)
    wanted |= extra
    module_rows: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for row in _load("module_to_attributes.json"):
        tags = _path_tags(row["path"])
        if tags and tags[-1] in wanted:
            module_rows.setdefault(row["moduleId"], []).append((tags, row["type"]))
    macro_rows: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for row in _load("macro_to_attributes.json"):
        tags = _path_tags(row["path"])
        if tags and tags[-1] in wanted:
            macro_rows.setdefault(row["macroId"], []).append((tags, row["type"]))
    by_ciod: dict[str, dict[int, dict[tuple[int, ...], int]]] = {}
    for row in _load("ciod_to_modules.json"):
        into = by_ciod.setdefault(row["ciodId"], {})
        for tags, kind in module_rows.get(row["moduleId"], ()):
            _add(into, tags, kind, wanted)
    # Functional group macros sit in an item of the Shared or Per-Frame Functional Groups.
    for row in _load("ciod_to_fg_macros.json"):
        into = by_ciod.setdefault(row["ciodId"], {})
        for tags, kind in macro_rows.get(row["macroId"], ()):
            for group_seq in (0x52009229, 0x52009230):
                _add(into, (group_seq, *tags), kind, wanted)
    ciod_ids = {row["name"]: row["id"] for row in _load("ciods.json")}
    sop_to_ciod = {
        row["id"]: ciod_ids[row["ciod"]] for row in _load("sops.json") if row["ciod"] in ciod_ids
    }
    return IodTypes(by_ciod, sop_to_ciod)


@cache
def profile_edition() -> str:
    digest = hashlib.sha256((data_dir() / PROFILE_FILE).read_bytes()).hexdigest()[:12]
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return (
        f"DICOM PS3.15 Table E.1-1, NEMA web edition current on {PARSED_ON} (2020a/2020b), "
        f"as parsed by {DISTRIBUTION} {version} ({PROFILE_FILE} sha256:{digest})"
    )
