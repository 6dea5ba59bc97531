"""DICOM header de-identification: the PS3.15 Annex E Basic Application Level
Confidentiality Profile, with keyed UID remapping and a burned-in annotation quarantine.

Table E.1-1 and the IOD tables are data from the `dicom-standard` package (see
`standard.py`): PROFILE_EDITION says which edition of the standard they reflect.
"""

from __future__ import annotations

from carevault.deid.dicom.deidentifier import ACTION_CODES, DicomDeidentifier, DicomResult
from carevault.deid.dicom.errors import (
    DicomDeidError,
    MalformedDicomError,
    NotAnInstanceError,
    NotDicomError,
    ProfileDataError,
    TruncatedDicomError,
)
from carevault.deid.dicom.residual import residual_scan
from carevault.deid.dicom.standard import profile_edition

PROFILE_EDITION: str = profile_edition()

__all__ = [
    "ACTION_CODES",
    "PROFILE_EDITION",
    "DicomDeidError",
    "DicomDeidentifier",
    "DicomResult",
    "MalformedDicomError",
    "NotAnInstanceError",
    "NotDicomError",
    "ProfileDataError",
    "TruncatedDicomError",
    "residual_scan",
]
