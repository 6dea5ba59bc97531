"""The Basic Application Level Confidentiality Profile applied to one DICOM instance.

One pass over the data set, recursing into every sequence item (the table applies at every
nesting level, E.1.1): each tag is looked up in Table E.1-1 (a dict), so the cost is one
lookup per element, and values are decoded only when an action needs them (U, or a sequence).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from pydicom import Dataset
from pydicom import config as pydicom_config
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import dictionary_keyword, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from carevault.deid.dicom.burned_in import quarantine_reason
from carevault.deid.dicom.dummies import dummy_for, empty_for
from carevault.deid.dicom.errors import DicomDeidError, MalformedDicomError, NotAnInstanceError
from carevault.deid.dicom.profile import (
    DEFINITIONAL_UID_KEYWORD_ENDINGS,
    IodContext,
    resolve,
    table_code,
)
from carevault.deid.dicom.reader import MEDIA_STORAGE_DIRECTORY, read_dicom
from carevault.deid.dicom.standard import iod_types, profile_edition, profile_table
from carevault.deid.dicom.uids import UidMapper

ACTION_CODES = ("D", "Z", "X", "K", "C", "U", "private-removed")

# The VRs whose values are replaced inside a D sequence: free text, names, codes and dates.
# Code strings (CS: value types, relationship types), numbers and UIDs keep the structure.
DUMMY_CONTENT_VRS = frozenset({"AE", "AS", "DA", "DT", "TM", "LO", "LT", "PN", "SH", "ST"})
DUMMY_CONTENT_VRS |= {"UC", "UT", "UR"}

# What the output says about itself (PS3.15 E.1.1 steps 5 and 6, PS3.16 CID 7050).
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
METHOD_TEXT = "CareVault: PS3.15 E.1-1 Basic Profile (dicom-standard 2020)"  # LO: ≤ 64 chars

_SOP_CLASS_UID = 0x00080016
_MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002


def _sop_class(ds: Dataset) -> str | None:
    return _sop_class_of(ds, _SOP_CLASS_UID)


def _meta_sop_class(ds: Dataset) -> str | None:
    meta = getattr(ds, "file_meta", None)
    return _sop_class_of(meta, _MEDIA_STORAGE_SOP_CLASS_UID) if isinstance(meta, Dataset) else None


def _sop_class_of(ds: Dataset, tag: int) -> str | None:
    element = ds.get(tag)
    return str(element.value).strip("\x00 ") if element is not None and element.value else None


@dataclass(frozen=True)
class DicomResult:
    dataset: Dataset | None
    """The de-identified instance; None when quarantined."""
    quarantined: str | None
    """Why the instance is held for review (pixels may identify), or None."""
    actions: Mapping[str, int]
    """How many attributes each action touched: D, Z, X, K, C, U and private-removed."""


@cache
def _vr_of(tag: int) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]  # "OB or OW", "US or SS": the first
    except KeyError:
        return "UN"


@cache
def _is_definitional_uid(tag: int) -> bool:
    try:
        keyword = dictionary_keyword(tag)
    except KeyError:
        return False
    return keyword.endswith(DEFINITIONAL_UID_KEYWORD_ENDINGS)


def _element_vr(ds: Dataset, tag: int) -> str:
    # The element as stored (raw if never decoded): Dataset._dict, not get_item, which is the
    # hot path of the pass (pydicom is pinned, 3.0.2, and its _dict is typed).
    raw = ds._dict.get(BaseTag(tag))
    vr = raw.VR if raw is not None else None
    if not vr or vr == "UN":  # implicit VR, or UN that the dictionary knows better
        known = _vr_of(tag)
        return known if known != "UN" or not vr else "UN"
    return str(vr)


class _Pass:
    """The state of one instance: its IOD, the UID mapping and the action counts."""

    def __init__(self, mapper: UidMapper, iod: IodContext) -> None:
        self.mapper = mapper
        self.iod = iod
        self.counts: Counter[str] = Counter({code: 0 for code in ACTION_CODES})
        self.table = profile_table()

    def clean(self, ds: Dataset, parents: tuple[int, ...], dummy: bool = False) -> None:
        """Apply the table to every element of ds; dummy: ds is an item of a D sequence."""
        for tag in list(ds.keys()):
            if tag >> 16 & 1:  # odd group: private (creators included); the table says X
                del ds[tag]
                self.counts["private-removed"] += 1
                continue
            if tag & 0xFFFF == 0 and tag >> 16 != 0x0002:
                del ds[tag]  # a group length is stale once values change; it is retired
                continue
            code = table_code(self.table, tag)
            if code is None:
                self._outside_table(ds, tag, parents, dummy)
                continue
            action = resolve(code, self.iod.rank(tag, parents) if "/" in code else 0)
            self._apply(ds, tag, action, parents, dummy)

    def _outside_table(self, ds: Dataset, tag: int, parents: tuple[int, ...], dummy: bool) -> None:
        vr = _element_vr(ds, tag)
        if vr == "SQ":
            self._recurse(ds, tag, parents, dummy)
        elif dummy and vr in DUMMY_CONTENT_VRS:
            # Inside a sequence whose action is D (Content Sequence, Person Identification
            # Code Sequence …) the content itself is replaced: its text and codes identify.
            ds[tag] = DataElement(tag, vr, dummy_for(vr))
            self.counts["D"] += 1
        elif vr == "UI" and not _is_definitional_uid(tag):
            # Beyond the table: an instance UID it does not list (a newer attribute, a
            # directory record) must not survive either. Well-known UIDs are not PHI.
            element = ds[tag]
            values = _uid_values(element)
            if any(v not in UID_dictionary for v in values):
                element.value = [v if v in UID_dictionary else self.mapper.map(v) for v in values]
                self.counts["U"] += 1

    def _recurse(self, ds: Dataset, tag: int, parents: tuple[int, ...], dummy: bool) -> None:
        value = ds[tag].value
        if isinstance(value, Sequence):
            inner = (*parents, tag)
            for item in value:
                self.clean(item, inner, dummy)

    def _apply(
        self, ds: Dataset, tag: int, action: str, parents: tuple[int, ...], dummy: bool
    ) -> None:
        self.counts[action] += 1
        if action == "X":
            del ds[tag]
            return
        vr = _element_vr(ds, tag)
        if action == "Z":
            ds[tag] = DataElement(tag, vr, empty_for(vr))
        elif vr == "SQ":
            # D on a sequence: keep its items (conformance) with dummy content. U (X/Z/U*),
            # K: keep them, cleaned by the table (the UIDs they reference are remapped).
            self._recurse(ds, tag, parents, dummy or action in ("D", "C"))
        elif action == "U" or vr == "UI":
            element = ds[tag]
            element.value = [self.mapper.map(v) for v in _uid_values(element)]
        elif action in ("D", "C"):  # C (clean) is not in the Basic Profile: treated as D
            ds[tag] = DataElement(tag, vr, dummy_for(vr))
        # K: kept as it is


def _uid_values(element: DataElement) -> list[str]:
    value = element.value
    if value is None or value == "":
        return []
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace").split("\\")
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _mark(ds: Dataset) -> None:
    """PS3.15 E.1.1: say that identity was removed, and how."""
    ds.add_new(0x00120062, "CS", "YES")  # Patient Identity Removed
    ds.add_new(0x00120063, "LO", METHOD_TEXT)  # De-identification Method
    code = Dataset()
    for tag, vr, value in zip((0x00080100, 0x00080102, 0x00080104), ("SH", "SH", "LO"),
                              BASIC_PROFILE_CODE, strict=True):  # fmt: skip
        code.add_new(tag, vr, value)
    ds.add_new(0x00120064, "SQ", Sequence([code]))  # De-identification Method Code Sequence


class DicomDeidentifier:
    """De-identify DICOM instances under one project key (the key of the UID mapping)."""

    def __init__(self, key: bytes) -> None:
        self._mapper = UidMapper(key)
        self._iods = iod_types()  # loads the tables once (about half a second)
        self.edition = profile_edition()

    def describe(self) -> dict[str, str]:
        """The rules applied, for the export report (names and the edition, never a value)."""
        return {
            "profile": "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile",
            "edition": self.edition,
            "method_code": "113100 (DCM) Basic Application Confidentiality Profile",
            "uids": "HMAC-SHA256 under the project key, as 2.25.<UUIDv8> UIDs",
            "private_tags": "removed at every depth",
            "beyond_the_table": "DA/DT/TM not in the table as X/Z/D; unlisted instance UIDs "
            "remapped; SR Text Value, Structure Set Label/Name; file meta AE titles removed",
            "quarantine": "Burned In Annotation not NO, Recognizable Visual Features YES, or "
            "absent for US, SC, OT, XA, RF, ES, XC, GM, SM, OP, DOC or SC/US/VL/encapsulated "
            "SOP classes",
        }

    def deidentify(self, data: bytes | Dataset) -> DicomResult:
        """Refuse (DicomDeidError), quarantine, or return the de-identified data set.

        A Dataset argument is left untouched: the profile runs on a deep copy.
        """
        # pydicom's value validation warns (and logs) with the offending value, which may be
        # PHI; values are replaced here anyway, so it is switched off while we work (and is
        # faster). pydicom's settings are process-wide: concurrent callers share them.
        with pydicom_config.disable_value_validation():
            return self._deidentify(data)

    def _deidentify(self, data: bytes | Dataset) -> DicomResult:
        ds = read_dicom(bytes(data)) if isinstance(data, bytes | bytearray) else data
        if not isinstance(ds, Dataset):
            raise DicomDeidError("expected DICOM bytes or a pydicom Dataset")
        if MEDIA_STORAGE_DIRECTORY in (_sop_class(ds), _meta_sop_class(ds)):
            raise NotAnInstanceError("a DICOMDIR is not de-identified: rebuild it afterwards")
        try:
            reason = quarantine_reason(ds)
            if reason is not None:
                return DicomResult(None, reason, MappingProxyType(dict.fromkeys(ACTION_CODES, 0)))
            if ds is data:
                ds = copy.deepcopy(ds)
            iod = IodContext.for_sop_class(self._iods, _sop_class(ds) or _meta_sop_class(ds))
            run = _Pass(self._mapper, iod)
            run.clean(ds, ())
            meta = getattr(ds, "file_meta", None)
            if isinstance(meta, Dataset) and len(meta):
                run.clean(meta, ())
                meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID  # who wrote it now
                if 0x00020013 in meta:
                    del meta[0x00020013]  # the old writer's version name goes with its UID
            _mark(ds)
        except DicomDeidError:
            raise
        except Exception as exc:  # a value pydicom cannot decode: refuse, never half-clean
            raise MalformedDicomError(f"cannot de-identify ({type(exc).__name__})") from exc
        return DicomResult(ds, None, MappingProxyType(dict(run.counts)))


__all__ = ["ACTION_CODES", "DicomDeidentifier", "DicomResult"]
