"""GET /patient/access-log: who looked at my record, in what role, why; nobody else's."""

from __future__ import annotations

from fastapi.testclient import TestClient

from carevault.identity.models import system_actor
from carevault.identity.permissions import Role
from carevault.runtime import Runtime
from tests.audit_rows import audit_of
from tests.conftest import Clinic


def _named_practitioner(runtime: Runtime, clinic: Clinic) -> dict[str, str]:
    """A practitioner user linked to a Practitioner resource with a name."""
    north = clinic.north
    gate = runtime.gate(system_actor(north.tenant_id, "test fixture"))
    pract = gate.create("Practitioner", {"resourceType": "Practitioner",
                                         "name": [{"family": "Hale", "given": ["Dana"],
                                                   "prefix": ["Dr."]}]})  # fmt: skip
    tenant = runtime.identity.tenant_by_slug("north")
    user_id = runtime.identity.create_user(
        tenant, "dana@north.example.org", Role.PRACTITIONER, password="a long passphrase"
    )
    with runtime.writer.begin() as conn:
        from carevault.identity.models import users

        conn.execute(
            users.update()
            .where(users.c.tenant_id == north.tenant_id, users.c.user_id == user_id)
            .values(practitioner_id=pract.resource_id)
        )
    token = runtime.identity.create_token(tenant, user_id).token
    return {"Authorization": f"Bearer {token}"}


def test_who_looked(client: TestClient, clinic: Clinic, runtime: Runtime) -> None:
    north = clinic.north
    dana = _named_practitioner(runtime, clinic)
    assert client.get(f"/fhir/Patient/{north.patient_id}", headers=dana).status_code == 200
    assert (
        client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers("staff")).status_code
        == 200
    )
    client.get(f"/fhir/Patient/{north.other_patient_id}", headers=dana)  # someone else's record
    client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers("patient"))  # own look

    r = client.get("/patient/access-log", headers=north.headers("patient"))
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    names = [e["who"]["name"] for e in entries]
    assert "Dr. Dana Hale" in names
    assert "staff member" in names
    first = next(e for e in entries if e["who"]["name"] == "Dr. Dana Hale")
    assert first["who"]["role"] == "practitioner"
    assert first["access"] == "viewed"
    assert first["purpose"]["code"] == "TREAT"
    assert first["purpose"]["display"] == "treatment"
    assert north.other_patient_id not in r.text
    assert all(e["patients"] == [north.patient_id] for e in entries)
    assert all(e["who"]["role"] != "patient" for e in entries)  # their own looks left out
    # Looking at the log is audited, naming the patient.
    entry = audit_of(runtime, r)[0]
    assert entry["patient_ids"] == [north.patient_id]
    assert entry["outcome"] == "success"


def test_paging(client: TestClient, clinic: Clinic) -> None:
    north = clinic.north
    for _ in range(5):
        client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers())
    r = client.get("/patient/access-log?count=2", headers=north.headers("patient")).json()
    assert len(r["entries"]) == 2
    r2 = client.get(r["next"], headers=north.headers("patient")).json()
    assert r2["entries"]
    assert int(r2["entries"][0]["id"]) < int(r["entries"][-1]["id"])
    ids = {e["id"] for e in r["entries"]} & {e["id"] for e in r2["entries"]}
    assert not ids


def test_refusals(client: TestClient, clinic: Clinic, runtime: Runtime) -> None:
    north = clinic.north
    for role in ("practitioner", "staff", "privacy-officer"):
        r = client.get("/patient/access-log", headers=north.headers(role))
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")
        assert audit_of(runtime, r)[0]["outcome"] == "denied"
    r = client.get(f"/patient/access-log?patient={north.other_patient_id}",
                   headers=north.headers("patient"))  # fmt: skip
    assert r.status_code == 404
    assert (
        client.get("/patient/access-log?count=0", headers=north.headers("patient")).status_code
        == 400
    )
    assert (
        client.get("/patient/access-log?x=1", headers=north.headers("patient")).status_code == 400
    )
    assert client.get("/patient/access-log").status_code == 401
