"""Break-glass: only users named in advance; a stated reason opens a 60-minute ETREAT grant;
the privacy officer is alerted in the same transaction; the grant stays in the review report
until reviewed; after 60 minutes the record is out of reach again. Also migration 0006."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.messaging.models import notification_outbox
from carevault.runtime import Runtime
from tests.access_helpers import (
    care_team_mode,
    fresh_token,
    linked_practitioner,
    name_break_glass,
    user_id,
)
from tests.audit_rows import audit_of
from tests.conftest import Clinic

REASON = "unconscious in the emergency department; allergy history needed"


def _outbox(runtime: Runtime, tenant_id: str) -> list[sa.Row[object]]:
    with runtime.reader.connect() as conn:
        return list(conn.execute(sa.select(notification_outbox).where(
            notification_outbox.c.tenant_id == tenant_id)))  # fmt: skip


def test_only_named_users_with_a_stated_reason(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    body = {"patient": north.other_patient_id, "reason": REASON}
    refused = client.post("/access/break-glass", json=body, headers=north.headers())
    assert refused.status_code == 403  # not named in advance
    (entry,) = audit_of(runtime, refused)
    assert (entry["outcome"], entry["status"], entry["purpose"]) == ("denied", 403, "ETREAT")
    assert REASON not in str(entry)  # the reason never reaches the audit
    for role in ("staff", "patient", "privacy-officer"):
        other = client.post("/access/break-glass", json=body, headers=north.headers(role))
        assert other.status_code == 403, role
    name_break_glass(client, runtime, north, True)
    cases = [
        ({"patient": north.other_patient_id}, 400),
        ({"patient": north.other_patient_id, "reason": "   short  "}, 400),
        ({"patient": north.other_patient_id, "reason": "x" * 1001}, 400),
        ({"patient": "bad id!", "reason": REASON}, 400),
        ({"patient": "nobody", "reason": REASON}, 404),
        ({"patient": clinic.south.patient_id, "reason": REASON}, 404),  # another tenant's
    ]
    for sent, status in cases:
        response = client.post("/access/break-glass", json=sent, headers=north.headers())
        assert response.status_code == status, (sent, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert audit_of(runtime, response)
    garbled = client.post(
        "/access/break-glass",
        content=b"{not json",
        headers=north.headers(**{"content-type": "application/json"}),
    )
    assert garbled.status_code == 400
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.text("select count(*) from break_glass_grants")).scalar() == 0
    assert not [m for m in _outbox(runtime, north.tenant_id) if m.template == "break-glass-alert"]


def test_grant_alert_review_and_lapse(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    bob = north.other_patient_id
    linked_practitioner(runtime, client, north)
    care_team_mode(runtime, north)
    name_break_glass(client, runtime, north, True)
    assert client.get(f"/fhir/Patient/{bob}", headers=north.headers()).status_code == 403

    opened = client.post("/access/break-glass", json={"patient": bob, "reason": REASON},
                         headers=north.headers())  # fmt: skip
    assert opened.status_code == 201, opened.text
    grant = opened.json()
    assert grant["purpose"] == "ETREAT"
    assert grant["patient_id"] == bob
    (entry,) = audit_of(runtime, opened)
    assert entry["purpose"] == "ETREAT"
    assert entry["patient_ids"] == [bob]
    alerts = [m for m in _outbox(runtime, north.tenant_id) if m.template == "break-glass-alert"]
    assert len(alerts) == 1
    assert (alerts[0].recipient_kind, alerts[0].recipient) == ("role", "privacy-officer")
    assert grant["grant_id"] in alerts[0].params
    assert REASON not in alerts[0].params

    read = client.get(f"/fhir/Patient/{bob}", headers=north.headers())
    assert read.status_code == 200
    (entry,) = audit_of(runtime, read)
    assert (entry["purpose"], entry["patient_ids"]) == ("ETREAT", [bob])
    # other patients stay out of reach
    assert (
        client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers()).status_code == 403
    )

    officer = north.headers("privacy-officer")
    report = client.get("/privacy/break-glass", headers=officer)
    assert report.status_code == 200
    (item,) = report.json()["grants"]
    assert item["grant_id"] == grant["grant_id"]
    assert item["reason"] == REASON
    assert item["reads"] >= 1
    assert item["user_id"] == user_id(runtime, north, "practitioner")
    assert audit_of(runtime, report)[0]["patient_ids"] == [bob]  # the report read is audited
    for role in ("practitioner", "staff", "practice-admin", "patient"):
        assert client.get("/privacy/break-glass", headers=north.headers(role)).status_code == 403
    assert client.get("/privacy/break-glass?all=maybe", headers=officer).status_code == 400
    # another tenant's officer sees nothing of it
    assert client.get("/privacy/break-glass", headers=clinic.south.headers("privacy-officer")
                      ).json()["grants"] == []  # fmt: skip

    # after 60 minutes: out of reach again (403 to this break-glass user)
    clock.advance(timedelta(minutes=59))
    assert client.get(f"/fhir/Patient/{bob}", headers=north.headers()).status_code == 200
    clock.advance(timedelta(minutes=1, seconds=1))
    lapsed = client.get(f"/fhir/Patient/{bob}", headers=north.headers())
    assert lapsed.status_code == 403
    assert audit_of(runtime, lapsed)[0]["outcome"] == "denied"

    # still in the report until reviewed
    assert len(client.get("/privacy/break-glass", headers=officer).json()["grants"]) == 1
    path = f"/privacy/break-glass/{grant['grant_id']}/review"
    assert client.post(path, json={"note": ""}, headers=officer).status_code == 400
    assert client.post(path, json={"note": "ok"}, headers=north.headers()).status_code == 403
    done = client.post(path, json={"note": "confirmed with the ED log"}, headers=officer)
    assert done.status_code == 200, done.text
    assert audit_of(runtime, done)[0]["detail"] == "break-glass reviewed"
    assert client.post(path, json={"note": "again"}, headers=officer).status_code == 409
    assert client.post("/privacy/break-glass/nope/review", json={"note": "x" * 5},
                       headers=officer).status_code == 404  # fmt: skip
    assert client.get("/privacy/break-glass", headers=officer).json()["grants"] == []
    (kept,) = client.get("/privacy/break-glass?all=true", headers=officer).json()["grants"]
    assert kept["reviewed_at"] is not None


def test_un_naming_ends_a_live_grant_at_once(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    bob = north.other_patient_id
    linked_practitioner(runtime, client, north)
    care_team_mode(runtime, north)
    name_break_glass(client, runtime, north, True)
    opened = client.post("/access/break-glass", json={"patient": bob, "reason": REASON},
                         headers=north.headers())  # fmt: skip
    assert opened.status_code == 201
    assert client.get(f"/fhir/Patient/{bob}", headers=north.headers()).status_code == 200
    name_break_glass(client, runtime, north, False)
    assert client.get(f"/fhir/Patient/{bob}", headers=north.headers()).status_code == 404
    # a fresh token does not bring it back either
    token = fresh_token(runtime, north, "practitioner")
    again = client.get(f"/fhir/Patient/{bob}", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 404


def test_no_plaintext_reason_in_the_database(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    name_break_glass(client, runtime, north, True)
    marker = "zebra-marker-clinical-fact"
    opened = client.post("/access/break-glass",
                         json={"patient": north.patient_id, "reason": f"{marker} {REASON}"},
                         headers=north.headers())  # fmt: skip
    assert opened.status_code == 201
    with runtime.reader.connect() as conn:
        for table in ("break_glass_grants", "audit_entries", "notification_outbox"):
            rows = conn.execute(sa.text(f"select * from {table}")).all()
            assert marker.encode() not in repr(rows).encode(), table
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_entries)).scalar()
