"""The profile on constructed data sets: D/Z/X by the attribute's Type in the IOD, every
attribute of Table E.1-1, private tags, sequences nested four deep, and the marks it leaves."""

from __future__ import annotations

import copy
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom import Dataset
from pydicom.datadict import dictionary_VR
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from carevault.deid.dicom import PROFILE_EDITION, DicomDeidentifier
from carevault.deid.dicom.dummies import dummy_for
from carevault.deid.dicom.profile import resolve
from carevault.deid.dicom.standard import profile_table

KEY = b"profile-test-key-0123456789abcdef"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"


def instance(sop_class: str = CT_IMAGE, **values: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = values.pop("StudyInstanceUID", generate_uid())
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def run(ds: Dataset, key: bytes = KEY) -> Dataset:
    result = DicomDeidentifier(key).deidentify(ds)
    assert result.quarantined is None, result.quarantined
    assert result.dataset is not None
    return result.dataset


@pytest.mark.parametrize(
    ("code", "rank", "action"),
    [
        ("X/Z", 0, "X"), ("X/Z", 1, "Z"), ("X/Z", 2, "Z"),
        ("X/D", 0, "X"), ("X/D", 1, "D"), ("X/D", 2, "D"),
        ("X/Z/D", 0, "X"), ("X/Z/D", 1, "Z"), ("X/Z/D", 2, "D"),
        ("Z/D", 0, "Z"), ("Z/D", 1, "Z"), ("Z/D", 2, "D"),
        ("X/Z/U*", 0, "X"), ("X/Z/U*", 1, "Z"), ("X/Z/U*", 2, "U"),
        ("X/Z/D", None, "D"), ("D", 0, "D"), ("U", 0, "U"),
    ],
)  # fmt: skip
def test_combined_codes_resolve_as_e_1_1_says(code: str, rank: int | None, action: str) -> None:
    assert resolve(code, rank) == action


def test_type_3_is_removed_type_2_emptied_type_1_given_a_dummy() -> None:
    # CT Image: Institution Name (X/Z/D) is Type 3 (General Equipment) and Content Date (Z/D)
    # Type 2 (General Image); Acquisition Date (X/Z) Type 3.
    ct = run(instance(InstitutionName="St Elsewhere", ContentDate="20240102",
                      AcquisitionDate="20240102"))  # fmt: skip
    assert "InstitutionName" not in ct
    assert "AcquisitionDate" not in ct
    assert "ContentDate" in ct
    assert ct.ContentDate == ""
    # Enhanced CT: Content Date and Device Serial Number (X/Z/D) are Type 1.
    enhanced = run(instance(ENHANCED_CT_IMAGE, ContentDate="20240102", DeviceSerialNumber="SN-77"))
    assert enhanced.ContentDate == dummy_for("DA") == "19000101"
    assert enhanced.DeviceSerialNumber == dummy_for("LO")
    # RT Plan: Operators' Name (X/Z/D) is Type 2 there (RT General Plan), Type 3 in CT.
    assert run(instance(RT_PLAN, OperatorsName="Smith^Al")).OperatorsName == ""
    assert "OperatorsName" not in run(instance(OperatorsName="Smith^Al"))


def test_an_unknown_iod_keeps_conformance_with_the_strongest_option() -> None:
    out = run(instance("1.2.3.4.5.6", InstitutionName="St Elsewhere"))
    assert out.InstitutionName == dummy_for("LO")


SAMPLE_BY_VR: dict[str, object] = {
    "AE": "STATION7", "AS": "042Y", "CS": "SECRET", "DA": "19700315", "DS": "71.5",
    "DT": "19700315101500", "IS": "4242", "LO": "Secret Long", "LT": "Secret text",
    "PN": "Doe^Jane", "SH": "SECRET-SH", "ST": "Secret short text", "TM": "101500",
    "UC": "Secret UC", "UI": "1.2.826.0.1.3680043.2.1125.987654321", "UR": "http://example.org/p",
    "UT": "Secret UT", "US": 7, "UL": 7, "SS": 7, "SL": 7, "FL": 7.5, "FD": 7.5,
    "OB": b"SECRETOB", "OW": b"SECRETOW", "UN": b"SECRETUN", "AT": 0x00100010,
}  # fmt: skip


def _every_table_attribute() -> Dataset:
    ds = instance()
    table = profile_table()
    for tag in table.exact:
        if tag >> 16 == 0x0002:
            continue
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            continue  # retired before pydicom's dictionary: cannot be built here
        if vr == "SQ":
            item = Dataset()
            item.PatientName = "Doe^Jane"
            item.CodeValue = "KEEP-ME"
            ds.add_new(tag, vr, Sequence([item]))
        elif vr in SAMPLE_BY_VR:
            ds.add_new(tag, vr, SAMPLE_BY_VR[vr])
    return ds


def test_every_attribute_of_table_e_1_1_gets_its_action() -> None:
    original = _every_table_attribute()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = DicomDeidentifier(KEY).deidentify(original)
    out = result.dataset
    assert out is not None
    table = profile_table()
    checked = 0
    for tag, code in table.exact.items():
        if tag not in original or tag >> 16 == 0x0002:
            continue
        checked += 1
        before = original[tag]
        if tag not in out:
            assert "X" in code, f"{tag:08X} removed but its code is {code}"
            continue
        after = out[tag]
        if before.VR == "SQ":
            for item in after.value:  # kept sequences are cleaned inside
                assert str(item.get("PatientName", "")) != "Doe^Jane"
            continue
        assert after.value != before.value or before.value in ("", None), f"{tag:08X} kept"
    assert checked > 380  # nearly all of the table's ~430 attributes exist in pydicom
    counts = result.actions
    assert counts["X"] > 200
    assert counts["U"] > 20
    assert counts["D"] > 20
    assert counts["Z"] > 20


def test_private_tags_go_at_every_depth_and_nested_sequences_4_deep_are_cleaned() -> None:
    study_uid = generate_uid()
    deepest = Dataset()
    deepest.PatientName = "Doe^Jane"
    deepest.StudyDate = "19700315"
    deepest.ReferencedSOPInstanceUID = study_uid
    deepest.CodeValue = "T-D1100"  # not identifying: kept
    deepest.private_block(0x0011, "ACME", create=True).add_new(0x01, "LO", "Jane's chart")
    level = deepest
    for _depth in range(3):  # four levels of sequences in all (items of items of items …)
        outer = Dataset()
        outer.PatientID = "MRN-0042"
        outer.add_new(0x00400260, "SQ", Sequence([level]))  # Performed Protocol Code Seq.
        level = outer
    ds = instance(StudyInstanceUID=study_uid)
    ds.add_new(0x00400260, "SQ", Sequence([level]))
    ds.private_block(0x0009, "ACME", create=True).add_new(0x10, "LO", "Jane Doe")
    out = run(ds)
    item = out
    for _depth in range(4):
        item = item[0x00400260].value[0]
        assert item.get("PatientID", "") == ""  # Z at every depth
    assert item.PatientName == ""
    assert "StudyDate" in item
    assert item.StudyDate == ""
    assert item.ReferencedSOPInstanceUID == out.StudyInstanceUID  # the same mapping, deep
    assert item.CodeValue == "T-D1100"
    assert not [e for e in out.iterall() if e.tag.is_private]


def test_uids_map_consistently_within_a_study_and_per_key() -> None:
    study_uid, frame_uid = generate_uid(), generate_uid()
    one = instance(StudyInstanceUID=study_uid, FrameOfReferenceUID=frame_uid)
    two = instance(StudyInstanceUID=study_uid, FrameOfReferenceUID=frame_uid)
    a, b = run(copy.deepcopy(one)), run(two)
    assert a.StudyInstanceUID == b.StudyInstanceUID != study_uid
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID != frame_uid
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    again = run(copy.deepcopy(one))  # another run, another deidentifier, the same key
    assert (again.StudyInstanceUID, again.SOPInstanceUID) == (a.StudyInstanceUID, a.SOPInstanceUID)
    other = run(copy.deepcopy(one), key=b"another-project-key-0123456789ab")
    assert other.StudyInstanceUID != a.StudyInstanceUID
    for uid in (a.StudyInstanceUID, a.SOPInstanceUID, other.StudyInstanceUID):
        assert uid.startswith("2.25.")
        assert len(uid) <= 64
        assert uid.is_valid


def test_the_output_says_identity_was_removed_and_how() -> None:
    out = run(instance())
    assert out.PatientIdentityRemoved == "YES"
    assert len(out.DeidentificationMethod) <= 64
    code = out.DeidentificationMethodCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "113100", "DCM", "Basic Application Confidentiality Profile"
    )  # fmt: skip
    assert "2020" in PROFILE_EDITION
    assert "dicom-standard 0.1.0" in PROFILE_EDITION


