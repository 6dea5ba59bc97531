"""Bytes to a pydicom Dataset, or a clear refusal (a DicomDeidError subclass), never a crash.

A Part 10 file has 128 bytes of preamble and "DICM"; a bare data set (older files, some test
files) starts directly with a group 0002 or 0008 element. Anything else is not DICOM: forcing
pydicom to parse a PNG would "succeed" with garbage, so that is never attempted.
"""

from __future__ import annotations

import io
import struct
import warnings

import pydicom
from pydicom import Dataset
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from carevault.deid.dicom.errors import (
    MalformedDicomError,
    NotAnInstanceError,
    NotDicomError,
    TruncatedDicomError,
)

_PREAMBLE = 128
_FIRST_GROUPS = frozenset({0x0002, 0x0008})
_UNDEFINED = 0xFFFFFFFF
_DEFLATED = "1.2.840.10008.1.2.1.99"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_SOP_CLASS_UID, _SOP_INSTANCE_UID, _ROWS = 0x00080016, 0x00080018, 0x00280010
_PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


def _looks_like_bare_dataset(data: bytes) -> bool:
    """A data set without preamble starts with the tag of a group 0002 or 0008 element."""
    if len(data) < 8:
        return False
    little, big = struct.unpack("<H", data[:2])[0], struct.unpack(">H", data[:2])[0]
    return little in _FIRST_GROUPS or big in _FIRST_GROUPS


def _check_complete(ds: Dataset, size: int) -> None:
    """pydicom keeps a value cut short by the end of the file: find it by its length."""
    last_end = 0
    for raw in ds._dict.values():  # as stored: iterating a Dataset would decode every value
        if not isinstance(raw, RawDataElement) or raw.length == _UNDEFINED:
            last_end = 0  # an undefined-length value ends with a delimiter pydicom checked
            continue
        if raw.value is not None and len(raw.value) != raw.length:
            raise TruncatedDicomError("the file ends inside an element value")
        last_end = raw.value_tell + raw.length
    if 0 < last_end < size:
        raise TruncatedDicomError("the file ends inside an element header")


def _check_meta_complete(ds: Dataset, size: int) -> None:
    """The file meta group says its own length: the file must hold at least that much."""
    meta = getattr(ds, "file_meta", None)
    length = meta.get("FileMetaInformationGroupLength") if meta is not None else None
    if isinstance(length, int) and size < _PREAMBLE + 4 + 12 + length:
        raise TruncatedDicomError("the file ends inside its file meta information")


def _check_instance(ds: Dataset) -> None:
    """A file cut between two elements is well-formed but incomplete. A file whose meta names
    its SOP Class must hold the SOP Class and Instance UIDs (Type 1, SOP Common), and an image
    its pixels. (Bare data set fragments without meta are cleaned as they are.)"""
    meta = getattr(ds, "file_meta", None)
    claimed = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    if claimed == MEDIA_STORAGE_DIRECTORY:
        raise NotAnInstanceError("a DICOMDIR is not de-identified: rebuild it afterwards")
    if claimed and (_SOP_CLASS_UID not in ds or _SOP_INSTANCE_UID not in ds):
        raise TruncatedDicomError(
            "the data set ends before its SOP Class and Instance UIDs (cut short, or a fragment)"
        )
    if _ROWS in ds and not any(tag in ds for tag in _PIXEL_DATA_TAGS):
        raise TruncatedDicomError("an image without its pixel data: the file was cut")


def read_dicom(data: bytes) -> Dataset:
    if not data:
        raise NotDicomError("empty input is not a DICOM file")
    has_prefix = data[_PREAMBLE : _PREAMBLE + 4] == b"DICM"
    if not has_prefix and not _looks_like_bare_dataset(data):
        raise NotDicomError("not a DICOM file: no DICM prefix and no DICOM element at the start")
    try:
        with warnings.catch_warnings():
            # pydicom only warns when a sequence or encapsulated value runs into the end of
            # the file; here that is an error, since what was cut cannot be checked.
            warnings.filterwarnings("error", message=".*End of file reached.*")
            ds = pydicom.dcmread(io.BytesIO(data), force=not has_prefix)
    except UserWarning as exc:
        raise TruncatedDicomError("the file ends inside a sequence or encapsulated value") from exc
    except (InvalidDicomError, EOFError) as exc:
        raise NotDicomError("not a readable DICOM file") from exc
    except Exception as exc:  # pydicom raises OSError, ValueError, struct.error … on bad bytes
        raise MalformedDicomError(f"unreadable DICOM ({type(exc).__name__})") from exc
    if has_prefix:
        _check_meta_complete(ds, len(data))
    if len(ds) == 0:
        if has_prefix:  # a Part 10 header with nothing after it: the rest was cut off
            raise TruncatedDicomError("the file ends after its file meta information")
        raise NotDicomError("no DICOM data set in the file")
    _check_instance(ds)
    meta = getattr(ds, "file_meta", None)
    deflated = meta is not None and meta.get("TransferSyntaxUID") == _DEFLATED
    # A deflated data set is read from an inflated copy: its offsets are not file offsets.
    _check_complete(ds, 0 if deflated else len(data))
    return ds
