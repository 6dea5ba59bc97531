"""Communications promises, each under its seed's profile, with a real SMTP sink: marketing
email carries a one-click unsubscribe link, using it stops marketing and nothing else, the
suppression list keeps only what it needs to keep the promise."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from carevault.audit.models import audit_entries
from carevault.clock import isoformat
from carevault.identity.permissions import Role
from carevault.messaging.preferences import MarketingRefused, suppression_list
from carevault.settings import Settings
from carevault.web.preferences_api import preferences_of
from tests.promises.conftest import Deployment
from tests.promises.lifecycle_steps import Profiled, advance, user_id
from tests.smtp_sink import SmtpSink

PATIENT_ADDRESS = "patient@north.example.org"
_LINK = re.compile(r"(/unsubscribe\?token=[A-Za-z0-9_-]+)")


@pytest.fixture
def settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    """The promise deployment, sending its email to the test's SMTP sink."""
    return smtp_sink.settings_for(settings)


def send_marketing(dep: Deployment) -> str:
    north = dep.clinic.north
    prefs = preferences_of(dep.runtime)
    return prefs.send_marketing(north.tenant_id, user_id(dep, north, "patient"), "marketing-update")


def marketing_received(sink: SmtpSink) -> list[str]:
    return [m.text for m in sink.to(PATIENT_ADDRESS) if "news about its services" in m.text]


def marketing_link_is_honoured(dep: Deployment, sink: SmtpSink) -> None:
    """A marketing email arrives with its link; one click (no sign-in) and no more come."""
    send_marketing(dep)
    dep.runtime.notifications.deliver_due()
    (text,) = marketing_received(sink)
    found = _LINK.search(text)
    assert found, "the marketing email carries no unsubscribe link"
    clicked = dep.client.get(found.group(1))  # no Authorization header: one click
    assert clicked.status_code == 200, clicked.text
    assert "unsubscribed" in clicked.text
    with pytest.raises(MarketingRefused):
        send_marketing(dep)
    advance(dep, timedelta(days=30))
    with pytest.raises(MarketingRefused):
        send_marketing(dep)
    dep.runtime.notifications.deliver_due()
    assert len(marketing_received(sink)) == 1  # nothing more reached the person
    north = dep.clinic.north
    view = dep.client.get("/patient/preferences", headers=north.headers("patient"))
    assert view.json() == {"marketing": False, "service": True}


