"""The residual scan: does any original identifying value survive anywhere in the output?

Run on each released instance against its original (the export fails if anything is found).
The identifying values are those of Table E.1-1 that name, date or number someone (every PN,
DA and DT of the table, and its IDs, numbers, names, addresses, labels …), and every instance
UID, wherever they sit (nested sequences, file meta). Findings name the tag, never the value.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom import Dataset
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import keyword_for_tag
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from carevault.deid.dicom.profile import DEFINITIONAL_UID_KEYWORD_ENDINGS
from carevault.deid.dicom.standard import profile_table

# Which table attributes identify someone, by the words of their keyword (PS3.6 keywords).
IDENTIFYING_WORDS = (
    "ID", "Number", "Name", "Address", "Telephone", "Institution", "Physician", "Operator",
    "Locator", "Serial", "Label", "Accession", "Issuer", "Birth",
)  # fmt: skip
IDENTIFYING_VRS = frozenset({"PN", "DA", "DT"})
_SKIPPED_VRS = frozenset({"SQ", "OB", "OW", "OD", "OF", "OL", "OV", "UN"})
_MIN_LENGTH = 4  # "M", "YES", "CT": too short to be told from ordinary values
_MIN_SUBSTRING = 8  # a value found inside another (a name in a comment) counts from 8 chars


def walk(ds: Dataset) -> Iterator[tuple[int, str, object]]:
    """(tag, VR, value) of every element at every depth, the file meta included."""
    meta = getattr(ds, "file_meta", None)
    if isinstance(meta, Dataset):
        yield from walk(meta)
    for element in ds.iterall():
        yield int(element.tag), str(element.VR), element.value


def _strings(value: object) -> list[str]:
    if value is None or isinstance(value, bytes | bytearray | Dataset | Sequence):
        return []
    if isinstance(value, list | tuple | MultiValue):
        return [text for item in value for text in _strings(item)]
    return [str(value).strip("\x00 ")]


def _is_short_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return len(text) < 8  # measurements are not identifiers; dates (8 digits) and UIDs are


def _is_identifying(tag: int, vr: str) -> bool:
    if vr == "UI":
        if keyword_for_tag(tag).endswith(DEFINITIONAL_UID_KEYWORD_ENDINGS):
            return False  # SOP classes, transfer syntaxes, coding schemes: definitions
        return tag >> 16 != 0x0002 or tag == 0x00020003
    if tag not in profile_table().exact:
        return False
    return vr in IDENTIFYING_VRS or any(word in keyword_for_tag(tag) for word in IDENTIFYING_WORDS)


def identifying_values(original: Dataset) -> set[str]:
    """The original values that must not appear in the output."""
    found: set[str] = set()
    for tag, vr, value in walk(original):
        if vr in _SKIPPED_VRS or tag >> 16 & 1 or not _is_identifying(tag, vr):
            continue  # sequences are walked into; private tags must simply be gone
        for text in _strings(value):
            if vr == "UI" and text in UID_dictionary:
                continue
            if len(text) >= _MIN_LENGTH and not _is_short_number(text):
                found.add(text)
    return found


def residual_scan(original: Dataset, output: Dataset) -> list[str]:
    """Where the output still holds an original identifying value or a private tag: a list of
    "(gggg,eeee) holds an original value" findings (empty when clean), values never shown."""
    secrets = identifying_values(original)
    long_secrets = [secret for secret in secrets if len(secret) >= _MIN_SUBSTRING]
    findings: list[str] = []
    for tag, vr, value in walk(output):
        where = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if tag >> 16 & 1:
            findings.append(f"{where} is a private tag")
            continue
        if vr in _SKIPPED_VRS:
            continue
        for text in _strings(value):
            if text in secrets or any(secret in text for secret in long_secrets):
                findings.append(f"{where} holds an original value")
    return findings
