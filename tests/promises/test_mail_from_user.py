"""PF-20 under the practice-fusion profile, over the FHIR API with a real SMTP sink: a
practitioner's secure message to a patient (POST /fhir/Communication) is announced by an email
From that practitioner ("<name> via <tenant>" at the deployment's address, Sender: the
deployment), while a system notice stays From the tenant alone; the name is sealed in the
outbox, never in the text, logs or audit trail, and a name made to inject headers is
neutralised. A message naming another practitioner as its sender is refused; other
Communications, and a failed create, send the patient nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.headerregistry import Address

import pytest
import sqlalchemy as sa
from httpx import Response

from carevault.audit.models import audit_entries
from carevault.identity.models import system_actor, users
from carevault.messaging.breach import BreachNotices
from carevault.messaging.models import notification_outbox
from carevault.settings import Settings
from tests.promises.conftest import Deployment
from tests.promises.lifecycle_steps import Profiled, user_id
from tests.smtp_sink import SENDER, SmtpSink

PATIENT_ADDRESS = "patient@north.example.org"
NAME = {"prefix": ["Dr."], "given": ["Ana"], "family": "Reyes"}
SHOWN = "Dr. Ana Reyes"


@pytest.fixture
def settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    """The promise deployment, sending its email to the test's SMTP sink."""
    return smtp_sink.settings_for(settings)


def practitioner(dep: Deployment, name: Mapping[str, object] | None = NAME) -> str:
    """Link the north practitioner's account to a new Practitioner resource carrying `name`
    (a nameless one when None); returns the Practitioner's id."""
    rt, north = dep.runtime, dep.clinic.north
    gate = rt.gate(system_actor(north.tenant_id, "test fixture"))
    body: dict[str, object] = {"resourceType": "Practitioner"}
    if name is not None:
        body["name"] = [dict(name)]
    pract = gate.create("Practitioner", body).resource_id
    uid = user_id(dep, north, "practitioner")
    rt.committer.submit(
        lambda conn: conn.execute(
            sa.update(users)
            .where(users.c.tenant_id == north.tenant_id, users.c.user_id == uid)
            .values(practitioner_id=pract)
        )
    )
    return pract


def message(dep: Deployment, sender: str, recipient: str | None = None) -> dict[str, object]:
    """A secure message about the north patient, sent from `sender` to `recipient` (default:
    the patient): a FHIR Communication as a portal or EHR client posts it."""
    patient = f"Patient/{dep.clinic.north.patient_id}"
    return {
        "resourceType": "Communication", "status": "completed",
        "subject": {"reference": patient}, "sender": {"reference": sender},
        "recipient": [{"reference": recipient or patient}],
        "payload": [{"contentString": "Your results look fine; no need to come in."}],
    }  # fmt: skip


def post(dep: Deployment, body: Mapping[str, object], role: str = "practitioner") -> Response:
    sent: Response = dep.client.post(
        "/fhir/Communication",
        json=body,
        headers=dep.clinic.north.headers(role, **{"Content-Type": "application/fhir+json"}),
    )
    return sent


def send(dep: Deployment, pract: str) -> str:
    """The practitioner sends the patient a secure message over the FHIR API; every notice it
    queued is delivered. Returns the Communication's id."""
    sent = post(dep, message(dep, f"Practitioner/{pract}"))
    assert sent.status_code == 201, sent.text
    assert dep.runtime.notifications.deliver_due().sent == 1
    return str(sent.json()["id"])


def queued(dep: Deployment) -> list[str]:
    with dep.runtime.reader.connect() as conn:
        return list(conn.execute(sa.select(notification_outbox.c.template)).scalars())


def communications(dep: Deployment) -> int:
    found = dep.client.get("/fhir/Communication", headers=dep.clinic.north.headers("practitioner"))
    assert found.status_code == 200, found.text
    return len(found.json()["entry"])


def mailbox(value: object) -> Address:
    (address,) = value.addresses  # type: ignore[attr-defined]
    assert isinstance(address, Address)
    return address


