"""Retention rules as data, without a database: the policy loader refuses a negative period,
categories come from security labels, account periods run from the closing only, the
offboarding archive detects tampering, and a certificate renders as JSON and PDF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from carevault.policy import PolicyError, load_profile, parse_policy, policies_dir
from carevault.privacy.offboarding import ArchiveWriter, read_archive
from carevault.retention import certificates
from carevault.retention.categories import DATA_CATEGORY_SYSTEM, biometric_label, classify
from carevault.retention.models import Certificate, CertificateKind, Item
from carevault.retention.service import _authors, keep_until


def _default_with(retention: dict[str, object]) -> str:
    raw = yaml.safe_load((policies_dir() / "default.yaml").read_text())
    raw["retention"] = retention
    return yaml.safe_dump(raw)


def test_a_negative_retention_period_is_refused_by_the_loader() -> None:
    with pytest.raises(PolicyError, match=r"retention\.phi\.keep_days"):
        parse_policy(_default_with({"phi": {"keep_days": -1}}), "bad.yaml")
    with pytest.raises(PolicyError, match="retention"):
        parse_policy(_default_with({"nonsense": {"keep_days": 3}}), "bad.yaml")
    assert parse_policy(_default_with({"phi": {"keep_days": 0}})).retention["phi"].keep_days == 0


def test_categories_are_data() -> None:
    assert classify("p1", []).category == "phi"
    assert classify(None, []).category == "directory"
    bio = biometric_label(phi=False)
    identity = classify("p1", [(bio["system"], bio["code"])])
    assert (identity.category, identity.phi) == ("biometric", False)
    care = classify("p1", [(DATA_CATEGORY_SYSTEM, "biometric")])
    assert (care.category, care.phi) == ("biometric", True)
    assert classify("p1", [("http://other", "biometric")]).category == "phi"


def test_account_periods_run_from_the_closing_only() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert keep_until(load_profile("allmeds"), "account", start) == start + timedelta(days=365)
    # purpose-satisfied: an account's purpose ends when it is closed, then 0 days
    assert keep_until(load_profile("healthsoft"), "account", start) == start
    assert keep_until(load_profile("default"), "account", start) is None


def test_authors_of_a_submission() -> None:
    body = {"author": {"reference": "Patient/a"}, "source": {"reference": "Patient/b"}}
    assert _authors(body, ("author", "source")) == {"Patient/a", "Patient/b"}
    assert _authors({"author": [{"reference": "Practitioner/x"}, "junk"]}, ("author",)) == {
        "Practitioner/x"
    }


def test_the_archive_round_trips_and_detects_tampering(tmp_path: Path) -> None:
    path = tmp_path / "a.cvarchive"
    writer = ArchiveWriter(path, "archive-1")
    chunks = [b'{"id":"1"}\n', b'{"id":"2"}\n', b""]
    for chunk in chunks[:2]:
        writer.write(chunk)
    writer.close()
    assert b"".join(read_archive(path, writer.key)) == b"".join(chunks)
    with pytest.raises(ValueError, match="authentication"):
        list(read_archive(path, bytes(32)))
    data = path.read_bytes()
    cut = tmp_path / "cut.cvarchive"
    cut.write_bytes(data[: len(data) - 20])
    with pytest.raises(ValueError, match=r"authentication|cut short"):
        list(read_archive(cut, writer.key))


def test_a_certificate_renders_as_json_and_pdf() -> None:
    cert = Certificate(
        "c1",
        "t1",
        CertificateKind.PATIENT,
        "2026-12-01T00:00:00.000000Z",
        (Item("record", "Patient", "p1", "p1", 3),),
        (Item("audit trail", why="six years"),),
        "crypto-shredding",
        {"written_request": "case-1"},
        "ab" * 64,
        "cd" * 32,
    )
    body = orjson.loads(certificates.to_json(cert))
    assert body["kind"] == "patient"
    assert body["destroyed"] == [
        {
            "what": "record",
            "resource_type": "Patient",
            "resource_id": "p1",
            "patient_id": "p1",
            "count": 3,
        }
    ]
    assert certificates.from_document(body, body["signature"]) == cert
    assert b"signature" not in certificates.canonical(cert)
    assert certificates.to_pdf(cert).startswith(b"%PDF")
