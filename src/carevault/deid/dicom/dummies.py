"""The values that replace an attribute: a valid dummy per VR (action D) or empty (action Z).

Dummies are plainly fake (never a plausible name or date of a real person) but valid for
their VR, so a Type 1 attribute stays conformant: a date is a real date, a code string uses
only the CS characters, numbers are zero.
"""

from __future__ import annotations

from typing import Any

# VR → dummy value for action D. Text VRs share one marker that fits every length limit
# (SH and AE allow 16 characters, CS only upper case, digits, space and underscore).
_TEXT = "ANONYMIZED"
DUMMY_BY_VR: dict[str, Any] = {
    "AE": _TEXT,
    "AS": "000D",
    "CS": _TEXT,
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "LO": _TEXT,
    "LT": _TEXT,
    "PN": _TEXT,
    "SH": _TEXT,
    "ST": _TEXT,
    "UC": _TEXT,
    "UR": "",  # no URL is ever a safe dummy: an empty URI
    "UT": _TEXT,
    "AT": 0,
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    "OB": b"\x00\x00",
    "OD": b"\x00" * 8,
    "OF": b"\x00" * 4,
    "OL": b"\x00" * 4,
    "OV": b"\x00" * 8,
    "OW": b"\x00\x00",
    "UN": b"\x00\x00",
}

# VR → empty value for action Z (zero length); None means "no value" for numbers and AT.
_EMPTY_BYTES = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_EMPTY_NONE = frozenset({"AT", "FL", "FD", "SL", "SS", "SV", "UL", "US", "UV"})


def dummy_for(vr: str) -> Any:
    return DUMMY_BY_VR.get(vr, b"\x00\x00")


def empty_for(vr: str) -> Any:
    if vr == "SQ":
        return []
    if vr in _EMPTY_BYTES:
        return b""
    if vr in _EMPTY_NONE:
        return None
    return ""
