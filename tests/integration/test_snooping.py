"""Snooping alerts, end to end: reads go through the real gate and audit chain; the sentinel
scans the chain after the fact; the privacy officer works the alerts over HTTP."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select, update

from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.identity.models import Actor, TenantKind, system_actor, users
from carevault.identity.permissions import Role
from carevault.identity.service import Tenant
from carevault.messaging.models import notification_outbox
from carevault.privacy.oversight.background import Oversight
from carevault.privacy.oversight.rules import VolumeRule
from carevault.privacy.oversight_models import snooping_alert_entries, snooping_alerts
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.cli_process import run_cli

HOME = {"line": ["12 Lantern Row"], "city": "Springfield", "postalCode": "01101"}


def _patient(family: str, address: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family}]}
    if address:
        body["address"] = [address]
    return body


class Practice:
    """A tenant, a staff user who is a Practitioner, and a privacy officer; all by token."""

    def __init__(self, rt: Runtime, slug: str = "north") -> None:
        self.rt = rt
        self.tenant: Tenant = rt.identity.create_tenant(slug, "Clinic", TenantKind.PRACTICE)
        self.system = rt.gate(system_actor(self.tenant.tenant_id, "test fixture"))
        self.tokens: dict[str, str] = {}
        self.user_ids: dict[str, str] = {}
        for role in (Role.STAFF, Role.PRACTITIONER, Role.PRIVACY_OFFICER, Role.PATIENT):
            self.add_user(role.value, role)

    def add_user(self, name: str, role: Role, patient_id: str | None = None) -> str:
        user_id = self.rt.identity.create_user(
            self.tenant, f"{name}@{self.tenant.slug}.example.org", role,
            password="a long passphrase", patient_id=patient_id,
        )  # fmt: skip
        self.user_ids[name] = user_id
        self.tokens[name] = self.rt.identity.create_token(self.tenant, user_id, expires="90d").token
        return user_id

    def actor(self, name: str) -> Actor:
        return self.rt.identity.authenticate(self.tokens[name])

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def patient(self, family: str, address: dict[str, Any] | None = None) -> str:
        return self.system.create("Patient", _patient(family, address)).resource_id

    def be_practitioner(
        self, name: str, family: str, address: dict[str, Any] | None = None
    ) -> None:
        body: dict[str, Any] = {"resourceType": "Practitioner", "name": [{"family": family}]}
        if address:
            body["address"] = [address]
        pid = self.system.create("Practitioner", body).resource_id

        def link(conn: Connection) -> None:
            conn.execute(
                update(users)
                .where(users.c.tenant_id == self.tenant.tenant_id,
                       users.c.user_id == self.user_ids[name])
                .values(practitioner_id=pid)
            )  # fmt: skip

        self.rt.committer.submit(link)

    def read(self, name: str, patient_id: str) -> int:
        """Read a chart as that user, through the gate; the seq of its audit entry."""
        self.rt.gate(self.actor(name)).read("Patient", patient_id)
        with self.rt.reader.connect() as conn:
            return int(
                conn.execute(
                    select(sa.func.max(audit_entries.c.seq)).where(
                        audit_entries.c.tenant_id == self.tenant.tenant_id,
                        audit_entries.c.actor_id == self.user_ids[name],
                    )
                ).scalar_one()
            )

    def scan(self) -> tuple[str, ...]:
        return self.rt.oversight.sentinel.scan(self.tenant.tenant_id).raised

    def alerts(self) -> list[Any]:
        with self.rt.reader.connect() as conn:
            return list(
                conn.execute(
                    select(snooping_alerts)
                    .where(snooping_alerts.c.tenant_id == self.tenant.tenant_id)
                    .order_by(snooping_alerts.c.raised_at, snooping_alerts.c.kind)
                )
            )

    def linked(self, alert_id: str) -> list[int]:
        with self.rt.reader.connect() as conn:
            return sorted(
                conn.execute(
                    select(snooping_alert_entries.c.seq).where(
                        snooping_alert_entries.c.alert_id == alert_id
                    )
                ).scalars()
            )

    def messages(self) -> list[Any]:
        with self.rt.reader.connect() as conn:
            return list(
                conn.execute(
                    select(notification_outbox).where(
                        notification_outbox.c.tenant_id == self.tenant.tenant_id,
                        notification_outbox.c.template == "snooping-alert",
                    )
                )
            )


@pytest.fixture
def practice(runtime: Runtime) -> Practice:
    return Practice(runtime)


def test_same_surname_raises_one_alert_naming_its_audit_entries(practice: Practice) -> None:
    practice.be_practitioner("staff", "Quintero")
    cousin = practice.patient("quintero")  # folded: case does not hide a relative
    first = practice.read("staff", cousin)
    second = practice.read("staff", cousin)  # the same day: the same alert

    raised = practice.scan()

    [alert] = practice.alerts()
    assert raised == (alert.alert_id,)
    assert (alert.kind, alert.user_id, alert.patient_id, alert.state) == (
        "same-surname", practice.user_ids["staff"], cousin, "open",
    )  # fmt: skip
    assert practice.linked(alert.alert_id) == [first, second]
    [message] = practice.messages()
    assert (message.recipient_kind, message.recipient) == ("role", "privacy-officer")
    assert orjson.loads(message.params) == {"link": f"/privacy/alerts/{alert.alert_id}"}
    # idempotent: nothing new to see, nothing raised; a later read the same day only adds its entry
    assert practice.scan() == ()
    third = practice.read("staff", cousin)
    assert practice.scan() == ()
    assert [a.alert_id for a in practice.alerts()] == [alert.alert_id]
    assert practice.linked(alert.alert_id) == [first, second, third]
    assert len(practice.messages()) == 1
    assert practice.rt.audit_verification(practice.tenant.tenant_id).ok


def test_same_address_raises_an_alert(practice: Practice) -> None:
    practice.be_practitioner("practitioner", "Ng", {**HOME, "line": ["12  LANTERN row"]})
    neighbour = practice.patient("Okafor", HOME)
    elsewhere = practice.patient("Okafor", {**HOME, "line": ["14 Lantern Row"]})
    seq = practice.read("practitioner", neighbour)
    practice.read("practitioner", elsewhere)
    practice.scan()
    [alert] = practice.alerts()
    assert (alert.kind, alert.patient_id) == ("same-address", neighbour)
    assert practice.linked(alert.alert_id) == [seq]


def test_ordinary_reads_and_patients_reading_their_own_record_never_alert(
    practice: Practice,
) -> None:
    practice.be_practitioner("staff", "Quintero")
    stranger = practice.patient("Okafor", HOME)
    practice.read("staff", stranger)
    practice.read("practitioner", stranger)  # no Practitioner linked: only the other rules
    # A patient named like the staff member, reading their own chart: not watched.
    own = practice.patient("Quintero")
    practice.add_user("alicia", Role.PATIENT, patient_id=own)
    practice.read("alicia", own)
    practice.scan()
    assert practice.alerts() == []
    assert practice.messages() == []


def test_a_restricted_patient_read_alerts_while_flagged(
    practice: Practice, clock: ManualClock
) -> None:
    vip = practice.patient("Okafor")
    service = practice.rt.oversight.service
    service.flag(practice.actor("privacy-officer"), vip, "public-figure")
    seq = practice.read("staff", vip)
    practice.scan()
    [alert] = practice.alerts()
    assert (alert.kind, alert.patient_id) == ("restricted", vip)
    assert practice.linked(alert.alert_id) == [seq]

    clock.advance(timedelta(days=1))
    service.unflag(practice.actor("privacy-officer"), vip)
    practice.read("staff", vip)
    practice.scan()
    assert len(practice.alerts()) == 1  # no longer restricted: no new alert


def test_reading_far_more_patients_than_usual_raises_a_volume_alert(
    practice: Practice, clock: ManualClock
) -> None:
    patients = [practice.patient(f"Family{i}") for i in range(60)]
    for day in range(30):  # a month of about five charts a day
        for i in range(4 + day % 3):
            practice.read("staff", patients[(day * 5 + i) % 60])
        if day % 10 == 9:
            practice.scan()
        clock.advance(timedelta(days=1))
    practice.scan()
    assert practice.alerts() == []

    seqs = [practice.read("staff", pid) for pid in patients]
    practice.scan()
    [alert] = practice.alerts()
    assert (alert.kind, alert.patient_id, alert.opened_count) == ("volume", "", 60)
    assert alert.threshold == 25  # max(3 x median 5, floor 25)
    assert practice.linked(alert.alert_id) == seqs
    practice.read("staff", patients[0])
    assert practice.scan() == ()  # one volume alert per user per day


def test_the_privacy_officer_works_alerts_over_http(practice: Practice, client: TestClient) -> None:
    practice.be_practitioner("staff", "Quintero")
    seq = practice.read("staff", practice.patient("Quintero"))
    [alert_id] = practice.scan()
    officer = practice.headers("privacy-officer")

    listed = client.get("/privacy/alerts", params={"state": "open"}, headers=officer)
    assert listed.status_code == 200
    assert [a["alert_id"] for a in listed.json()["alerts"]] == [alert_id]
    assert client.get("/privacy/alerts", params={"kind": "volume"}, headers=officer).json() == {
        "alerts": []
    }
    one = client.get(f"/privacy/alerts/{alert_id}", headers=officer)
    assert one.status_code == 200
    [entry] = one.json()["entries"]
    assert (entry["seq"], entry["action"], entry["actor_role"]) == (seq, "read", "staff")
    assert "Quintero" not in one.text

    closed = client.post(
        f"/privacy/alerts/{alert_id}/close", json={"note": "their own mother; HR told"},
        headers=officer,
    )  # fmt: skip
    assert closed.status_code == 200
    assert closed.json()["state"] == "closed"
    again = client.post(f"/privacy/alerts/{alert_id}/close", json={"note": "x"}, headers=officer)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    note = client.get(f"/privacy/alerts/{alert_id}", headers=officer).json()["note"]
    assert note == "their own mother; HR told"
    with practice.rt.reader.connect() as conn:
        sealed = conn.execute(select(snooping_alerts.c.note_sealed)).scalar_one()
    assert b"mother" not in sealed


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/privacy/alerts", {"params": {"state": "bogus"}}, 400),
        ("get", "/privacy/alerts", {"params": {"date": "23/11/2026"}}, 400),
        ("get", "/privacy/alerts", {"params": {"name": "Quintero"}}, 400),
        ("get", "/privacy/alerts/not-an-alert", {}, 404),
        ("post", "/privacy/alerts/not-an-alert/close", {"content": b"{"}, 400),
        ("post", "/privacy/alerts/not-an-alert/close", {"json": {"note": 3}}, 400),
        ("post", "/privacy/alerts/not-an-alert/close", {"json": {"note": "ok"}}, 404),
        ("put", "/privacy/restricted/nobody", {"json": {"reason": "staff"}}, 404),
        ("put", "/privacy/restricted/nobody", {"json": {"reason": "famous"}}, 400),
        ("put", "/privacy/restricted/nobody", {"json": ["staff"]}, 400),
        ("delete", "/privacy/restricted/nobody", {}, 404),
    ],
)
def test_bad_requests_are_problems_and_change_nothing(
    practice: Practice, client: TestClient, method: str, path: str, kwargs: Any, status: int
) -> None:
    response = getattr(client, method)(path, headers=practice.headers("privacy-officer"), **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "Quintero" not in response.text
    assert "famous" not in response.text
    assert practice.alerts() == []


def test_roles_and_tenants_are_walled_off(practice: Practice, client: TestClient) -> None:
    practice.be_practitioner("staff", "Quintero")
    practice.read("staff", practice.patient("Quintero"))
    [alert_id] = practice.scan()
    other = Practice(practice.rt, "south")
    for who, where in (("staff", practice), ("practitioner", practice), ("patient", practice)):
        response = client.get(f"/privacy/alerts/{alert_id}", headers=where.headers(who))
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
    elsewhere = client.get(f"/privacy/alerts/{alert_id}", headers=other.headers("privacy-officer"))
    assert elsewhere.status_code == 404
    assert client.get("/privacy/alerts").status_code == 401
    # the practice admin may flag restricted patients, not read alerts
    admin = practice.add_user("admin", Role.PRACTICE_ADMIN)
    vip = practice.patient("Okafor")
    flagged = client.put(
        f"/privacy/restricted/{vip}", json={"reason": "staff"}, headers=practice.headers("admin")
    )
    assert flagged.status_code == 201
    assert flagged.json()["flagged_by"] == admin
    assert client.get("/privacy/alerts", headers=practice.headers("admin")).status_code == 403
    listed = client.get("/privacy/restricted", headers=practice.headers("privacy-officer"))
    assert [r["patient_id"] for r in listed.json()["restricted"]] == [vip]
    # every call and every refusal is in the chain
    with practice.rt.reader.connect() as conn:
        details = list(
            conn.execute(
                select(audit_entries.c.outcome, audit_entries.c.detail).where(
                    audit_entries.c.tenant_id == practice.tenant.tenant_id,
                    audit_entries.c.resource_type.in_(("SnoopingAlert", "Patient")),
                    audit_entries.c.action == "admin",
                )
            )
        )
    assert ("denied", "alert read; Forbidden") in details
    assert ("success", "patient restricted: staff") in details
    assert not any("Quintero" in (d or "") for _, d in details)


def test_the_cli_scans(practice: Practice, settings: Settings) -> None:
    practice.be_practitioner("staff", "Quintero")
    practice.read("staff", practice.patient("Quintero"))
    done = run_cli(settings, "privacy", "scan", "--tenant", "north")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("1 alerts")
    again = run_cli(settings, "privacy", "scan")
    assert again.returncode == 0, again.stderr
    assert "0 alerts" in again.stdout


def test_the_background_thread_scans_on_its_own(practice: Practice) -> None:
    practice.be_practitioner("staff", "Quintero")
    practice.read("staff", practice.patient("Quintero"))
    rt = practice.rt
    loop = Oversight(rt.gate_services, rt.gate, VolumeRule(), interval_seconds=0.05)
    loop.start()
    try:
        done = threading.Event()
        for _ in range(200):  # real time between scans, by design; give it up to 10 s
            if practice.alerts() or done.wait(0.05):
                break
    finally:
        loop.close()
    assert [a.kind for a in practice.alerts()] == ["same-surname"]