@pytest.mark.promise("HS-12")
def test_healthsoft_marketing_email_unsubscribe_link(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    marketing_link_is_honoured(profiled("healthsoft"), smtp_sink)


@pytest.mark.promise("AM-26")
def test_allmeds_marketing_opt_out_instructions_in_the_email(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    marketing_link_is_honoured(profiled("allmeds"), smtp_sink)


@pytest.mark.promise("LI-53")
def test_lifeimage_promotional_email_links_to_opting_out(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    marketing_link_is_honoured(profiled("lifeimage"), smtp_sink)


@pytest.mark.promise("IH-06")
def test_ihr_health_opt_out_of_marketing_at_any_time(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("ihr-health")
    marketing_link_is_honoured(dep, smtp_sink)
    # "at any time": from the settings too, for the other patient account of a new site
    south = dep.clinic.south
    prefs = preferences_of(dep.runtime)
    off = dep.client.post(
        "/patient/preferences", json={"marketing": False}, headers=south.headers("patient")
    )
    assert off.status_code == 200, off.text
    with pytest.raises(MarketingRefused):
        prefs.send_marketing(south.tenant_id, user_id(dep, south, "patient"), "marketing-update")


@pytest.mark.promise("HS-22")
def test_healthsoft_after_opt_out_only_service_messages_are_sent(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("healthsoft")
    north = dep.clinic.north
    patient = north.headers("patient")
    off = dep.client.post("/patient/preferences", json={"marketing": False}, headers=patient)
    assert off.status_code == 200, off.text
    assert off.json() == {"marketing": False, "service": True}
    refused = dep.client.post("/patient/preferences", json={"service": False}, headers=patient)
    assert refused.status_code == 400  # service messages cannot be opted out of
    with pytest.raises(MarketingRefused):
        send_marketing(dep)

    # a service message: the person asks to reset their password, and the email comes
    asked = dep.client.post(
        "/auth/password-reset", json={"tenant": "north", "email": PATIENT_ADDRESS}
    )
    assert asked.status_code == 202
    dep.runtime.notifications.deliver_due()
    received = smtp_sink.to(PATIENT_ADDRESS)
    assert [m.message["Subject"] for m in received] == ["Reset your North Clinic password"]
    assert marketing_received(smtp_sink) == []


def suppression_rows(dep: Deployment) -> list[sa.Row[tuple[str, str, str]]]:
    with dep.runtime.reader.connect() as conn:
        return list(
            conn.execute(
                sa.select(suppression_list).where(
                    suppression_list.c.tenant_id == dep.clinic.north.tenant_id
                )
            )
        )


@pytest.mark.promise("IH-07", "IH-14")
def test_ihr_health_keeps_the_opted_out_address_only_to_send_no_more_marketing(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("ihr-health")
    north = dep.clinic.north
    assert suppression_rows(dep) == []
    marketing_link_is_honoured(dep, smtp_sink)
    (row,) = suppression_rows(dep)
    # kept as a keyed hash: it confirms "do not send", it cannot address anyone
    assert set(row._mapping) == {"tenant_id", "address_hash", "added_at"}
    assert PATIENT_ADDRESS not in str(tuple(row))
    assert "patient" not in row.address_hash
    # the record of the request outlives the account: closed, then a year on, still refused
    closed = dep.client.post("/patient/account/close", headers=north.headers("patient"))
    assert closed.status_code == 200, closed.text
    advance(dep, timedelta(days=365))
    assert len(suppression_rows(dep)) == 1
    with pytest.raises(MarketingRefused):
        send_marketing(dep)
    dep.runtime.notifications.deliver_due()
    assert len(marketing_received(smtp_sink)) == 1


@pytest.mark.promise("HS-14")
def test_healthsoft_recognizes_global_privacy_control(profiled: Profiled) -> None:
    dep = profiled("healthsoft")
    north = dep.clinic.north
    patient = north.headers("patient")
    before = dep.client.get("/account/privacy-choices", headers=patient)
    assert before.status_code == 200, before.text
    assert before.json() == {"sale_and_sharing_opt_out": False, "since": None,
                             "global_privacy_control": True}  # fmt: skip
    # the browser sends the signal with an ordinary request: it is recorded as the opt-out
    read = dep.client.get(
        f"/fhir/Patient/{north.patient_id}", headers=north.headers("patient", **{"Sec-GPC": "1"})
    )
    assert read.status_code == 200, read.text
    after = dep.client.get("/account/privacy-choices", headers=patient).json()
    assert after["sale_and_sharing_opt_out"] is True
    assert after["since"] == isoformat(dep.clock.now())
    # recorded once, in the tenant's audit trail, as this person's choice
    advance(dep, timedelta(days=1))
    dep.client.get("/account/privacy-choices", headers=north.headers("patient", **{"Sec-GPC": "1"}))
    with dep.runtime.reader.connect() as conn:
        entries = conn.execute(
            sa.select(audit_entries).where(
                audit_entries.c.tenant_id == north.tenant_id,
                audit_entries.c.resource_type == "PrivacyChoice",
            )
        ).all()
    assert len(entries) == 1
    assert entries[0].actor_id == user_id(dep, north, "patient")
    assert "sale and sharing" in (entries[0].detail or "")
    # another person's choice is theirs: staff sent no signal
    staff = dep.client.get("/account/privacy-choices", headers=north.headers("staff")).json()
    assert staff["sale_and_sharing_opt_out"] is False
    assert dep.runtime.audit_verification(north.tenant_id).ok


def breach_notices_reach_the_accounts(dep: Deployment, sink: SmtpSink) -> dict[str, object]:
    north = dep.clinic.north
    # the patient opted out of marketing: a breach notice is not marketing and still goes
    dep.client.post("/patient/preferences", json={"marketing": False},
                    headers=north.headers("patient"))  # fmt: skip
    refused = dep.client.post("/privacy/breaches", json={"patient_ids": [north.patient_id]},
                              headers=north.headers("practitioner"))  # fmt: skip
    assert refused.status_code == 403
    done = dep.client.post(
        "/privacy/breaches",
        json={"patient_ids": [north.patient_id, north.other_patient_id]},
        headers=north.headers("privacy-officer"),
    )
    assert done.status_code == 201, done.text
    report: dict[str, object] = done.json()
    assert report["patients"] == 2
    dep.runtime.notifications.deliver_due()  # at once: no clock moved
    (notice,) = [m for m in sink.to(PATIENT_ADDRESS) if "security incident" in m.text]
    subject = str(notice.message["Subject"]).strip()
    assert subject.startswith("Important: a security incident at North")
    for value in ("Quintero", "Alicia", north.patient_id, "MRN-ALICE-1"):
        assert value not in notice.text  # the notice itself carries no PHI
    return report


@pytest.mark.promise("HS-38")
def test_healthsoft_breach_notice_goes_to_the_account_contact(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("healthsoft")
    north = dep.clinic.north
    report = breach_notices_reach_the_accounts(dep, smtp_sink)
    assert report["notices_queued"] == 1
    # Bob has no account: listed back for the practice to notify by mail
    assert report["without_account"] == [north.other_patient_id]
    assert [m.rcpt_tos for m in smtp_sink.messages] == [(PATIENT_ADDRESS,)]


@pytest.mark.promise("LI-32")
def test_lifeimage_each_affected_person_is_promptly_notified(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("lifeimage")
    north = dep.clinic.north
    tenant = dep.runtime.identity.tenant_by_slug("north")
    dep.runtime.identity.create_user(tenant, "bode@north.example.org", Role.PATIENT,
                                     patient_id=north.other_patient_id)  # fmt: skip
    report = breach_notices_reach_the_accounts(dep, smtp_sink)
    assert report["notices_queued"] == 2
    assert report["without_account"] == []
    (second,) = smtp_sink.to("bode@north.example.org")
    assert "security incident" in second.text
    assert smtp_sink.to("patient@south.example.org") == []  # not affected: not told
