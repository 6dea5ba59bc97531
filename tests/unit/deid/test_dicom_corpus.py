"""The profile on every file the pydicom wheel and the pydicom-data and deid-data packages ship.

Each file is released, quarantined or refused with a DicomDeidError, never a crash; each
released file passes a residual scan: no original value of an identifying attribute (the
attributes of Table E.1-1, and every instance UID) survives anywhere in the output.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom import Dataset
from pydicom.datadict import dictionary_VR

from carevault.deid.dicom import DicomDeidentifier, DicomDeidError, DicomResult
from carevault.deid.dicom.residual import residual_scan, walk

KEY = b"corpus-project-key-0123456789abcdef"

# The shipped test files hold deliberately invalid values; pydicom warns when the scan reads them.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _pydicom_files() -> list[Path]:
    return sorted(Path(p) for p in pydicom.data.get_testdata_files() if Path(p).is_file())


def _deid_data_files() -> list[Path]:
    import deid_data  # type: ignore[import-untyped]

    root = Path(deid_data.__file__).parent / "data"
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


CORPUS = _pydicom_files() + _deid_data_files()


def _label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.fixture(scope="module")
def deidentifier() -> DicomDeidentifier:
    return DicomDeidentifier(KEY)


def _read_original(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), force=True)


OUTCOMES: Counter[str] = Counter()


@pytest.mark.parametrize("path", CORPUS, ids=_label)
def test_every_shipped_file_is_released_quarantined_or_refused(
    path: Path, deidentifier: DicomDeidentifier
) -> None:
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the odd values of test files
        try:
            result = deidentifier.deidentify(data)
        except DicomDeidError as refused:
            OUTCOMES["refused"] += 1
            message = str(refused)
            result = None
    if result is None:
        assert message  # a clear message, and no crash
        return
    if result.quarantined is not None:
        OUTCOMES["quarantined"] += 1
        assert result.dataset is None
        return
    OUTCOMES["released"] += 1
    assert result.dataset is not None
    _assert_released(result, _read_original(data))


def _assert_released(result: DicomResult, original: Dataset) -> None:
    out = result.dataset
    assert out is not None
    assert residual_scan(original, out) == []  # no original value, no private tag
    assert not any(tag >> 16 & 1 for tag, _vr, _value in walk(out))
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethod
    code = out.DeidentificationMethodCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
    assert set(result.actions) >= {"D", "Z", "X", "K", "C", "U", "private-removed"}
    # The output is a DICOM file that pydicom writes and reads back.
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.save_as(buffer, enforce_file_format=False)
        again = pydicom.dcmread(io.BytesIO(buffer.getvalue()), force=True)
    assert again.PatientIdentityRemoved == "YES"


def test_corpus_outcomes_add_up(deidentifier: DicomDeidentifier) -> None:
    """The whole corpus in one go: counts of each outcome, and the broken files are refused."""
    counts: Counter[str] = Counter()
    for path in CORPUS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = deidentifier.deidentify(path.read_bytes())
            except DicomDeidError as refused:
                counts[f"refused:{type(refused).__name__}"] += 1
                continue
        counts["quarantined" if result.quarantined else "released"] += 1
    print(dict(counts))  # shown with -s: the figures the report quotes
    assert counts["released"] >= 100
    assert counts["quarantined"] >= 50
    assert counts["refused:TruncatedDicomError"] >= 3  # MR_truncated, rtplan_truncated, …
    assert counts["refused:NotDicomError"] >= 10  # READMEs, JSON, ICC, zip, gzip
    assert counts["refused:NotAnInstanceError"] >= 5  # the DICOMDIRs
    assert sum(counts.values()) == len(CORPUS)


@pytest.mark.parametrize(
    "name",
    ["MR_truncated.dcm", "rtplan_truncated.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm"],
)
def test_the_deliberately_truncated_files_are_refused_as_truncated(
    name: str, deidentifier: DicomDeidentifier
) -> None:
    from carevault.deid.dicom import TruncatedDicomError

    data = Path(pydicom.data.get_testdata_file(name) or "").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TruncatedDicomError):
            deidentifier.deidentify(data)


def test_a_planted_identifier_is_caught_by_the_residual_scan() -> None:
    """The scan itself must work: an original value left in place is reported."""
    original = _read_original(
        Path(pydicom.data.get_testdata_file("CT_small.dcm") or "").read_bytes()
    )
    leaky = DicomDeidentifier(KEY).deidentify(original).dataset
    assert leaky is not None
    leaky.ImageComments = str(original.PatientName)
    assert dictionary_VR(0x00204000) == "LT"
    assert residual_scan(original, leaky) == ["(0020,4000) holds an original value"]
    leaky.add_new(0x00290010, "LO", "ACME")
    assert "(0029,0010) is a private tag" in residual_scan(original, leaky)
