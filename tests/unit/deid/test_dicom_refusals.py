"""What is never released: pixels that may show identity (quarantined with a reason), and
bytes that are not a whole DICOM file (refused with a DicomDeidError subclass)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom.data
import pytest
from PIL import Image
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from carevault.deid.dicom import (
    DicomDeidentifier,
    DicomDeidError,
    MalformedDicomError,
    NotAnInstanceError,
    NotDicomError,
    TruncatedDicomError,
)

KEY = b"refusal-test-key-0123456789abcdef"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def image(sop_class: str, modality: str, **values: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, generate_uid(), modality
    ds.PatientName = "Doe^Jane"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.SamplesPerPixel = 8, 8, 7, 1
    ds.PixelData = b"\x00\x01\x02\x03"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


@pytest.fixture(scope="module")
def deidentifier() -> DicomDeidentifier:
    return DicomDeidentifier(KEY)


@pytest.mark.parametrize(
    ("ds", "reason"),
    [
        (
            image(CT_IMAGE, "CT", BurnedInAnnotation="YES"),
            "Burned In Annotation (0028,0301) is YES",
        ),
        (image(CT_IMAGE, "CT", BurnedInAnnotation=""), "is empty"),
        (image(US_IMAGE, "US"), "Modality US is known for it"),
        (image(CT_IMAGE, "XA"), "Modality XA is known for it"),
        (image(SECONDARY_CAPTURE, "CT"), "SOP Class 1.2.840.10008.5.1.4.1.1.7 is known for it"),
        (image(CT_IMAGE, "CT", RecognizableVisualFeatures="YES"), "Recognizable Visual"),
    ],
    ids=["attribute-yes", "attribute-empty", "modality-us", "modality-xa", "sc-class", "face"],
)
def test_pixels_that_may_identify_are_quarantined_with_the_reason(
    ds: Dataset, reason: str, deidentifier: DicomDeidentifier
) -> None:
    result = deidentifier.deidentify(ds)
    assert result.dataset is None
    assert result.quarantined is not None
    assert reason in result.quarantined
    assert "Doe" not in result.quarantined  # the reason names attributes, never values


@pytest.mark.parametrize(
    "ds",
    [
        image(CT_IMAGE, "CT"),  # CT: not a modality known for burned-in text
        image(US_IMAGE, "US", BurnedInAnnotation="NO"),  # said NO: released
        image(SECONDARY_CAPTURE, "OT", BurnedInAnnotation="NO"),
    ],
    ids=["ct", "us-said-no", "sc-said-no"],
)
def test_pixels_declared_or_known_clean_are_released(
    ds: Dataset, deidentifier: DicomDeidentifier
) -> None:
    result = deidentifier.deidentify(ds)
    assert result.quarantined is None
    assert result.dataset is not None


def test_the_shipped_ultrasound_with_burned_in_text_is_quarantined(
    deidentifier: DicomDeidentifier,
) -> None:
    import deid_data  # type: ignore[import-untyped]

    path = Path(deid_data.__file__).parent / "data" / "ultrasounds" / "GREYSCALE_IMAGE.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = deidentifier.deidentify(path.read_bytes())
    assert result.quarantined is not None
    assert "YES" in result.quarantined


def _ct_small() -> bytes:
    return Path(pydicom.data.get_testdata_file("CT_small.dcm") or "").read_bytes()


@pytest.mark.parametrize("keep", [-1, -100, 0.5, 0.1, 1000, 401, 400, 140, 133])
def test_truncated_bytes_are_refused_as_truncated(
    keep: float, deidentifier: DicomDeidentifier
) -> None:
    data = _ct_small()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    with pytest.raises(TruncatedDicomError):
        deidentifier.deidentify(data[:cut])


def test_every_cut_of_a_file_is_refused_or_complete_never_a_crash(
    deidentifier: DicomDeidentifier,
) -> None:
    data = _ct_small()
    refused = 0
    for cut in range(1, len(data), 97):
        try:
            deidentifier.deidentify(data[:cut])
        except DicomDeidError:
            refused += 1
    # A cut exactly between two elements leaves a shorter but well-formed file; every other
    # cut is refused (nearly all of them, since the pixel data is most of the file).
    assert refused >= 0.95 * len(range(1, len(data), 97))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [_png(), b"", b"hello, world\n" * 20, b'{"resourceType": "Patient"}', bytes(range(256)) * 4],
    ids=["png", "empty", "text", "json", "noise"],
)
def test_non_dicom_bytes_are_refused_clearly(data: bytes, deidentifier: DicomDeidentifier) -> None:
    with pytest.raises(NotDicomError, match="DICOM"):
        deidentifier.deidentify(data)


def test_a_png_with_a_dicom_preamble_shape_is_still_refused(
    deidentifier: DicomDeidentifier,
) -> None:
    fake = b"\x00" * 128 + b"DICM" + _png()
    with pytest.raises(DicomDeidError):
        deidentifier.deidentify(fake)


def test_a_dicomdir_is_refused_as_not_an_instance(deidentifier: DicomDeidentifier) -> None:
    path = Path(pydicom.data.get_testdata_file("DICOMDIR") or "")
    with pytest.raises(NotAnInstanceError):
        deidentifier.deidentify(path.read_bytes())


def test_every_refusal_is_one_error_type() -> None:
    for error in (NotDicomError, TruncatedDicomError, MalformedDicomError, NotAnInstanceError):
        assert issubclass(error, DicomDeidError)
