"""Security labels at the gate, through the HTTP API: care a minor consented to on their own is
missing from the parent's view (404 on read, vread and history; absent from search and its
totals, _include, $everything and its total, type history and exports) while the minor's
practitioner sees it; very restricted (V) records need a care relationship; psychotherapy notes
are outside the patient's own access; labels survive a round trip and are searchable."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from carevault.identity.permissions import Purpose
from carevault.privacy.segmentation import ACT_CODE, CAREVAULT_LABELS, CONFIDENTIALITY
from carevault.runtime import Runtime
from tests.access_helpers import create, encounter, linked_practitioner, user_id
from tests.audit_rows import audit_of
from tests.conftest import Clinic, Site
from tests.integration.test_bulk_export import download, finish, kick_off

MINOR = {"resourceType": "Patient", "name": [{"family": "Young"}], "birthDate": "2010-06-15"}
MINOR_LABEL = {"system": CAREVAULT_LABELS, "code": "MINOR-SELF-CONSENT"}


def observation(patient: str, text: str, *labels: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation", "status": "final", "code": {"text": text},
        "subject": {"reference": f"Patient/{patient}"},
    }  # fmt: skip
    if labels:
        body["meta"] = {"security": list(labels)}
    return body


def parent_of(runtime: Runtime, client: TestClient, site: Site) -> str:
    """A minor, and the fixture's representative verified as their parent."""
    minor = create(runtime, site, dict(MINOR))
    staff = site.headers("staff")
    recorded = client.post("/access/representations", headers=staff, json={
        "representative": user_id(runtime, site, "representative"), "patient": minor,
        "kind": "parent"})  # fmt: skip
    assert recorded.status_code == 201, recorded.text
    rid = recorded.json()["representation_id"]
    verified = client.post(f"/access/representations/{rid}/verify", headers=staff,
                           json={"method": "birth-certificate"})  # fmt: skip
    assert verified.status_code == 200, verified.text
    return minor


def ids(bundle: dict[str, Any], mode: str = "match") -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])
            if e.get("search", {}).get("mode", "match") == mode}  # fmt: skip


