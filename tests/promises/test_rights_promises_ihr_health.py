"""Rights promises of ihr.health (seed 004): the CCPA rights to know (twice a year), to a
portable copy, to correct and to delete; verification before any answer, authorized agents
with signed permission, 45 days from verification with one told extension, no account
needed, request data used only to verify; and deleting what you submitted yourself."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from carevault.audit.models import RequestInfo
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.identity.models import system_actor
from carevault.rights import directions
from carevault.rights.models import rights_requests
from carevault.rights.wiring import rights_for
from tests.promises.conftest import Deployment
from tests.promises.rights_steps import (
    VENDOR,
    as_person,
    audit,
    case,
    copy,
    create,
    day,
    days,
    file,
    in_time,
    notice,
    observation,
    outbox,
    points,
    queue,
    refused,
    sign_in,
    today_plus,
    user_id,
    work,
)

KNOW = {"action": "know", "categories": ["account"]}
COPY = {"action": "access", "categories": ["account"]}
PERMISSION = {"signed_by_consumer": True, "document_sha256": "c" * 64, "signed_on": "2026-11-01"}


@pytest.mark.promise("IH-17")
def test_ihr_health_a_third_request_to_know_in_twelve_months_is_refused(profiled: Any) -> None:
    dep: Deployment = profiled("ihr-health")
    first, route = file(dep, KNOW, role="staff")
    assert (route["rulebook"], route["right"]) == ("ccpa", "ccpa-know")
    assert day(first["due_at"]) == today_plus(dep, 45)
    days(dep, 30)
    second, _ = file(dep, COPY, role="staff")  # a portable copy counts against the same two
    days(dep, 30)
    third = refused(dep, KNOW, role="staff")
    assert third.status_code == 422
    assert "2 in any 12 months" in third.json()["detail"]
    assert "You may ask again from" in third.json()["detail"]
    assert len(queue(dep, "vendor-operator")) == 2
    refusals = [e for e in audit(dep.runtime, VENDOR_CHAIN) if e.outcome != "success"]
    assert any("refused: ccpa-know" in (e.detail or "") for e in refusals)
    # the answer comes within 45 days, or 45 more with the one extension
    extended = work(dep, second, "extend", {"reason": "We are gathering your usage records."})
    assert extended.status_code == 200, extended.text
    assert day(extended.json()["due_at"]) == today_plus(dep, 90 - 30)  # 45 + 45 from receipt
    days(dep, 50)  # day 80 of the extended 90
    done = work(dep, second, "fulfil", {})
    assert done.status_code == 200
    assert in_time(done.json())
    days(dep, 256)  # day 366: the first request has left the 12-month window, the second not
    file(dep, KNOW, role="staff")
    assert refused(dep, COPY, role="staff").status_code == 422


@pytest.mark.promise("IH-18")
def test_ihr_health_a_copy_is_a_portable_file(profiled: Any) -> None:
    dep: Deployment = profiled("ihr-health")
    made, route = file(dep, COPY, role="practitioner")
    assert route["right"] == "ccpa-portability"
    assert work(dep, made, "fulfil", {}).status_code == 200
    got = copy(dep, made["request_id"], "json", "practitioner")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    portable = orjson.loads(got.content)  # machine-readable, for another service to import
    assert portable["account"]["email"] == "practitioner@north.example.org"
    assert portable["account"]["role"] == "practitioner"
    assert {"period", "sign_in", "sessions", "api_tokens", "emails_sent"} <= set(portable)


@pytest.mark.promise("IH-19")
def test_ihr_health_a_verified_correction_is_made_in_time(profiled: Any) -> None:
    dep: Deployment = profiled("ihr-health")
    fix = {
        "action": "correct",
        "categories": ["account"],
        "statement": "The name on my account is misspelt.",
    }
    # someone who cannot be verified gets no correction
    wrong = {"email": "staff@north.example.org", "account_created_on": "2001-01-01"}
    assert refused(dep, as_person(dep, fix, wrong), role=None).status_code == 403
    assert queue(dep, "vendor-operator") == []
    made, route = file(dep, fix, role="staff")
    assert (route["right"], made["verification"]) == ("ccpa-correct", "signed-in")
    assert day(made["due_at"]) == today_plus(dep, 45)
    extended = work(dep, made, "extend", {"reason": "Your sign-in records are being checked."})
    assert day(extended.json()["due_at"]) == today_plus(dep, 90)
    days(dep, 60)
    assert work(dep, made, "decide", {"decision": "accept"}).status_code == 200
    done = work(dep, made, "fulfil", {"corrected": "account name corrected"})
    assert done.status_code == 200, done.text
    view = case(dep, made["request_id"], "staff").json()
    assert in_time(view)
    assert "was corrected" in notice(view, "fulfilled")
    assert copy(dep, made["request_id"], "note", "staff").text == "account name corrected"


@pytest.mark.promise("IH-23")
def test_ihr_health_no_answer_before_the_requester_is_verified(profiled: Any) -> None:
    dep: Deployment = profiled("ihr-health")
    held = points(dep, "staff")
    for given in (
        {},
        {"email": held["email"]},  # one point is not enough
        {**held, "account_created_on": "2020-02-02"},  # a wrong point fails them all
        {"email": "nobody@north.example.org", "account_created_on": held["account_created_on"]},
    ):
        answer = refused(dep, as_person(dep, COPY, given), role=None)
        assert answer.status_code == 403, given
        assert "could not verify" in answer.json()["detail"]
        assert "nothing was disclosed" in answer.json()["detail"] or not given
    assert queue(dep, "vendor-operator") == []
    made, _ = file(dep, as_person(dep, COPY, held), role=None)
    assert made["verification"] == "data-points:2"
    assert work(dep, made, "fulfil", {}).status_code == 200
    # the answer reaches the verified account holder, never the form
    got = copy(dep, made["request_id"], "json", "staff")
    assert got.json()["account"]["email"] == held["email"]


@pytest.mark.promise("IH-24")
def test_ihr_health_an_agent_needs_the_consumers_signed_permission(profiled: Any) -> None:
    dep: Deployment = profiled("ihr-health")
    held = points(dep, "staff")
    for permission in (None, {**PERMISSION, "signed_by_consumer": False}):
        body = as_person(dep, KNOW, held, requester="authorized-agent", agent_permission=permission)
        answer = refused(dep, body, role=None)
        assert answer.status_code == 403
        assert "signed permission" in answer.json()["detail"]
    assert queue(dep, "vendor-operator") == []
    body = as_person(dep, KNOW, held, requester="authorized-agent", agent_permission=PERMISSION)
    made, _ = file(dep, body, role=None)
    assert made["requester_kind"] == "authorized-agent"
    sent = outbox(dep.runtime, dep.clinic.north.tenant_id, "rights-request-received")
    assert [m["recipient"] for m in sent] == [user_id(dep, "staff")]  # the consumer is told


@pytest.mark.promise("IH-25")
def test_ihr_health_forty_five_days_from_verification_and_a_told_extension(
    profiled: Any,
) -> None:
    dep: Deployment = profiled("ihr-health")
    made, _ = file(dep, KNOW, role="staff")
    late, _ = file(dep, COPY, role="practitioner")
    assert made["received_at"] == late["received_at"]
    assert day(made["due_at"]) == today_plus(dep, 45)
    days(dep, 44)
    assert [r["late"] for r in queue(dep, "vendor-operator")] == [False, False]
    reason = "We need to collect your records from our billing processor."
    extended = work(dep, made, "extend", {"reason": reason})
    assert extended.status_code == 200, extended.text
    assert day(extended.json()["due_at"]) == today_plus(dep, 46)  # 45 + 45 from receipt
    view = case(dep, made["request_id"], "staff").json()
    told = notice(view, "extended")
    assert reason in told
    assert "45 more days" in told
    sent = outbox(dep.runtime, dep.clinic.north.tenant_id, "rights-request-extended")
    assert [(m["recipient"], m["days"]) for m in sent] == [(user_id(dep, "staff"), 45)]
    assert work(dep, made, "extend", {"reason": reason}).status_code == 409  # once only
    days(dep, 2)  # day 46: the one not extended is late; an extension cannot come now
    by_id = {r["request_id"]: r["late"] for r in queue(dep, "vendor-operator")}
    assert by_id == {made["request_id"]: False, late["request_id"]: True}
    too_late = work(dep, late, "extend", {"reason": reason})
    assert too_late.status_code == 409
    assert "deadline has passed" in too_late.json()["detail"]


@pytest.mark.promise("IH-26")
def test_ihr_health_a_request_needs_no_account(profiled: Any) -> None:
    dep: Deployment = profiled("ihr-health")
    held = points(dep, "practitioner")
    body = as_person(dep, {"action": "delete", "categories": ["marketing-contacts"]}, held)
    made, route = file(dep, body, role=None)  # no sign-in, no token: a web form
    assert (route["right"], route["decides"]) == ("ccpa-delete", VENDOR)
    assert made["channel"] == "web-form"
    assert made["requester_kind"] == "person"
    assert [r["request_id"] for r in queue(dep, "vendor-operator")] == [made["request_id"]]


@pytest.mark.promise("IH-27")
def test_ihr_health_request_data_only_verify(profiled: Any) -> None:
    dep: Deployment = profiled("ihr-health")
    held = points(dep, "staff")
    body = as_person(dep, KNOW, held, requester="authorized-agent", agent_permission=PERMISSION)
    made, _ = file(dep, body, role=None)
    rid = made["request_id"]
    service = rights_for(dep.runtime)
    with dep.runtime.reader.connect() as conn:
        row = conn.execute(select(rights_requests).where(rights_requests.c.request_id == rid)).one()
    kept = service.open_details(row.tenant_id, rid, row.details_sealed)
    assert "data_points" not in kept  # matched, then dropped
    assert held["account_created_on"] not in orjson.dumps(kept).decode()
    # nothing of it in the audit trail, the case, the notices or any message
    entries = audit(dep.runtime, VENDOR_CHAIN) + audit(dep.runtime, dep.clinic.north.tenant_id)
    trail = orjson.dumps([[e.detail, e.resource_ids] for e in entries]).decode()
    assert held["email"] not in trail
    assert held["account_created_on"] not in trail
    assert work(dep, made, "fulfil", {}).status_code == 200
    view = case(dep, rid, "staff").json()
    assert held["email"] not in orjson.dumps(view).decode()
    with dep.runtime.reader.connect() as conn:
        from carevault.messaging.models import notification_outbox

        params = conn.execute(select(notification_outbox.c.params)).scalars().all()
    assert all(held["email"] not in p for p in params)
    # and the answer to know says request data serve one purpose only
    answer = copy(dep, rid, "json", "staff").json()
    assert "request-data" not in answer["recipients"]
    purposes = [k for k, p in answer["purposes"].items() if "verify" in p.lower()]
    assert purposes == ["verify-requests"]


@pytest.mark.promise("IH-08")
def test_ihr_health_users_delete_their_own_data(profiled: Any) -> None:
    dep: Deployment = profiled("ihr-health")
    north = dep.clinic.north
    me = f"Patient/{north.patient_id}"
    submitted = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "subject": {"reference": me},
        "author": {"reference": me},
        "source": {"reference": me},
    }
    # the patient's answers, filed from their account by the portal (author: the patient)
    mine = create(dep.runtime, north, submitted).split("/")[1]
    recorded = create(dep.runtime, north, observation(north.patient_id)).split("/")[1]
    patient, doctor = north.headers("patient"), north.headers("practitioner")
    # what the practice recorded is not the patient's to delete; nor is it someone else's call
    kept = dep.client.delete(f"/patient/submissions/Observation/{recorded}", headers=patient)
    assert kept.status_code == 403
    other = dep.client.delete(f"/patient/submissions/QuestionnaireResponse/{mine}", headers=doctor)
    assert other.status_code == 403
    done = dep.client.delete(f"/patient/submissions/QuestionnaireResponse/{mine}", headers=patient)
    assert done.status_code == 200, done.text
    assert done.json()["kind"] == "submission"
    assert dep.client.get(f"/fhir/QuestionnaireResponse/{mine}", headers=doctor).status_code == 404
    history = dep.client.get(f"/fhir/QuestionnaireResponse/{mine}/_history", headers=doctor)
    assert history.status_code == 404
    assert dep.client.get(f"/fhir/Observation/{recorded}", headers=doctor).status_code == 200


@pytest.mark.promise("IH-20")
def test_ihr_health_a_verified_deletion_deletes_and_directs_the_service_providers(
    profiled: Any,
) -> None:
    dep: Deployment = profiled("ihr-health")
    north = dep.clinic.north
    staff = user_id(dep, "staff")
    # an earlier opt-out: its suppression entry is the one thing the policy keeps
    off = dep.client.post(
        "/patient/preferences", json={"marketing": False}, headers=north.headers("staff")
    )
    assert off.status_code == 200, off.text
    asked = {"action": "delete", "categories": ["account", "usage", "marketing-contacts"]}
    # someone who cannot be verified deletes nothing and directs no one
    wrong = {"email": "staff@north.example.org", "account_created_on": "2001-01-01"}
    assert refused(dep, as_person(dep, asked, wrong), role=None).status_code == 403
    assert queue(dep, "vendor-operator") == []
    assert _directions(dep) == []
    trail = [e.detail or "" for e in audit(dep.runtime, VENDOR_CHAIN) if e.outcome != "success"]
    assert any("refused: ccpa-delete" in d for d in trail)
    made, route = file(dep, asked, role="staff")
    assert route["right"] == "ccpa-delete"
    assert work(dep, made, "decide", {"decision": "accept"}).status_code == 200
    days(dep, 10)
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    deletion = done.json()["fulfilment"]["deletion"]
    # deleted from our records: the account's identity, its usage and its marketing data
    assert deletion["erased"] is True
    assert {"account_identity", "sessions", "api_tokens", "marketing_preference"} <= set(
        deletion["deleted"]
    )
    assert deletion["deleted"]["marketing_preference"] == 1
    assert sign_in(dep.client, north, "staff").status_code == 401
    # kept only what the law or the policy requires, each with its reason
    kept = " ".join(deletion["kept"])
    assert "suppression list" in kept
    assert "7101" in kept
    # each service provider the policy names as receiving these categories is directed
    expected = {
        "affiliates": ["account"],
        "analytics": ["usage"],
        "business-transfer": ["account", "usage"],
        "vendors": ["account", "usage"],
    }
    directed = {d["recipient"]: d for d in deletion["directed"]}
    assert {k: d["categories"] for k, d in directed.items()} == expected
    assert all(d["directed_at"] == done.json()["fulfilled_at"] for d in directed.values())
    assert all(d["state"] == "pending" for d in directed.values())
    assert set(directed["vendors"]["bound_by"]) == {"binding-agreement", "baa"}
    # the directions wait in an outbox an adapter for each provider takes and reports on
    waiting = _directions(dep)
    assert {w["recipient"] for w in waiting} == set(expected)
    assert {w["subject_ref"] for w in waiting} == {f"User/{north.tenant_id}/{staff}"}
    vendors = next(d["direction_id"] for d in waiting if d["recipient"] == "vendors")
    adapter = system_actor(VENDOR_CHAIN, "deletion directions adapter: vendors")
    rights_for(dep.runtime).mark_direction(adapter, vendors, directions.SENT, RequestInfo())
    assert {w["recipient"] for w in _directions(dep)} == set(expected) - {"vendors"}
    # and the answer says so, in writing, at the address the account had
    [sent] = outbox(dep.runtime, VENDOR_CHAIN, "rights-request-update")  # the kept address
    assert made["request_id"] in sent["link"]
    view = dep.client.get(sent["link"])  # the account is gone: the emailed link opens it
    assert view.status_code == 200, view.text
    told = next(n["text"] for n in view.json()["notices"] if n["kind"] == "fulfilled")
    assert "directed our service providers to delete it too" in told
    assert "vendors" in told
    assert "What we kept, and why" in told


def _directions(dep: Deployment) -> list[dict[str, Any]]:
    with dep.runtime.reader.connect() as conn:
        return directions.pending(conn)
