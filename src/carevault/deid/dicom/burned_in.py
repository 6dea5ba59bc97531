"""Which instances may carry identifying pixels and must be quarantined, never released.

Header de-identification cannot clean text burned into pixels, nor a face in a photograph.
An instance is held for human review when it says so (Burned In Annotation not NO,
Recognizable Visual Features YES), or says nothing and is of a kind known for it.
"""

from __future__ import annotations

from pydicom import Dataset

# Modalities whose images routinely carry burned-in text (ultrasound measurements and patient
# banners, screen captures, fluoroscopy and angiography overlays, endoscopy and camera
# photographs, slide labels) — PS3.16 CID 33 codes.
MODALITIES_KNOWN_FOR_BURNED_IN = frozenset(
    {"US", "IVUS", "SC", "OT", "XA", "RF", "ES", "XC", "GM", "SM", "OP", "DOC"}
)

# SOP Class UID roots of the same kinds (the root itself or below it), whatever Modality says.
SOP_CLASS_PREFIXES_KNOWN_FOR_BURNED_IN = (
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture and its multi-frame variants
    "1.2.840.10008.5.1.4.1.1.6",  # Ultrasound Image (and its retired forms)
    "1.2.840.10008.5.1.4.1.1.3",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.77.1",  # VL images: endoscopy, microscopy, photography, video
    "1.2.840.10008.5.1.4.1.1.104",  # Encapsulated PDF, CDA, STL …: a document is all "pixels"
)

_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009, 0x00420011)  # pixel data or a document

_BURNED_IN_ANNOTATION = 0x00280301
_RECOGNIZABLE_VISUAL_FEATURES = 0x00280302
_MODALITY = 0x00080060
_SOP_CLASS_UID = 0x00080016


def _text(ds: Dataset, tag: int) -> str | None:
    if tag not in ds:
        return None
    value = ds[tag].value
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip("\x00 ").upper()


def quarantine_reason(ds: Dataset) -> str | None:
    """The reason to hold this instance for review, or None when its pixels may be released."""
    burned_in = _text(ds, _BURNED_IN_ANNOTATION)
    if burned_in is not None and burned_in != "NO":
        said = burned_in if burned_in in ("YES", "") else "an unexpected value"
        return f"Burned In Annotation (0028,0301) is {said or 'empty'}, not NO"
    if _text(ds, _RECOGNIZABLE_VISUAL_FEATURES) == "YES":
        return "Recognizable Visual Features (0028,0302) is YES"
    if burned_in == "NO" or not any(tag in ds for tag in _PIXEL_TAGS):
        return None
    modality = _text(ds, _MODALITY) or ""
    if modality in MODALITIES_KNOWN_FOR_BURNED_IN:
        return f"Burned In Annotation (0028,0301) is absent and Modality {modality} is known for it"
    sop_class = _text(ds, _SOP_CLASS_UID) or ""
    for root in SOP_CLASS_PREFIXES_KNOWN_FOR_BURNED_IN:
        if sop_class == root or sop_class.startswith(root + "."):
            return (
                "Burned In Annotation (0028,0301) is absent and the SOP Class "
                f"{sop_class} is known for it"
            )
    return None
