"""Errors of DICOM de-identification: one base class, one subclass per way a file is refused.

Messages never carry a value from the file (they may be logged): they name the problem only.
"""

from __future__ import annotations

from carevault.errors import Unprocessable


class DicomDeidError(Unprocessable):
    """The input cannot be de-identified; nothing is released."""


class NotDicomError(DicomDeidError):
    """The bytes are not a DICOM Part 10 file or data set (a PNG, a text file, a zip …)."""


class TruncatedDicomError(DicomDeidError):
    """The file ends inside an element or sequence: what follows the cut cannot be checked."""


class MalformedDicomError(DicomDeidError):
    """The file parses as DICOM but an element cannot be decoded, so it cannot be cleaned."""


class NotAnInstanceError(DicomDeidError):
    """A DICOMDIR (or other non-instance file): its file paths name patients; rebuild it from
    the de-identified instances instead."""


class ProfileDataError(DicomDeidError):
    """The PS3.15 tables of the dicom-standard package are missing or not what we expect."""
