"""The notification service's messages sent on behalf of a user, against a real SMTP sink, on
SQLite and PostgreSQL: a practitioner's message notice goes to each active account of the
patient, From the practitioner; a row that cannot prove whom it is from (no seal, a seal moved
to another user) is refused, never sent as the tenant's own notice; refusals are audited.
Over the FHIR API, a conditional create announces its message once, and a sender whose name
cleans to nothing is refused before the message is stored."""

from __future__ import annotations

from email.headerregistry import Address

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from carevault.app import create_app
from carevault.audit.models import audit_entries
from carevault.errors import Forbidden, Invalid
from carevault.identity.models import Actor, system_actor, users
from carevault.identity.permissions import Role
from carevault.messaging.models import notification_deliveries, notification_outbox
from carevault.messaging.templates import FROM_USER
from carevault.runtime import Runtime
from carevault.web.fhir_api.messages import MESSAGE_NAMES
from carevault.web.practitioner_names import NameOf, practitioner_names
from tests.conftest import Site, make_site
from tests.smtp_sink import SENDER, SmtpSink

PATIENT = "patient@north.example.org"


def named_practitioner(rt: Runtime, site: Site) -> Actor:
    gate = rt.gate(system_actor(site.tenant_id, "test fixture"))
    body = {"resourceType": "Practitioner", "name": [{"text": "Dr. Ana Reyes"}]}
    pract = gate.create("Practitioner", body).resource_id
    actor = rt.identity.authenticate(site.tokens["practitioner"])
    rt.committer.submit(
        lambda conn: conn.execute(
            sa.update(users)
            .where(users.c.tenant_id == site.tenant_id, users.c.user_id == actor.user_id)
            .values(practitioner_id=pract)
        )
    )
    return actor


def names(rt: Runtime, actor: Actor) -> NameOf:
    """The sender's name, read through the gate as the FHIR API's messages do."""
    return practitioner_names(rt, actor.tenant_id, MESSAGE_NAMES)


def outcomes(rt: Runtime, message_id: str) -> list[tuple[str, str | None]]:
    d = notification_deliveries
    with rt.reader.connect() as conn:
        rows = conn.execute(sa.select(d.c.outcome, d.c.reason).where(d.c.message_id == message_id))
        return [(r.outcome, r.reason) for r in rows]


def rewrite_params(rt: Runtime, message_id: str, params: dict[str, object]) -> None:
    t = notification_outbox
    rt.committer.submit(
        lambda conn: conn.execute(
            sa.update(t)
            .where(t.c.message_id == message_id)
            .values(params=orjson.dumps(params).decode())
        )
    )