@pytest.mark.promise("PF-20")
def test_a_practitioners_message_is_from_that_practitioner(
    profiled: Profiled, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    dep = profiled("practice-fusion")
    caplog.set_level(logging.DEBUG)
    communication = send(dep, practitioner(dep))

    (got,) = smtp_sink.to(PATIENT_ADDRESS)
    author = mailbox(got.message["From"])
    assert (author.display_name, author.addr_spec) == (f"{SHOWN} via North Clinic", SENDER)
    agent = mailbox(got.message["Sender"])
    assert (agent.display_name, agent.addr_spec) == ("North Clinic", SENDER)
    assert got.mail_from == SENDER  # the envelope stays the deployment's
    assert "Sign in to read it" in got.text
    origin = dep.runtime.settings.public_origin.rstrip("/")
    assert f"{origin}/portal/messages/{communication}" in got.text  # the message, by id
    assert SHOWN not in got.message["Subject"] + got.text  # the name is in From alone
    assert "results" not in got.message["Subject"] + got.text  # nothing of the message

    rt, north = dep.runtime, dep.clinic.north
    with rt.reader.connect() as conn:
        (row,) = conn.execute(sa.select(notification_outbox.c.params)).scalars()
        trail = conn.execute(
            sa.select(audit_entries).where(audit_entries.c.tenant_id == north.tenant_id)
        ).all()
    assert "Reyes" not in row  # sealed at rest
    assert not any("Reyes" in str(value) for entry in trail for value in entry)
    ours = [r for r in caplog.records if r.name.startswith("carevault")]  # not the sink's
    assert not any("Reyes" in str(vars(r)) for r in ours)
    notice = [e for e in trail if (e.detail or "").startswith("message notice queued")]
    assert [e.actor_id for e in notice] == [user_id(dep, north, "practitioner")]
    sent = [e for e in trail if e.actor_id == "system:notifications"]
    assert [e.on_behalf_of for e in sent] == [user_id(dep, north, "practitioner")]
    assert rt.audit_verification(north.tenant_id).ok


@pytest.mark.promise("PF-20")
def test_a_system_notice_is_from_the_practice_not_from_a_user(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("practice-fusion")
    north = dep.clinic.north
    officer = dep.runtime.identity.authenticate(north.tokens["privacy-officer"])
    rt = dep.runtime
    BreachNotices(rt.reader, rt.committer, rt.audit, rt.clock).notify(officer, [north.patient_id])
    assert rt.notifications.deliver_due().sent == 1

    (got,) = smtp_sink.to(PATIENT_ADDRESS)
    author = mailbox(got.message["From"])
    assert (author.display_name, author.addr_spec) == ("North Clinic", SENDER)
    assert got.message["Sender"] is None
    assert " via " not in str(got.message["From"])


@pytest.mark.promise("PF-20")
def test_a_name_that_would_inject_headers_is_neutralised(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("practice-fusion")
    sly = {"text": 'Eve "Dr" Mallory\r\nBcc: spy@evil.test\r\n\r\nforged body'}
    send(dep, practitioner(dep, sly))

    (got,) = smtp_sink.messages
    assert got.rcpt_tos == (PATIENT_ADDRESS,)
    assert got.message["Bcc"] is None
    author = mailbox(got.message["From"])
    assert author.addr_spec == SENDER
    assert author.display_name == (
        'Eve "Dr" Mallory Bcc: spy@evil.test forged body via North Clinic'
    )
    head = got.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert not any(line.lower().startswith(b"bcc:") for line in head)
    assert "forged body" not in got.text


@pytest.mark.promise("PF-20")
def test_a_message_is_not_sent_as_another_practitioner(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("practice-fusion")
    reyes = f"Practitioner/{practitioner(dep)}"
    for role in ("staff", "patient"):  # neither is Dr. Reyes
        refused = post(dep, message(dep, reyes), role)
        assert refused.status_code == 403, refused.text
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert "your own Practitioner" in refused.text
    elsewhere = f"https://other.example.test/fhir/{reyes}"  # cannot be matched to the user
    assert post(dep, message(dep, elsewhere)).status_code == 403
    assert communications(dep) == 0  # refused, not stored unannounced
    assert queued(dep) == []
    assert dep.runtime.notifications.deliver_due().messages == 0
    assert smtp_sink.messages == []
    with dep.runtime.reader.connect() as conn:
        refusals = conn.execute(
            sa.select(audit_entries.c.outcome).where(
                audit_entries.c.resource_type == "Communication",
                audit_entries.c.detail.like("message to a patient%"),
            )
        ).scalars()
        assert list(refusals) == ["denied"] * 3
    assert dep.runtime.audit_verification(dep.clinic.north.tenant_id).ok


def test_only_a_message_to_the_patient_is_announced_to_them(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("practice-fusion")
    pract = f"Practitioner/{practitioner(dep)}"
    colleague = dep.runtime.gate(system_actor(dep.clinic.north.tenant_id, "test fixture"))
    other = colleague.create("Practitioner", {"resourceType": "Practitioner"}).resource_id
    patient = f"Patient/{dep.clinic.north.patient_id}"
    draft = {**message(dep, pract), "status": "preparation"}
    bodies = [
        message(dep, pract, recipient=f"Practitioner/{other}"),  # between practitioners
        draft,  # not sent yet (staff may prepare one for the practitioner, too)
        {**draft, "sender": {"reference": f"Practitioner/{other}"}},
        message(dep, patient, recipient=pract),  # the patient's message to the practice
        {k: v for k, v in message(dep, pract).items() if k != "sender"},  # no sender named
    ]
    for role, body in [("practitioner", b) for b in bodies] + [("staff", bodies[2])]:
        made = post(dep, body, role)
        assert made.status_code == 201, made.text
    assert queued(dep) == []
    assert smtp_sink.messages == []


@pytest.mark.promise("PF-20")
def test_a_draft_sent_later_is_announced_once_from_its_sender(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("practice-fusion")
    pract = f"Practitioner/{practitioner(dep)}"
    draft = post(dep, {**message(dep, pract), "status": "preparation"})
    assert draft.status_code == 201, draft.text
    cid = draft.json()["id"]
    assert queued(dep) == []

    def put(body: Mapping[str, object], rid: str = cid, role: str = "practitioner") -> Response:
        headers = dep.clinic.north.headers(role, **{"Content-Type": "application/fhir+json"})
        answer: Response = dep.client.put(f"/fhir/Communication/{rid}", json={**body, "id": rid},
                                          headers=headers)  # fmt: skip
        return answer

    # staff cannot send it as the practitioner: refused, the draft stays a draft
    assert put(message(dep, pract), role="staff").status_code == 403
    assert queued(dep) == []
    sent = put(message(dep, pract))
    assert sent.status_code == 200, sent.text
    assert dep.runtime.notifications.deliver_due().sent == 1
    (got,) = smtp_sink.to(PATIENT_ADDRESS)
    assert mailbox(got.message["From"]).display_name == f"{SHOWN} via North Clinic"
    assert f"/portal/messages/{cid}" in got.text
    # saving the sent message again announces nothing new
    assert put({**message(dep, pract), "status": "in-progress"}).status_code == 200
    assert queued(dep) == ["message-from-user"]
    # a message created by PUT under an id the client chose is announced like a POST, its
    # id (which may say something about the patient) kept out of the mail
    fresh = put(message(dep, pract), rid="smith-results-2")
    assert fresh.status_code == 201, fresh.text
    assert dep.runtime.notifications.deliver_due().sent == 1
    _first, second = smtp_sink.to(PATIENT_ADDRESS)
    assert "smith" not in second.text
    assert "/portal/messages" in second.text


def test_a_failed_create_sends_nothing(profiled: Profiled, smtp_sink: SmtpSink) -> None:
    dep = profiled("practice-fusion")
    pract = practitioner(dep)
    bad = {**message(dep, f"Practitioner/{pract}"), "sent": "last Tuesday"}
    refused = post(dep, bad)
    assert 400 <= refused.status_code < 500, refused.text
    assert communications(dep) == 0
    assert queued(dep) == []
    assert dep.runtime.notifications.deliver_due().messages == 0
    assert smtp_sink.messages == []


def test_without_a_name_on_record_the_message_is_refused_before_it_is_stored(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("practice-fusion")
    nameless = practitioner(dep, name=None)
    refused = post(dep, message(dep, f"Practitioner/{nameless}"))
    assert refused.status_code == 422, refused.text
    assert "no name" in refused.text
    assert communications(dep) == 0
    assert queued(dep) == []
    assert dep.runtime.notifications.deliver_due().messages == 0
    assert smtp_sink.messages == []
