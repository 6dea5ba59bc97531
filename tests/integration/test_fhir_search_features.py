"""Search features over HTTP, on SQLite and PostgreSQL: quantities and their prefixes, the
modifiers (:missing, :contains, :not, :exact), _sort with several keys, paging that stays
stable while others write, _include/_revinclude through the actor's scope, chained search,
_summary=count, _total, _elements, and the 400s for what is not supported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.identity.models import system_actor
from carevault.records import includes, snapshots
from carevault.records.models import search_snapshots
from carevault.runtime import Runtime
from tests.conftest import Clinic

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MRN_SYSTEM = "urn:oid:1.2.36.146.595.217.0.1"


# -- helpers ---------------------------------------------------------------------------


def get(
    client: TestClient, clinic: Clinic, rtype: str, params: Any, role: str = "practitioner"
) -> Response:
    return client.get(f"/fhir/{rtype}", params=params, headers=clinic.north.headers(role))


def search(
    client: TestClient, clinic: Clinic, rtype: str, params: Any, role: str = "practitioner"
) -> dict[str, Any]:
    response = get(client, clinic, rtype, params, role)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    assert bundle["type"] == "searchset"
    return bundle


def matches(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def included(bundle: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "include"
    }


def outcomes(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]


def found(client: TestClient, clinic: Clinic, rtype: str, params: Any) -> set[str]:
    bundle = search(client, clinic, rtype, params)
    assert bundle["total"] == len(matches(bundle)), "the test expects one page"
    return set(matches(bundle))


def refused(
    client: TestClient, clinic: Clinic, rtype: str, params: Any, role: str = "practitioner"
) -> str:
    response = get(client, clinic, rtype, params, role)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return str(outcome["issue"][0]["diagnostics"])


def create(client: TestClient, clinic: Clinic, body: dict[str, Any]) -> str:
    rtype = body["resourceType"]
    response = client.post(f"/fhir/{rtype}", json=body, headers=clinic.north.headers())
    assert response.status_code == 201, response.text
    rid: str = response.json()["id"]
    return rid


def observation(patient_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{patient_id}"}, **extra,
    }  # fmt: skip


def measured(patient_id: str, value: float, unit: str = "mg", **extra: Any) -> dict[str, Any]:
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return observation(patient_id, valueQuantity=quantity, **extra)


def next_url(bundle: dict[str, Any]) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


def all_pages(client: TestClient, clinic: Clinic, first: dict[str, Any]) -> list[str]:
    seen = matches(first)
    url = next_url(first)
    while url is not None:
        response = client.get(url, headers=clinic.north.headers())
        assert response.status_code == 200, response.text
        seen += matches(response.json())
        url = next_url(response.json())
    return seen


# -- quantities ----------------------------------------------------------------------------


def test_quantity_prefixes_and_implicit_precision(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    low = create(client, clinic, measured(alice, 5.4))
    exact = create(client, clinic, measured(alice, 5.43))
    high = create(client, clinic, measured(alice, 7))
    grams = create(client, clinic, measured(alice, 5.4, unit="g"))
    q = "value-quantity"
    # 5.4 means [5.35, 5.45): 5.4 and 5.43 both lie in it
    assert found(client, clinic, "Observation", {q: "5.4"}) == {low, exact, grams}
    assert found(client, clinic, "Observation", {q: "eq5.4"}) == {low, exact, grams}
    assert found(client, clinic, "Observation", {q: "5.43"}) == {exact}
    assert found(client, clinic, "Observation", {q: "ne5.4"}) == {high}
    assert found(client, clinic, "Observation", {q: "gt5.4"}) == {high}
    assert found(client, clinic, "Observation", {q: "ge5.4"}) == {low, exact, high, grams}
    assert found(client, clinic, "Observation", {q: "lt7"}) == {low, exact, grams}
    assert found(client, clinic, "Observation", {q: "le5.4"}) == {low, exact, grams}
    assert found(client, clinic, "Observation", {q: "lt5.4"}) == set()
    assert found(client, clinic, "Observation", {q: "sa6"}) == {high}
    assert found(client, clinic, "Observation", {q: "eb6"}) == {low, exact, grams}
    assert found(client, clinic, "Observation", {q: "ap7.5"}) == {high}
    # system and code, or code alone (any system), or a unit
    assert found(client, clinic, "Observation", {q: f"5.4|{UCUM}|mg"}) == {low, exact}
    assert found(client, clinic, "Observation", {q: "5.4||g"}) == {grams}
    assert found(client, clinic, "Observation", {q: "5.4|urn:other|mg"}) == set()
    assert found(client, clinic, "Observation", {q: "le10||mg"}) == {low, exact, high}
    # an update re-indexes; a deletion clears the index rows
    changed = measured(alice, 9, id=low)
    assert client.put(f"/fhir/Observation/{low}", json=changed, headers=clinic.north.headers())
    assert found(client, clinic, "Observation", {q: "gt8"}) == {low}
    assert client.delete(f"/fhir/Observation/{low}", headers=clinic.north.headers())
    assert found(client, clinic, "Observation", {q: "gt8"}) == set()
    for bad in ("five", "5.4|mg", "xx5", "5|a|b|c"):
        assert bad not in refused(client, clinic, "Observation", {q: bad})


def test_money_searches_by_currency(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id

    def invoice(amount: float, currency: str) -> dict[str, Any]:
        return {
            "resourceType": "Invoice", "status": "issued",
            "subject": {"reference": f"Patient/{alice}"},
            "totalNet": {"value": amount, "currency": currency},
        }  # fmt: skip

    euros = create(client, clinic, invoice(120.50, "EUR"))
    dollars = create(client, clinic, invoice(80, "USD"))
    assert found(client, clinic, "Invoice", {"totalnet": "gt100"}) == {euros}
    iso = "urn:iso:std:iso:4217"
    assert found(client, clinic, "Invoice", {"totalnet": f"lt1000|{iso}|USD"}) == {dollars}
    assert found(client, clinic, "Invoice", {"totalnet": "120.5"}) == {euros}
    assert found(client, clinic, "Invoice", {"totalgross:missing": "true"}) == {euros, dollars}


# -- modifiers --------------------------------------------------------------------------------


def test_missing_on_each_kind(client: TestClient, clinic: Clinic) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    bare = create(client, clinic, observation(alice))
    full = create(client, clinic, measured(alice, 3, effectiveDateTime="2024-01-02"))
    assert found(client, clinic, "Observation", {"date:missing": "true"}) == {bare}
    assert found(client, clinic, "Observation", {"date:missing": "false"}) == {full}
    assert found(client, clinic, "Observation", {"value-quantity:missing": "true"}) == {bare}
    assert found(client, clinic, "Observation", {"encounter:missing": "false"}) == set()
    assert found(client, clinic, "Observation", {"patient:missing": "false"}) == {bare, full}
    assert found(client, clinic, "Patient", {"telecom:missing": "false"}) == {alice}
    assert found(client, clinic, "Patient", {"telecom:missing": "true"}) == {bob}
    assert found(client, clinic, "Patient", {"name:missing": "true"}) == set()
    assert found(client, clinic, "Patient", {"birthdate:missing": "false"}) == {alice, bob}
    assert found(client, clinic, "Patient", {"identifier:missing": "false"}) == {alice, bob}
    assert "missing" in refused(client, clinic, "Patient", {"gender:missing": "yes"})


def test_contains_on_strings_by_hashed_trigrams(client: TestClient, clinic: Clinic) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id  # Quintero, Okafor
    assert found(client, clinic, "Patient", {"name:contains": "inter"}) == {alice}
    assert found(client, clinic, "Patient", {"family:contains": "NTÉR"}) == {alice}
    assert found(client, clinic, "Patient", {"name:contains": "kaf"}) == {bob}
    assert found(client, clinic, "Patient", {"name:contains": "kaf,inte"}) == {alice, bob}
    assert found(client, clinic, "Patient", {"family:contains": "alic"}) == set()  # a given name
    assert found(client, clinic, "Patient", {"name:contains": "xyz"}) == set()
    assert "3" in refused(client, clinic, "Patient", {"name:contains": "in"})
    # identifiers and telecom are hashed whole: no substrings, and the 400 says why
    for name in ("identifier:contains", "telecom:contains", "phone:contains"):
        assert "hash" in refused(client, clinic, "Patient", {name: "ALICE"})


def test_not_on_tokens_and_exact_on_strings(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    final = create(client, clinic, observation(alice))
    draft = create(client, clinic, observation(alice, status="preliminary"))
    amended = create(client, clinic, observation(alice, status="amended"))
    assert found(client, clinic, "Observation", {"status:not": "final"}) == {draft, amended}
    assert found(client, clinic, "Observation", {"status:not": "final,amended"}) == {draft}
    assert found(client, clinic, "Observation", {"code:not": f"{LOINC}|2345-7"}) == set()
    assert found(client, clinic, "Observation", {"status:not": "cancelled"}) == {
        final, draft, amended,
    }  # fmt: skip
    assert found(client, clinic, "Patient", {"family:exact": "Quintero"}) == {alice}
    assert found(client, clinic, "Patient", {"family:exact": "Quinter"}) == set()
    for params in ({"date:exact": "2024"}, {"status:contains": "fin"}, {"name:not": "x"},
                   {"value-quantity:exact": "5"}, {"patient:contains": "x"}):  # fmt: skip
        refused(client, clinic, "Observation" if "name:not" not in params else "Patient", params)


# -- sorting -----------------------------------------------------------------------------------


def test_sort_by_date_both_ways_with_ties_broken_by_id(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    made = {
        when: create(client, clinic, observation(alice, effectiveDateTime=when))
        for when in ("2024-03-01", "2023-01-01", "2025-07-04")
    }
    tie = sorted(
        [
            made["2024-03-01"],
            create(client, clinic, observation(alice, effectiveDateTime="2024-03-01")),
        ]
    )
    undated = create(client, clinic, observation(alice))
    asc = matches(search(client, clinic, "Observation", {"_sort": "date"}))
    assert asc == [made["2023-01-01"], *tie, made["2025-07-04"], undated]  # no value: last
    desc = matches(search(client, clinic, "Observation", {"_sort": "-date"}))
    assert desc == [made["2025-07-04"], *tie, made["2023-01-01"], undated]
    two_keys = matches(search(client, clinic, "Observation", {"_sort": "-date,-_id"}))
    assert two_keys == [made["2025-07-04"], *reversed(tie), made["2023-01-01"], undated]
    by_id = matches(search(client, clinic, "Observation", {"_sort": "-_id"}))
    assert by_id == sorted(by_id, reverse=True)


def test_sort_by_token_then_quantity_and_multiple_values(
    client: TestClient, clinic: Clinic
) -> None:
    alice = clinic.north.patient_id

    def with_components(status: str, *values: float) -> dict[str, Any]:
        components = [
            {"code": {"text": "part"}, "valueQuantity": {"value": v, "unit": "mg"}} for v in values
        ]
        return observation(alice, status=status, component=components)

    spread = create(client, clinic, with_components("final", 1, 9))
    middle = create(client, clinic, with_components("final", 5))
    draft = create(client, clinic, with_components("preliminary", 2))
    # ascending uses each resource's lowest value, descending its highest (FHIR)
    key = "component-value-quantity"
    assert matches(search(client, clinic, "Observation", {"_sort": key})) == [spread, draft, middle]
    assert matches(search(client, clinic, "Observation", {"_sort": f"-{key}"})) == [
        spread, middle, draft,
    ]  # fmt: skip
    by_status = matches(search(client, clinic, "Observation", {"_sort": f"status,-{key}"}))
    assert by_status == [spread, middle, draft]
    split = [("_sort", "-status"), ("_sort", key)]  # repeated _sort params add keys
    assert matches(search(client, clinic, "Observation", split)) == [draft, spread, middle]


def test_sort_on_last_updated(client: TestClient, clinic: Clinic, clock: ManualClock) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    clock.advance(timedelta(minutes=5))
    client.put(
        f"/fhir/Patient/{alice}",
        json={"resourceType": "Patient", "id": alice, "gender": "female"},
        headers=clinic.north.headers(),
    )
    assert matches(search(client, clinic, "Patient", {"_sort": "-_lastUpdated"}))[0] == alice
    assert matches(search(client, clinic, "Patient", {"_sort": "_lastUpdated"}))[0] == bob


def test_sort_on_hashed_or_unknown_parameters_is_refused(
    client: TestClient, clinic: Clinic
) -> None:
    for name in ("name", "family", "identifier", "birthdate", "telecom"):
        message = refused(client, clinic, "Patient", {"_sort": name})
        assert "hash" in message
    assert "reference" in refused(client, clinic, "Observation", {"_sort": "patient"})
    refused(client, clinic, "Observation", {"_sort": "colour"})


# -- paging under writes -------------------------------------------------------------------------


def test_sorted_paging_is_stable_while_others_write(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    alice = clinic.north.patient_id
    made = [
        create(client, clinic, observation(alice, effectiveDateTime=f"2024-01-{day:02d}"))
        for day in range(10, 20)
    ]
    first = search(client, clinic, "Observation", {"_sort": "date", "_count": "3"})
    assert first["total"] == 10
    assert matches(first) == made[:3]
    # Between pages: a new one that sorts first, a date moved to the end, one deleted.
    create(client, clinic, observation(alice, effectiveDateTime="2020-01-01"))
    moved = observation(alice, effectiveDateTime="2030-01-01", id=made[4])
    assert client.put(f"/fhir/Observation/{made[4]}", json=moved,
                      headers=clinic.north.headers()).status_code == 200  # fmt: skip
    assert client.delete(f"/fhir/Observation/{made[7]}",
                         headers=clinic.north.headers()).status_code == 204  # fmt: skip
    url = next_url(first)
    assert url is not None
    seen = list(matches(first))
    while url is not None:
        response = client.get(url, headers=clinic.north.headers())
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == 10  # the snapshot's
        seen += matches(page)
        url = next_url(page)
    # the snapshot's order, with the updated one in its old place, the deleted one skipped
    assert seen == [rid for rid in made if rid != made[7]]
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(search_snapshots)).scalar() == 1


def test_unsorted_paging_visits_each_once_while_others_create(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    gate = runtime.gate(system_actor(clinic.north.tenant_id, "search test data"))
    body = {"resourceType": "Patient", "name": [{"family": "Keyset"}]}
    wanted = {gate.create("Patient", dict(body)).resource_id for _ in range(9)}
    first = search(client, clinic, "Patient", {"family": "keyset", "_count": "4"})
    added = gate.create("Patient", dict(body)).resource_id
    seen = all_pages(client, clinic, first)
    assert len(seen) == len(set(seen))
    assert wanted <= set(seen) <= wanted | {added}


def test_a_snapshot_lapses_is_bound_to_its_user_and_expired_ones_are_purged(
    client: TestClient, clinic: Clinic, clock: ManualClock, runtime: Runtime
) -> None:
    alice = clinic.north.patient_id
    for day in range(1, 6):
        create(client, clinic, observation(alice, effectiveDateTime=f"2024-02-0{day}"))
    first = search(client, clinic, "Observation", {"_sort": "-date", "_count": "2"})
    url = next_url(first)
    assert url is not None
    assert client.get(url, headers=clinic.north.headers("staff")).status_code == 400
    clock.advance(timedelta(hours=2))
    assert client.get(url, headers=clinic.north.headers()).status_code == 400
    again = search(client, clinic, "Observation", {"_sort": "-date", "_count": "2"})
    assert len(all_pages(client, clinic, again)) == 5
    with runtime.reader.connect() as conn:
        rows = conn.execute(sa.select(search_snapshots.c.expires_at)).scalars().all()
    assert len(rows) == 1  # the lapsed one was purged when the new one was written


def test_a_snapshot_is_sealed_to_its_user(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    for day in range(1, 4):
        create(
            client,
            clinic,
            observation(clinic.north.patient_id, effectiveDateTime=f"2024-02-0{day}"),
        )
    first = search(client, clinic, "Observation", {"_sort": "date", "_count": "1"})
    tenant_id, now = clinic.north.tenant_id, "2026-11-23T09:00:00.000000Z"
    with runtime.reader.connect() as conn:
        row = conn.execute(sa.select(search_snapshots)).one()
        assert b"2024" not in row.sealed_ids
        kept = snapshots.read(conn, runtime.vault, tenant_id, row.user_id, row.snapshot_id,
                              "Observation", now)  # fmt: skip
        assert kept is not None
        assert kept[:1] == matches(first)
        assert len(kept) == 3
        for user, rtype in (("someone-else", "Observation"), (row.user_id, "Patient")):
            assert snapshots.read(conn, runtime.vault, tenant_id, user, row.snapshot_id,
                                  rtype, now) is None  # fmt: skip
    # moved to another user in the database, it no longer opens (sealed to user and id)
    with runtime.writer.begin() as conn:
        conn.execute(sa.update(search_snapshots).values(user_id="someone-else"))
    with runtime.reader.connect() as conn:
        assert snapshots.read(conn, runtime.vault, tenant_id, "someone-else", row.snapshot_id,
                              "Observation", now) is None  # fmt: skip


def test_a_sorted_search_over_the_cap_asks_to_narrow(
    client: TestClient, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "MAX_SNAPSHOT", 3)
    for day in range(1, 5):
        create(
            client,
            clinic,
            observation(clinic.north.patient_id, effectiveDateTime=f"2024-02-0{day}"),
        )
    assert "narrow" in refused(client, clinic, "Observation", {"_sort": "date"})
    assert (
        len(matches(search(client, clinic, "Observation", {"_sort": "date", "status": "x"}))) == 0
    )
    assert (
        search(client, clinic, "Observation", {"date": "le2024-02-03", "_sort": "date"})["total"]
        == 3
    )


# -- includes --------------------------------------------------------------------------------


def _practitioner(client: TestClient, clinic: Clinic, family: str) -> str:
    body = {"resourceType": "Practitioner", "name": [{"family": family}]}
    response = client.post(
        "/fhir/Practitioner", json=body, headers=clinic.north.headers("practice-admin")
    )
    assert response.status_code == 201, response.text
    rid: str = response.json()["id"]
    return rid


def test_include_and_revinclude(client: TestClient, clinic: Clinic, runtime: Runtime) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    hale = _practitioner(client, clinic, "Hale")
    performer = [{"reference": f"Practitioner/{hale}"}]
    mine = create(client, clinic, observation(alice, performer=performer))
    theirs = create(client, clinic, observation(bob))
    bundle = search(client, clinic, "Observation", [
        ("_include", "Observation:patient"), ("_include", "Observation:performer:Practitioner"),
    ])  # fmt: skip
    assert set(matches(bundle)) == {mine, theirs}
    assert included(bundle) == {("Patient", alice), ("Patient", bob), ("Practitioner", hale)}
    assert bundle["total"] == 2  # includes are not counted

    rev = client.get("/fhir/Patient", params={"_id": alice, "_revinclude": "Observation:subject"},
                     headers=clinic.north.headers())  # fmt: skip
    assert rev.status_code == 200
    assert matches(rev.json()) == [alice]
    assert included(rev.json()) == {("Observation", mine)}
    # the audit entry of the search names the included resources and their patients
    entry = _audit_entry(runtime, rev.headers["x-request-id"])
    assert mine in orjson.loads(entry["resource_ids"])
    assert alice in orjson.loads(entry["patient_ids"])

    only_practitioners = search(client, clinic, "Observation",
                                {"_include": "Observation:performer:Organization"})  # fmt: skip
    assert included(only_practitioners) == set()


def _audit_entry(runtime: Runtime, request_id: str) -> dict[str, Any]:
    with runtime.reader.connect() as conn:
        rows = (
            conn.execute(
                sa.select(audit_entries).where(
                    audit_entries.c.request_id == request_id, audit_entries.c.action == "search"
                )
            )
            .mappings()
            .all()
        )
    assert len(rows) == 1
    return dict(rows[0])


def test_includes_stay_inside_a_patient_users_compartment(
    client: TestClient, clinic: Clinic
) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    bobs = create(client, clinic, observation(bob))
    # Alice's observation derives from one of Bob's: Alice may not see Bob's.
    alices = create(
        client, clinic, observation(alice, derivedFrom=[{"reference": f"Observation/{bobs}"}])
    )
    bundle = search(client, clinic, "Observation",
                    [("_include", "Observation:derived-from"), ("_include", "Observation:patient")],
                    role="patient")  # fmt: skip
    assert matches(bundle) == [alices]
    assert included(bundle) == {("Patient", alice)}
    rev = search(
        client, clinic, "Observation", {"_id": bobs, "_revinclude": "Observation:derived-from"}
    )
    assert included(rev) == {("Observation", alices)}  # a practitioner sees both
    # A patient may not read Group: a revinclude of Groups is left out with a warning.
    group = {"resourceType": "Group", "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{alice}"}}]}  # fmt: skip
    create(client, clinic, group)
    own = search(client, clinic, "Patient", {"_revinclude": "Group:member"}, role="patient")
    assert matches(own) == [alice]
    assert included(own) == set()
    [warning] = outcomes(own)
    assert "Group" in warning["issue"][0]["diagnostics"]
    assert warning["issue"][0]["severity"] == "warning"


def test_includes_are_capped_per_page_with_a_warning(
    client: TestClient, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(includes, "MAX_INCLUDED", 1)
    create(client, clinic, observation(clinic.north.patient_id))
    create(client, clinic, observation(clinic.north.other_patient_id))
    bundle = search(client, clinic, "Observation", {"_include": "Observation:patient"})
    assert len(matches(bundle)) == 2
    assert len(included(bundle)) == 1
    [warning] = outcomes(bundle)
    assert "_count" in warning["issue"][0]["diagnostics"]


def test_include_refusals(client: TestClient, clinic: Clinic) -> None:
    for value in ("Patient:general-practitioner", "Observation", "Observation:code",
                  "Observation:patient:Practitioner", "Observation:*"):  # fmt: skip
        refused(client, clinic, "Observation", {"_include": value})
    refused(client, clinic, "Patient", {"_revinclude": "Observation:has-member"})
    assert "iterate" in refused(
        client, clinic, "Observation", {"_include:iterate": "Observation:patient"}
    )
    lenient = client.get(
        "/fhir/Observation", params={"_include:iterate": "Observation:patient"},
        headers=clinic.north.headers(Prefer="handling=lenient"),
    )  # fmt: skip
    assert lenient.status_code == 200
    assert "_include:iterate" in str(outcomes(lenient.json()))


# -- chained search -----------------------------------------------------------------------------


def test_chained_search_on_references(client: TestClient, clinic: Clinic) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    mine = create(client, clinic, observation(alice))
    theirs = create(client, clinic, observation(bob))
    mrn = f"{MRN_SYSTEM}|MRN-ALICE-1"
    assert found(client, clinic, "Observation", {"subject:Patient.identifier": mrn}) == {mine}
    assert found(client, clinic, "Observation", {"patient.identifier": mrn}) == {mine}
    assert found(client, clinic, "Observation", {"patient.identifier": "MRN-BOB-2"}) == {theirs}
    assert found(client, clinic, "Observation", {"patient.name": "quin"}) == {mine}
    assert found(client, clinic, "Observation", {"subject.name": "okaf"}) == {theirs}
    assert found(client, clinic, "Observation", {"patient.name:exact": "Quintero"}) == {mine}
    assert found(client, clinic, "Observation", {"patient.gender": "male"}) == {theirs}
    assert found(client, clinic, "Observation", {"patient.birthdate": "ge1980"}) == {mine}
    assert found(client, clinic, "Observation", {"patient.name": "nobody"}) == set()

    hale = _practitioner(client, clinic, "Hale")
    gp = {"resourceType": "Patient", "name": [{"family": "Withgp"}],
          "generalPractitioner": [{"reference": f"Practitioner/{hale}"}]}  # fmt: skip
    cared = create(client, clinic, gp)
    assert found(client, clinic, "Patient", {"general-practitioner.name": "hal"}) == {cared}
    assert found(
        client, clinic, "Patient", {"general-practitioner:Practitioner.family": "hale"}
    ) == {cared}
    assert found(client, clinic, "Patient", {"general-practitioner.name": "zzz"}) == set()
    refused(client, clinic, "Observation", {"patient.nickname": "x"})
    refused(client, clinic, "Observation", {"patient.general-practitioner.name": "x"})
    refused(client, clinic, "Observation", {"status.name": "x"})
    refused(client, clinic, "Observation", {"patient:Practitioner.name": "x"})
    # a chain reads the target type's index: the actor must be allowed to read that type
    denied = get(client, clinic, "Consent", {"data:Group.identifier": "x"}, role="patient")
    assert denied.status_code == 403
    assert (
        get(client, clinic, "Consent", {"data.identifier": "x"}, role="patient").status_code == 200
    )


# -- summary, total, count, elements ---------------------------------------------------------


def test_summary_count_total_and_elements(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    for _ in range(3):
        create(client, clinic, measured(alice, 4))
    counted = search(client, clinic, "Observation", {"_summary": "count", "_count": "1"})
    assert counted["total"] == 3
    assert counted.get("entry", []) == []
    assert [link["relation"] for link in counted["link"]] == ["self"]
    zero = search(client, clinic, "Observation", {"_count": "0"})
    assert (zero["total"], zero.get("entry", [])) == (3, [])
    no_total = search(client, clinic, "Observation", {"_total": "none"})
    assert "total" not in no_total
    assert len(matches(no_total)) == 3
    assert search(client, clinic, "Observation", {"_total": "accurate"})["total"] == 3
    slim = search(client, clinic, "Observation", {"_elements": "status,subject"})
    resource = slim["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "status", "subject"}
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])
    refused(client, clinic, "Observation", {"_summary": "text"})
    refused(client, clinic, "Observation", {"_total": "maybe"})
    refused(client, clinic, "Observation", {"_elements": "a.b"})


# -- the CapabilityStatement -----------------------------------------------------------------------


def test_capability_lists_includes_sort_keys_and_modifiers(
    client: TestClient, clinic: Clinic
) -> None:
    statement = client.get("/fhir/metadata").json()
    rest = statement["rest"][0]
    assert "_summary=count" in rest["documentation"]
    resources = {r["type"]: r for r in rest["resource"]}
    observation_ = resources["Observation"]
    assert "Observation:patient" in observation_["searchInclude"]
    assert "Observation:subject" in resources["Patient"]["searchRevInclude"]
    assert "date" in observation_["documentation"]
    docs = {p["name"]: p["documentation"] for p in resources["Patient"]["searchParam"]}
    assert ":contains" in docs["name"]
    assert "over-match" in docs["name"]
    assert ":missing" in docs["identifier"]
    assert "refused" in docs["identifier"]
    # every listed include and revinclude is accepted
    for value in observation_["searchInclude"]:
        search(client, clinic, "Observation", {"_include": value})
    for value in resources["Patient"]["searchRevInclude"]:
        search(client, clinic, "Patient", {"_revinclude": value})


def test_unsupported_modifiers_and_features_are_400_unless_lenient(
    client: TestClient, clinic: Clinic
) -> None:
    alice = clinic.north.patient_id
    unsupported = [
        ("family:sounds-like", "Quintero"), ("gender:text", "female"), ("_sort", "name"),
        ("identifier:contains", "ALICE"), ("_summary", "text"), ("general-practitioner.x", "1"),
    ]  # fmt: skip
    phi = ("Quintero", "ALICE")
    for name, value in unsupported:
        message = refused(client, clinic, "Patient", [(name, value)])
        assert not any(secret in message for secret in phi)
    response = client.get(
        "/fhir/Patient", params=[*unsupported, ("gender", "female")],
        headers=clinic.north.headers(Prefer="handling=lenient"),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert matches(bundle) == [alice]
    [outcome] = outcomes(bundle)
    text = outcome["issue"][0]["diagnostics"]
    for name, _ in unsupported:
        assert name in text
    assert not any(secret in text for secret in phi)
    # a bad value is still a 400, lenient or not
    lenient_bad = client.get(
        "/fhir/Patient", params={"birthdate": "nonsense"},
        headers=clinic.north.headers(Prefer="handling=lenient"),
    )  # fmt: skip
    assert lenient_bad.status_code == 400
