"""Every deadline at day N-1, N and N+1 by moving the injected clock: a case is late in the
officer's queue only once its due date has passed; one extension, with its reason in
writing and an email that says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from carevault.clock import ManualClock
from carevault.errors import Conflict, Forbidden
from carevault.rights.models import QueueItem
from carevault.runtime import Runtime
from tests.conftest import Clinic
from tests.rights_helpers import ACCESS, WHO, actor, outbox, rights_audit, vendor_audit, wire
from tests.smtp_sink import SmtpSink

HIPAA = [
    ({"action": "access", "categories": ["phi"]}, 30, 30),
    ({"action": "amend", "categories": ["phi"], "statement": "My allergy is wrong."}, 60, 30),
    ({"action": "accounting", "categories": ["phi"]}, 60, 30),
]


def _late(items: list[QueueItem], request_id: str) -> bool | None:
    for item in items:
        if item.request_id == request_id:
            return item.late
    return None


def _amendable(runtime: Runtime, clinic: Clinic) -> str:
    from carevault.identity.models import system_actor

    gate = runtime.gate(system_actor(clinic.north.tenant_id, "test fixture"))
    body = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": f"Patient/{clinic.north.patient_id}"},
        "code": {"text": "penicillin"},
    }
    return f"AllergyIntolerance/{gate.create('AllergyIntolerance', body).resource_id}"


@pytest.mark.parametrize(("body", "days", "extension"), HIPAA, ids=["access", "amend", "acct"])
def test_hipaa_deadlines_day_before_on_and_after(
    runtime: Runtime,
    clinic: Clinic,
    clock: ManualClock,
    body: dict[str, object],
    days: int,
    extension: int,
) -> None:
    service = wire(runtime)
    if body["action"] == "amend":
        body = {**body, "resources": [_amendable(runtime, clinic)]}
    patient, officer = (
        actor(runtime, clinic.north, "patient"),
        actor(runtime, clinic.north, "privacy-officer"),
    )
    view, route = service.receive(patient, body, WHO)
    assert route.rulebook == "hipaa"
    assert view.status == "open"
    received = clock.now()
    for day, late in ((days - 1, False), (days, False), (days + 1, True)):
        clock.advance(received + timedelta(days=day) - clock.now())
        assert _late(service.queue(officer, None, WHO), view.request_id) is late, day
    # the due date is shown to the officer's filter: a date before it leaves the case out
    due_day = (received + timedelta(days=days)).date()
    assert (
        _late(service.queue(officer, str(due_day - timedelta(days=1)), WHO), view.request_id)
        is None
    )
    assert _late(service.queue(officer, str(due_day), WHO), view.request_id) is True


@pytest.mark.parametrize(("body", "days", "extension"), HIPAA, ids=["access", "amend", "acct"])
def test_one_extension_moves_the_deadline_and_tells_the_requester(
    runtime: Runtime,
    clinic: Clinic,
    clock: ManualClock,
    body: dict[str, object],
    days: int,
    extension: int,
) -> None:
    service = wire(runtime)
    if body["action"] == "amend":
        body = {**body, "resources": [_amendable(runtime, clinic)]}
    patient = actor(runtime, clinic.north, "patient")
    officer = actor(runtime, clinic.north, "privacy-officer")
    view, _ = service.receive(patient, body, WHO)
    received = clock.now()
    clock.advance(timedelta(days=days - 2))
    extended = service.extend(officer, view.request_id, "The records are in off-site storage.", WHO)
    assert extended.extended_at is not None
    written = [n for n in extended.notices if n.kind == "extended"]
    assert written
    assert "off-site storage" in (written[0].text or "")
    mails = outbox(runtime, clinic.north.tenant_id, "rights-request-extended")
    assert mails == [
        {
            "recipient": patient.user_id,
            "days": extension,
            "link": f"/rights/requests/{view.request_id}",
        }
    ]
    with pytest.raises(Conflict, match="once"):
        service.extend(officer, view.request_id, "Another reason, for more time.", WHO)
    total = days + extension
    for day, late in ((total - 1, False), (total, False), (total + 1, True)):
        clock.advance(received + timedelta(days=day) - clock.now())
        assert _late(service.queue(officer, None, WHO), view.request_id) is late, day
    details = [e.detail for e in rights_audit(runtime, clinic.north.tenant_id)]
    assert any("extended by" in (d or "") for d in details)
    assert any("extension refused" in (d or "") for d in details)


def test_an_extension_after_the_deadline_is_refused(
    runtime: Runtime, clinic: Clinic, clock: ManualClock
) -> None:
    service = wire(runtime)
    view, _ = service.receive(actor(runtime, clinic.north, "patient"), ACCESS, WHO)
    officer = actor(runtime, clinic.north, "privacy-officer")
    clock.advance(timedelta(days=31))
    with pytest.raises(Conflict, match="deadline has passed"):
        service.extend(officer, view.request_id, "The records are in off-site storage.", WHO)


def test_ccpa_deadline_45_days_and_one_45_day_extension(
    runtime: Runtime, clinic: Clinic, clock: ManualClock
) -> None:
    service = wire(runtime)
    holder = actor(runtime, clinic.north, "practitioner")  # an account holder, signed in
    vendor = actor(runtime, clinic.north, "vendor-operator")
    view, route = service.receive(holder, {"action": "know", "categories": ["account"]}, WHO)
    assert route.rulebook == "ccpa"
    assert "CCPA" not in route.decides
    received = clock.now()
    for day, late in ((44, False), (45, False), (46, True)):
        clock.advance(received + timedelta(days=day) - clock.now())
        assert _late(service.queue(vendor, None, WHO), view.request_id) is late, day
    view2, _ = service.receive(holder, {"action": "delete", "categories": ["account"]}, WHO)
    received = clock.now()
    clock.advance(timedelta(days=40))
    service.extend(vendor, view2.request_id, "We must check our service providers too.", WHO)
    mails = outbox(runtime, clinic.north.tenant_id, "rights-request-extended")
    assert [m["days"] for m in mails] == [45]
    assert mails[0]["recipient"] == holder.user_id
    for day, late in ((89, False), (90, False), (91, True)):
        clock.advance(received + timedelta(days=day) - clock.now())
        assert _late(service.queue(vendor, None, WHO), view2.request_id) is late, day
    assert any("extended by 45 days" in (e.detail or "") for e in vendor_audit(runtime))


def test_the_queue_is_the_officers_only(runtime: Runtime, clinic: Clinic) -> None:
    service = wire(runtime)
    view, _ = service.receive(actor(runtime, clinic.north, "patient"), ACCESS, WHO)
    for role in ("patient", "practitioner", "staff"):
        with pytest.raises(Forbidden):
            service.queue(actor(runtime, clinic.north, role), None, WHO)
    # another tenant's officer does not see north's case
    south = service.queue(actor(runtime, clinic.south, "privacy-officer"), None, WHO)
    assert _late(south, view.request_id) is None


def test_the_extension_email_is_delivered_and_carries_no_reason(
    mail_runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    from tests.conftest import make_site

    site = make_site(mail_runtime, "north")
    service = wire(mail_runtime)
    patient = actor(mail_runtime, site, "patient")
    view, _ = service.receive(patient, ACCESS, WHO)
    service.extend(
        actor(mail_runtime, site, "privacy-officer"),
        view.request_id,
        "The records are in off-site storage.",
        WHO,
    )
    report = mail_runtime.notifications.deliver_due()
    assert report.sent >= 2, report
    got = smtp_sink.to("patient@north.example.org")
    texts = [m.text for m in got]
    extended = [t for t in texts if "more days" in t]
    assert extended
    assert "30 more days" in extended[0]
    assert f"/rights/requests/{view.request_id}" in extended[0]
    assert "off-site" not in extended[0]  # the reason is behind the sign-in, in writing


def test_queue_api_and_bad_input(client: TestClient, runtime: Runtime, clinic: Clinic) -> None:
    wire(runtime)
    officer = clinic.north.headers("privacy-officer")
    made = client.post("/rights/requests", json=ACCESS, headers=clinic.north.headers("patient"))
    assert made.status_code == 201, made.text
    rid = made.json()["request"]["request_id"]
    found = client.get("/admin/rights/queue", headers=officer).json()["requests"]
    assert [r["request_id"] for r in found] == [rid]
    assert found[0]["late"] is False
    bad = client.get("/admin/rights/queue?due_before=yesterday", headers=officer)
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    extend = client.post(
        f"/admin/rights/requests/{rid}/extend", headers=officer, content=b"{not json"
    )
    assert extend.status_code == 400
    done = client.post(
        f"/admin/rights/requests/{rid}/extend",
        headers=officer,
        json={"reason": "The records are in off-site storage."},
    )
    assert done.status_code == 200
    assert done.json()["extended_at"]
    assert (
        client.post(
            f"/admin/rights/requests/{rid}/extend",
            headers=officer,
            json={"reason": "The records are in off-site storage."},
        ).status_code
        == 409
    )
    nobody = client.post(
        f"/admin/rights/requests/{rid}/extend",
        headers=clinic.north.headers("patient"),
        json={"reason": "x" * 20},
    )
    assert nobody.status_code == 403
