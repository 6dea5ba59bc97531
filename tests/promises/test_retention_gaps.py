"""Retention promises whose clock is a purpose ending: an account's purpose ends when it is
closed (Healthsoft, ihr.health: `account: {after: purpose-satisfied, keep_days: 0}`), the
marketing one when the person asks to stop (ihr.health: deleted 15 days after the opt-out),
while the suppression list keeps refusing marketing for good."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from carevault.audit.models import audit_entries
from carevault.identity.account_models import sessions
from carevault.identity.models import api_tokens
from carevault.identity.permissions import Role
from carevault.messaging.models import notification_deliveries
from carevault.messaging.preferences import (
    MarketingRefused,
    communication_preferences,
    suppression_list,
)
from carevault.retention import certificates
from carevault.settings import Settings
from carevault.web.preferences_api import preferences_of
from tests.promises.conftest import Deployment
from tests.promises.lifecycle_steps import (
    Profiled,
    advance,
    carevault,
    dry_run,
    outbox_rows,
    read_status,
    scheduled_run,
    user_id,
)
from tests.smtp_sink import SmtpSink

PATIENT_ADDRESS = "patient@north.example.org"
_LINK = re.compile(r"(/unsubscribe\?token=[A-Za-z0-9_-]+)")


@pytest.fixture
def settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    """Marketing is really sent (to the test's SMTP sink), so there is marketing to delete."""
    return smtp_sink.settings_for(settings)


def audit_details(dep: Deployment, resource_type: str, rid: str) -> list[str]:
    a = audit_entries.c
    with dep.runtime.reader.connect() as conn:
        rows = conn.execute(
            sa.select(a.detail, a.resource_ids).where(
                a.tenant_id == dep.clinic.north.tenant_id, a.resource_type == resource_type
            )
        ).all()
    return [str(r.detail) for r in rows if rid in str(r.resource_ids)]


def rows_of(dep: Deployment, table: sa.Table, **where: str) -> list[Any]:
    query = sa.select(table).where(table.c.tenant_id == dep.clinic.north.tenant_id)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with dep.runtime.reader.connect() as conn:
        return list(conn.execute(query))


def certificate_of(dep: Deployment, certificate_id: str | None) -> dict[str, Any]:
    assert certificate_id is not None
    officer = dep.clinic.north.headers("privacy-officer")
    answer = dep.client.get(f"/privacy/certificates/{certificate_id}", headers=officer)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    cert = certificates.load(dep.runtime.gate_services, dep.clinic.north.tenant_id, certificate_id)
    assert certificates.verify(dep.runtime.gate_services, cert)
    return found


def closed_account_is_erased_when_its_purpose_ends(dep: Deployment, *, by_cli: bool) -> None:
    """The patient closes their account: its purpose is satisfied, keep_days 0, so the next
    run erases its personal data (address, sign-in, usage) and certifies it; the PHI stays."""
    north = dep.clinic.north
    patient_user = user_id(dep, north, "patient")
    assert rows_of(dep, api_tokens, user_id=patient_user)  # it has been signed in
    closed = dep.client.post("/patient/account/close", headers=north.headers("patient"))
    assert closed.status_code == 200, closed.text
    kept_until = closed.json()["data_kept_until"]
    assert kept_until is not None  # a date, not "kept until asked": keep_days 0 from the closing
    assert kept_until[:10] == dep.clock.now().date().isoformat()

    advance(dep, timedelta(hours=1))
    preview = dry_run(dep, north)
    assert [(d["category"], d["resource_id"]) for d in preview["due"]] == [
        ("account", patient_user)
    ]
    tenant = dep.runtime.identity.tenant_by_slug("north")
    with pytest.raises(Exception, match=r"(?i)exist|taken|already|in use"):
        dep.runtime.identity.create_user(tenant, PATIENT_ADDRESS, Role.PATIENT)  # dry: kept

    if by_cli:
        done = carevault(dep, "retention", "run", "--tenant", "north")
        assert done.exit_code == 0, done.output
        assert f"deleted\taccount\tUser/{patient_user}" in done.output
        found = re.search(r"certificate\s+([0-9a-f-]{36})", done.output)
        assert found, done.output
        certificate_id: str | None = found.group(1)
    else:
        report = scheduled_run(dep, north)
        assert [(d.category, d.resource_id) for d in report.deleted] == [("account", patient_user)]
        certificate_id = report.certificate_id
    cert = certificate_of(dep, certificate_id)
    assert [(i["resource_type"], i["resource_id"]) for i in cert["destroyed"]] == [
        ("User", patient_user)
    ]
    assert "account erased after its retention period" in " ".join(
        audit_details(dep, "User", patient_user)
    )
    # its personal data are gone: the address is free again, no sign-in or usage records
    assert rows_of(dep, api_tokens, user_id=patient_user) == []
    assert rows_of(dep, sessions, user_id=patient_user) == []
    dep.runtime.identity.create_user(tenant, PATIENT_ADDRESS, Role.PATIENT)
    # the PHI is the provider's: not touched by the account's schedule
    assert read_status(dep, north, "Patient", north.patient_id) == 200
    assert scheduled_run(dep, north).deleted == []  # erased once
    assert dep.runtime.audit_verification(north.tenant_id).ok


@pytest.mark.promise("HS-30")
def test_healthsoft_closed_account_is_deleted_once_its_purpose_is_fulfilled(
    profiled: Profiled,
) -> None:
    closed_account_is_erased_when_its_purpose_ends(profiled("healthsoft"), by_cli=True)


@pytest.mark.promise("IH-11")
def test_ihr_health_account_data_deleted_when_no_longer_needed_for_the_products(
    profiled: Profiled,
) -> None:
    closed_account_is_erased_when_its_purpose_ends(profiled("ihr-health"), by_cli=False)


@pytest.mark.promise("IH-13")
def test_ihr_health_marketing_data_deleted_a_short_period_after_the_opt_out(
    profiled: Profiled, smtp_sink: SmtpSink
) -> None:
    dep = profiled("ihr-health")
    north = dep.clinic.north
    patient_user = user_id(dep, north, "patient")
    prefs = preferences_of(dep.runtime)
    prefs.send_marketing(north.tenant_id, patient_user, "marketing-update")
    dep.runtime.notifications.deliver_due()
    (mail,) = [m.text for m in smtp_sink.to(PATIENT_ADDRESS) if "/unsubscribe?token=" in m.text]
    link = _LINK.search(mail)
    assert link
    (sent,) = outbox_rows(dep, north, "marketing-update")
    assert rows_of(dep, notification_deliveries, message_id=sent.message_id)

    clicked = dep.client.get(link.group(1))  # "you ask us to stop": one click
    assert clicked.status_code == 200, clicked.text
    assert len(rows_of(dep, communication_preferences, user_id=patient_user)) == 1

    advance(dep, timedelta(days=10))
    assert dep.client.get(link.group(1)).status_code == 200  # asked again: the clock stands
    advance(dep, timedelta(days=4))  # day 14: still within the short period
    assert dry_run(dep, north)["due"] == []
    assert scheduled_run(dep, north).deleted == []
    assert len(rows_of(dep, communication_preferences, user_id=patient_user)) == 1
    assert len(outbox_rows(dep, north, "marketing-update")) == 1

    advance(dep, timedelta(days=2))  # day 16
    (due,) = dry_run(dep, north)["due"]
    assert (due["category"], due["resource_type"], due["resource_id"]) == (
        "marketing-contacts",
        "CommunicationPreference",
        patient_user,
    )
    assert due["due_at"][:10] == (dep.clock.now() - timedelta(days=1)).date().isoformat()
    assert len(rows_of(dep, communication_preferences, user_id=patient_user)) == 1  # dry

    report = scheduled_run(dep, north)
    assert [(d.category, d.resource_id) for d in report.deleted] == [
        ("marketing-contacts", patient_user)
    ]
    # the marketing data are gone: the preference, the marketing sent and its delivery log
    assert rows_of(dep, communication_preferences, user_id=patient_user) == []
    assert outbox_rows(dep, north, "marketing-update") == []
    assert rows_of(dep, notification_deliveries, message_id=sent.message_id) == []
    cert = certificate_of(dep, report.certificate_id)
    assert [(i["resource_type"], i["resource_id"]) for i in cert["destroyed"]] == [
        ("CommunicationPreference", patient_user)
    ]
    assert any(i.get("resource_type") == "SuppressionList" for i in cert["kept"])
    (erased,) = [
        d for d in audit_details(dep, "CommunicationPreference", patient_user) if "deleted" in d
    ]
    assert "suppression kept" in erased

    # the record of the request stays: still refused, and still shown as opted out
    assert len(rows_of(dep, suppression_list)) == 1
    with pytest.raises(MarketingRefused, match="suppression list"):
        prefs.send_marketing(north.tenant_id, patient_user, "marketing-update")
    view = dep.client.get("/patient/preferences", headers=north.headers("patient"))
    assert view.json() == {"marketing": False, "service": True}
    advance(dep, timedelta(days=30))
    assert scheduled_run(dep, north).deleted == []  # deleted once
    with pytest.raises(MarketingRefused):
        prefs.send_marketing(north.tenant_id, patient_user, "marketing-update")
    dep.runtime.notifications.deliver_due()
    assert len([m for m in smtp_sink.to(PATIENT_ADDRESS) if "/unsubscribe" in m.text]) == 1
    assert dep.runtime.audit_verification(north.tenant_id).ok
