"""Audit reports for the privacy officer: filters, paging, CSV and PDF; reading is audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient

from carevault.clock import ManualClock
from carevault.runtime import Runtime
from tests.audit_rows import audit_of
from tests.conftest import Clinic

PO = "privacy-officer"


def _reads(client: TestClient, clinic: Clinic, n: int = 3) -> None:
    north = clinic.north
    for _ in range(n):
        r = client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers())
        assert r.status_code == 200
    r = client.get(f"/fhir/Patient/{north.other_patient_id}", headers=north.headers("staff"))
    assert r.status_code == 200


def test_filters_and_paging(client: TestClient, clinic: Clinic, runtime: Runtime) -> None:
    _reads(client, clinic)
    north = clinic.north
    r = client.get(f"/audit/report?patient={north.patient_id}&action=read&count=2",
                   headers=north.headers(PO))  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["entries"]) == 2
    assert all(north.patient_id in e["patient_ids"] for e in body["entries"])
    assert all(e["action"] == "read" for e in body["entries"])
    second = client.get(body["next"], headers=north.headers(PO)).json()
    assert len(second["entries"]) >= 1
    seqs = [e["seq"] for e in body["entries"] + second["entries"]]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == len(seqs)
    # Reading the report is itself audited, with the filters and no PHI.
    entry = audit_of(runtime, r)[0]
    assert entry["resource_type"] == "AuditEvent"
    assert entry["outcome"] == "success"
    assert north.patient_id in entry["patient_ids"]
    assert "Quintero" not in (entry["detail"] or "")


def test_time_range_and_outcome(client: TestClient, clinic: Clinic, clock: ManualClock) -> None:
    north = clinic.north
    _reads(client, clinic, 1)
    clock.advance(timedelta(days=3))
    client.get("/fhir/Patient/nope", headers=north.headers())
    r = client.get("/audit/report?since=2026-11-25&outcome=not-found", headers=north.headers(PO))
    assert r.status_code == 200
    entries = r.json()["entries"]
    assert entries
    assert all(e["outcome"] == "not-found" for e in entries)
    assert all(e["recorded_at"] >= "2026-11-25" for e in entries)
    r = client.get("/audit/report?until=2026-11-24&action=read", headers=north.headers(PO))
    assert r.json()["entries"]
    assert all(e["recorded_at"] < "2026-11-25" for e in r.json()["entries"])


def test_other_roles_are_refused_and_audited(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    for role in ("practitioner", "staff", "practice-admin", "patient"):
        r = client.get("/audit/report", headers=clinic.north.headers(role))
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")
        assert audit_of(runtime, r)[0]["outcome"] == "denied"


def test_bad_input_is_a_4xx(client: TestClient, clinic: Clinic) -> None:
    h = clinic.north.headers(PO)
    for query in ("action=peek", "since=yesterday", "count=0", "count=x", "patient=a%25b",
                  "colour=red", "outcome=meh", "since=2026-01-01T00:00:00"):  # fmt: skip
        r = client.get(f"/audit/report?{query}", headers=h)
        assert r.status_code == 400, query
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/audit/report.xls", headers=h).status_code == 404


def test_tenant_wall(client: TestClient, clinic: Clinic) -> None:
    _reads(client, clinic)
    r = client.get(f"/audit/report?patient={clinic.north.patient_id}",
                   headers=clinic.south.headers(PO))  # fmt: skip
    assert r.status_code == 200
    assert r.json()["entries"] == []


def test_csv_export(client: TestClient, clinic: Clinic, runtime: Runtime) -> None:
    _reads(client, clinic)
    r = client.get(f"/audit/report.csv?patient={clinic.north.patient_id}",
                   headers=clinic.north.headers(PO))  # fmt: skip
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) >= 3
    assert all(clinic.north.patient_id in row["patient_ids"] for row in rows)
    assert "Quintero" not in r.text
    assert audit_of(runtime, r)[0]["detail"].startswith("audit csv export")


def test_pdf_export(client: TestClient, clinic: Clinic) -> None:
    _reads(client, clinic)
    r = client.get("/audit/report.pdf?action=read", headers=clinic.north.headers(PO))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    assert len(r.content) > 1000