def test_a_dataset_argument_is_left_untouched() -> None:
    ds = instance(InstitutionName="St Elsewhere")
    before = copy.deepcopy(ds)
    run(ds)
    assert ds == before


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        DicomDeidentifier(b"short")


def test_a_d_sequence_keeps_its_items_with_dummy_content() -> None:
    # Person Identification Code Sequence (0040,1101) is D: the codes identify the person.
    person = Dataset()
    person.CodeValue, person.CodingSchemeDesignator = "EMP-12345", "L"
    observer = Dataset()
    observer.VerifyingObserverName = "Smith^Al"
    observer.VerifyingOrganization = "St Elsewhere"
    observer.add_new(0x00401101, "SQ", Sequence([person]))
    text_item = Dataset()
    text_item.ValueType, text_item.RelationshipType = "TEXT", "CONTAINS"
    text_item.TextValue = "Seen by Dr Smith on 3 March"
    sr = "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    ds = instance(sr, VerifyingObserverSequence=Sequence([observer]))
    ds.ContentSequence = Sequence([text_item])
    out = run(ds)
    kept_observer = out.VerifyingObserverSequence[0]
    assert kept_observer.VerifyingObserverName == dummy_for("PN")
    assert kept_observer.PersonIdentificationCodeSequence[0].CodeValue == dummy_for("SH")
    item = out.ContentSequence[0]
    assert item.TextValue == dummy_for("UT")
    assert (item.ValueType, item.RelationshipType) == ("TEXT", "CONTAINS")  # structure kept


def test_describe_names_the_rules_and_the_edition_for_the_export_report() -> None:
    described = DicomDeidentifier(KEY).describe()
    assert described["edition"] == PROFILE_EDITION
    assert "Basic Application Level Confidentiality Profile" in described["profile"]


@given(st.text(alphabet="0123456789.", min_size=1, max_size=64))
def test_any_uid_maps_to_a_valid_uid_the_same_way_every_time(uid: str) -> None:
    from pydicom.uid import UID

    from carevault.deid.dicom.uids import UidMapper

    mapped = UidMapper(KEY).map(uid)
    if uid.strip("\x00 "):
        assert UID(mapped).is_valid
        assert mapped == UidMapper(KEY).map(uid)
        assert mapped != UidMapper(KEY + b"x").map(uid)
