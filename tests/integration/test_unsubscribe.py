"""Marketing opt-out: one click from the email's link with no sign-in; a forged or malformed
token is refused and changes nothing; marketing to an opted-out or suppressed address is
refused; service messages cannot be turned off and keep being delivered."""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.clock import ManualClock, isoformat
from carevault.identity.models import TenantKind, system_actor
from carevault.identity.permissions import Role
from carevault.messaging.models import notification_outbox
from carevault.messaging.outbox import enqueue
from carevault.messaging.preferences import MarketingRefused, Preferences, suppression_list
from carevault.policy import load_profile
from carevault.retention.job import RetentionJob
from carevault.retention.service import Retention
from carevault.runtime import Runtime
from tests.smtp_sink import SmtpSink

ADDRESS = "ivy@north.example.org"


def prefs(rt: Runtime) -> Preferences:
    return Preferences(rt.reader, rt.committer, rt.vault, rt.clock, rt.audit)


def link_of(rt: Runtime, message_id: str) -> str:
    with rt.reader.connect() as conn:
        row = conn.execute(
            sa.select(notification_outbox.c.params).where(
                notification_outbox.c.message_id == message_id
            )
        ).one()
    link: str = orjson.loads(row.params)["link"]
    return link


def test_one_click_unsubscribe_and_what_it_stops(
    mail_runtime: Runtime, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    rt = mail_runtime
    tenant = rt.identity.create_tenant("north", "North Clinic", TenantKind.PRACTICE)
    ivy = rt.identity.create_user(tenant, ADDRESS, Role.PATIENT, password="a long passphrase")
    bob = rt.identity.create_user(tenant, "bob@north.example.org", Role.PATIENT)
    p = prefs(rt)
    first = p.send_marketing(tenant.tenant_id, ivy, "marketing-update")
    rt.notifications.deliver_due()
    (sent,) = smtp_sink.to(ADDRESS)
    link = link_of(rt, first)
    assert link.startswith("/unsubscribe?token=")
    assert "/unsubscribe?token=" in sent.text  # the email carries the one-click link
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert ivy not in token
    assert ADDRESS not in token

    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        # forged: bob's ids with ivy's tag; malformed; wrong shape: refused, nothing changed
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        bob_ids = raw[:16] + bytes.fromhex(bob.replace("-", "")) + raw[32:]
        forged = base64.urlsafe_b64encode(bob_ids).decode().rstrip("=")
        tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert client.get(f"/unsubscribe?token={forged}").status_code == 403
        assert client.post(f"/unsubscribe?token={tampered}").status_code == 403
        assert client.get("/unsubscribe?token=not-a-token").status_code == 400
        assert client.get("/unsubscribe").status_code == 400
        p.send_marketing(tenant.tenant_id, bob, "marketing-update")  # bob still gets it
        p.send_marketing(tenant.tenant_id, ivy, "marketing-update")  # and so does ivy

        # one click, no sign-in
        done = client.get(link)
        assert done.status_code == 200
        assert "unsubscribed" in done.text
        assert client.post(f"/unsubscribe?token={token}").status_code == 200  # idempotent

        with pytest.raises(MarketingRefused, match="opted out"):
            p.send_marketing(tenant.tenant_id, ivy, "marketing-update")
        # service messages cannot be turned off, and still go out
        ivy_token = rt.identity.create_token(tenant, ivy).token
        h = {"Authorization": f"Bearer {ivy_token}"}
        assert client.get("/patient/preferences", headers=h).json() == {
            "marketing": False,
            "service": True,
        }
        off = client.post("/patient/preferences", json={"service": False}, headers=h)
        assert off.status_code == 400
        assert "cannot be turned off" in off.json()["detail"]
        assert (
            client.post("/patient/preferences", json={"marketing": "no"}, headers=h).status_code
            == 400
        )
        assert client.get("/patient/preferences").status_code == 401
    now = isoformat(clock.now())
    rt.committer.submit(
        lambda conn: enqueue(
            conn,
            tenant.tenant_id,
            kind="user",  # type: ignore[arg-type]
            recipient=ivy,
            template="new-message",
            now=now,
        )
    )
    before = len(smtp_sink.to(ADDRESS))
    rt.notifications.deliver_due()
    assert len(smtp_sink.to(ADDRESS)) == before + 2  # the queued marketing, and the service one
    with rt.reader.connect() as conn:
        listed = conn.execute(sa.select(suppression_list)).all()
    assert len(listed) == 1
    assert ADDRESS not in str(listed[0])
    assert "ivy" not in str(listed[0])


def test_a_suppressed_address_gets_no_marketing_even_on_a_new_account(
    runtime: Runtime, clock: ManualClock
) -> None:
    rt = runtime
    tenant = rt.identity.create_tenant("north", "North Clinic", TenantKind.PRACTICE)
    ivy = rt.identity.create_user(tenant, ADDRESS, Role.PATIENT)
    p = prefs(rt)
    p.unsubscribe(p.token_for(tenant.tenant_id, ivy))
    # the account is closed and, after AllMeds' year, erased; the address comes back later
    policy = load_profile("allmeds")
    retention = Retention(rt.gate_services, rt.keys, rt.gate, lambda: policy)
    retention.inactivate_account(system_actor(tenant.tenant_id, "closure"), ivy)
    clock.advance(timedelta(days=366))
    assert RetentionJob(retention).run(tenant.tenant_id).deleted
    again = rt.identity.create_user(tenant, ADDRESS.upper(), Role.PATIENT)
    with pytest.raises(MarketingRefused, match="suppression list"):
        p.send_marketing(tenant.tenant_id, again, "marketing-update")
    # service templates are not marketing: send_marketing refuses to carry them
    with pytest.raises(Exception, match="not a marketing template"):
        p.send_marketing(tenant.tenant_id, again, "new-message")