def test_the_parent_cannot_see_what_the_minor_consented_to_alone(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    minor = parent_of(runtime, client, north)
    visible = create(runtime, north, observation(minor, "height"))
    private = create(runtime, north, observation(minor, "contraception visit", MINOR_LABEL))
    parent, doctor = north.headers("representative"), north.headers("practitioner")

    for path in (f"/fhir/Observation/{private}", f"/fhir/Observation/{private}/_history/1",
                 f"/fhir/Observation/{private}/_history"):  # fmt: skip
        hidden = client.get(path, headers=parent)
        assert hidden.status_code == 404, path
        assert hidden.json()["resourceType"] == "OperationOutcome"
        (entry,) = audit_of(runtime, hidden)
        assert entry["outcome"] == "not-found"
        assert entry["patient_ids"] == []
        assert client.get(path, headers=doctor).status_code == 200, path
    assert client.get(f"/fhir/Observation/{visible}", headers=parent).status_code == 200

    search = client.get(f"/fhir/Observation?subject=Patient/{minor}", headers=parent).json()
    assert (ids(search), search["total"]) == ({visible}, 1)
    counted = client.get(f"/fhir/Observation?subject=Patient/{minor}&_summary=count",
                         headers=parent).json()  # fmt: skip
    assert counted["total"] == 1
    paged = client.get("/fhir/Observation?_count=1&_sort=-_lastUpdated", headers=parent).json()
    assert (ids(paged), paged["total"]) == ({visible}, 1)
    rev = client.get(f"/fhir/Patient?_id={minor}&_revinclude=Observation:subject",
                     headers=parent).json()  # fmt: skip
    assert ids(rev, "include") == {visible}
    listed = client.get("/fhir/Observation/_history", headers=parent).json()
    assert {e["resource"]["id"] for e in listed["entry"]} == {visible}
    assert listed["total"] == 1
    everything = client.get(f"/fhir/Patient/{minor}/$everything", headers=parent)
    assert everything.status_code == 200
    body = everything.json()
    assert private not in everything.text
    assert body["total"] == 2
    assert f"Observation/{private}" not in audit_of(runtime, everything)[0]["resource_ids"]

    seen = client.get(f"/fhir/Observation?subject=Patient/{minor}", headers=doctor).json()
    assert (ids(seen), seen["total"]) == ({visible, private}, 2)
    assert private in client.get(f"/fhir/Patient/{minor}/$everything", headers=doctor).text


def test_the_parents_export_leaves_it_out(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    minor = parent_of(runtime, client, north)
    visible = create(runtime, north, observation(minor, "height"))
    create(runtime, north, observation(minor, "contraception visit", MINOR_LABEL))
    token = north.tokens["representative"]
    status = kick_off(client, "/fhir/Patient/$export", token, {"_type": "Observation"})
    manifest = finish(runtime, client, status, token)
    found = [r["id"] for o in manifest["output"] for r in download(client, o["url"], token)]
    assert found == [visible]


def test_very_restricted_needs_a_care_relationship(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    v = {"system": CONFIDENTIALITY, "code": "V"}
    secret = create(runtime, north, observation(north.patient_id, "HIV viral load", v))
    plain = create(runtime, north, observation(north.patient_id, "weight"))
    doctor = north.headers("practitioner")
    path = f"/fhir/Observation/{secret}"
    assert client.get(path, headers=doctor).status_code == 404  # tenant-wide, no care link
    assert client.get(path, headers=north.headers("staff")).status_code == 404
    found = client.get(f"/fhir/Observation?subject=Patient/{north.patient_id}",
                       headers=doctor).json()  # fmt: skip
    assert (ids(found), found["total"]) == ({plain}, 1)

    pract = linked_practitioner(runtime, client, north)
    create(runtime, north, encounter(north.patient_id, pract))
    assert client.get(path, headers=doctor).status_code == 200
    found = client.get(f"/fhir/Observation?subject=Patient/{north.patient_id}",
                       headers=doctor).json()  # fmt: skip
    assert ids(found) == {plain, secret}
    # another patient's V record stays out: no care link to them
    theirs = create(runtime, north, observation(north.other_patient_id, "biopsy", v))
    assert client.get(f"/fhir/Observation/{theirs}", headers=doctor).status_code == 404
    # V is now visible for one patient and hidden for the other: dropped after decryption,
    # and the total still counts only what this practitioner may see (matched again in SQL)
    everyone = client.get("/fhir/Observation?status=final", headers=doctor).json()
    assert (ids(everyone), everyone["total"]) == ({plain, secret}, 2)
    counted = client.get("/fhir/Observation?_summary=count", headers=doctor).json()
    assert counted["total"] == 2


def test_psychotherapy_notes_are_outside_the_patients_own_access(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    label = {"system": ACT_CODE, "code": "PSYTHPN"}
    notes = create(runtime, north, observation(north.patient_id, "session notes", label))
    path = f"/fhir/Observation/{notes}"
    assert client.get(path, headers=north.headers("patient")).status_code == 404
    assert client.get(path, headers=north.headers("practitioner")).status_code == 200


def test_labels_survive_a_round_trip_and_are_searchable(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    labels = [{"system": ACT_CODE, "code": "ETH"}, {"system": CONFIDENTIALITY, "code": "R"}]
    doctor = north.headers("practitioner")
    created = client.post("/fhir/Observation", headers=doctor,
                          json=observation(north.patient_id, "AUDIT-C", *labels))  # fmt: skip
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    read = client.get(f"/fhir/Observation/{rid}", headers=doctor).json()
    assert read["meta"]["security"] == labels
    updated = client.put(
        f"/fhir/Observation/{rid}", headers=doctor, json={**read, "status": "amended"}
    )
    assert updated.status_code == 200
    assert updated.json()["meta"]["security"] == labels
    found = client.get(f"/fhir/Observation?_security={ACT_CODE}|ETH", headers=doctor).json()
    assert ids(found) == {rid}
    # R is not for payment: staff reading for billing (HPAYMT) do not see an R record
    condition = create(runtime, north, {
        "resourceType": "Condition", "code": {"text": "alcohol use disorder"},
        "subject": {"reference": f"Patient/{north.patient_id}"}, "meta": {"security": labels},
    })  # fmt: skip
    tenant = runtime.identity.tenant_by_slug(north.slug)
    billing = runtime.identity.create_token(tenant, user_id(runtime, north, "staff"),
                                            purpose=Purpose.HPAYMT).token  # fmt: skip
    path = f"/fhir/Condition/{condition}"
    assert client.get(path, headers={"Authorization": f"Bearer {billing}"}).status_code == 404
    assert client.get(path, headers=north.headers("staff")).status_code == 200  # TREAT