def test_the_notice_reaches_each_active_account_of_the_patient_only(
    mail_runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    rt = mail_runtime
    north = make_site(rt, "north")
    actor = named_practitioner(rt, north)
    tenant = rt.identity.tenant_by_slug("north")
    rt.identity.create_user(tenant, "patient.too@north.example.org", Role.PATIENT,
                                     patient_id=north.patient_id)  # fmt: skip
    gone = rt.identity.create_user(tenant, "closed@north.example.org", Role.PATIENT,
                                   patient_id=north.patient_id)  # fmt: skip
    rt.committer.submit(
        lambda conn: conn.execute(
            sa.update(users).where(users.c.user_id == gone).values(active=False)
        )
    )
    found = rt.notifications.message_notice(
        actor, north.patient_id, names(rt, actor), link="/portal/messages"
    )
    assert len(found.message_ids) == 2
    assert rt.notifications.deliver_due().sent == 2

    assert sorted(m.rcpt_tos for m in smtp_sink.messages) == [
        ("patient.too@north.example.org",), (PATIENT,),
    ]  # fmt: skip
    for got in smtp_sink.messages:
        (author,) = got.message["From"].addresses
        assert isinstance(author, Address)
        assert (author.display_name, author.addr_spec) == ("Dr. Ana Reyes via North Clinic", SENDER)
        assert f"{rt.settings.public_origin.rstrip('/')}/portal/messages" in got.text
    with rt.reader.connect() as conn:
        [queued] = conn.execute(
            sa.select(audit_entries).where(
                audit_entries.c.actor_id == actor.user_id,
                audit_entries.c.detail.like("message notice%"),
            )
        ).all()
    # Audited with the patient it concerns and the messages it queued; by ids only.
    assert north.patient_id in queued.patient_ids
    assert all(message_id in queued.resource_ids for message_id in found.message_ids)


@pytest.mark.parametrize("tamper", ["no seal", "seal moved to another user"])
def test_a_row_that_cannot_prove_whom_it_is_from_is_never_sent(
    mail_runtime: Runtime, smtp_sink: SmtpSink, tamper: str
) -> None:
    rt = mail_runtime
    north = make_site(rt, "north")
    actor = named_practitioner(rt, north)
    (message_id,) = rt.notifications.message_notice(
        actor, north.patient_id, names(rt, actor)
    ).message_ids
    with rt.reader.connect() as conn:
        params = orjson.loads(
            conn.execute(
                sa.select(notification_outbox.c.params).where(
                    notification_outbox.c.message_id == message_id
                )
            ).scalar_one()
        )
    if tamper == "no seal":
        params = {}
    else:
        params[FROM_USER] = rt.identity.authenticate(north.tokens["staff"]).user_id
    rewrite_params(rt, message_id, params)

    assert rt.notifications.deliver_due().permanent == 1
    assert smtp_sink.messages == []
    assert outcomes(rt, message_id) == [("permanent-failure", "from-user")]


def test_refusals_are_audited_and_queue_nothing(mail_runtime: Runtime) -> None:
    rt = mail_runtime
    north = make_site(rt, "north")
    actor = named_practitioner(rt, north)
    patient = rt.identity.authenticate(north.tokens["patient"])
    with pytest.raises(Forbidden):
        rt.notifications.message_notice(patient, north.patient_id, names(rt, patient))
    with pytest.raises(Invalid):  # a link that could carry PHI
        rt.notifications.message_notice(
            actor, north.patient_id, names(rt, actor), link="/portal/messages/alicia-quintero"
        )
    with rt.reader.connect() as conn:
        queued = conn.execute(sa.select(sa.func.count()).select_from(notification_outbox))
        assert queued.scalar_one() == 0
        refused = conn.execute(
            sa.select(audit_entries.c.outcome).where(
                audit_entries.c.detail.like("message notice refused%")
            )
        ).scalars()
        assert sorted(refused) == ["denied", "invalid"]
    assert rt.audit_verification(north.tenant_id).ok


def post_message(client: TestClient, site: Site, pract: str, **headers: str) -> Response:
    patient = f"Patient/{site.patient_id}"
    body = {
        "resourceType": "Communication", "status": "in-progress",
        "identifier": [{"system": "urn:test:message", "value": "m-1"}],
        "subject": {"reference": patient}, "recipient": [{"reference": patient}],
        "sender": {"reference": pract}, "payload": [{"contentString": "see you"}],
    }  # fmt: skip
    sent: Response = client.post(
        "/fhir/Communication", json=body,
        headers=site.headers(**{"Content-Type": "application/fhir+json", **headers}),
    )  # fmt: skip
    return sent


def test_a_conditional_create_announces_the_message_once(
    mail_runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    rt = mail_runtime
    north = make_site(rt, "north")
    actor = named_practitioner(rt, north)
    pract = f"Practitioner/{rt.notifications.practitioner_of(actor)}"
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        once = {"If-None-Exist": "identifier=urn:test:message|m-1"}
        made = post_message(client, north, pract, **once)
        again = post_message(client, north, pract, **once)
    assert (made.status_code, again.status_code) == (201, 200), again.text
    assert made.json()["id"] == again.json()["id"]
    assert rt.notifications.deliver_due().sent == 1  # the second found it: no second notice
    (got,) = smtp_sink.to(PATIENT)
    assert f"/portal/messages/{made.json()['id']}" in got.text


def test_a_name_that_cleans_to_nothing_is_refused_before_the_message_is_stored(
    mail_runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    rt = mail_runtime
    north = make_site(rt, "north")
    gate = rt.gate(system_actor(north.tenant_id, "test fixture"))
    body = {"resourceType": "Practitioner", "name": [{"text": "\u200e\u202e"}]}
    pract = gate.create("Practitioner", body).resource_id
    actor = rt.identity.authenticate(north.tokens["practitioner"])
    rt.committer.submit(
        lambda conn: conn.execute(
            sa.update(users).where(users.c.user_id == actor.user_id).values(practitioner_id=pract)
        )
    )
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        refused = post_message(client, north, f"Practitioner/{pract}")
        assert refused.status_code == 422, refused.text
        listed = client.get("/fhir/Communication", headers=north.headers())
    assert listed.json()["entry"] == []
    assert rt.notifications.deliver_due().messages == 0
    assert smtp_sink.messages == []
