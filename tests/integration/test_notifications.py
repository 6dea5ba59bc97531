"""The notification service end to end, against a real local SMTP server (aiosmtpd), on SQLite
and PostgreSQL: the outbox commits with its event, the PHI guard refuses what could carry
PHI, delivery goes to the right people with no PHI, 4xx answers are retried with backoff by
the injected clock, 5xx answers are final, and every attempt leaves a delivery record."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, func, select, update

from carevault.audit.models import audit_entries
from carevault.clock import ManualClock, isoformat
from carevault.database import make_engine
from carevault.errors import Invalid
from carevault.identity.models import TenantKind, tenants, users
from carevault.identity.permissions import Role
from carevault.identity.service import Tenant
from carevault.messaging.models import (
    MessageState,
    RecipientKind,
    notification_deliveries,
    notification_outbox,
)
from carevault.messaging.outbox import enqueue
from carevault.messaging.service import BACKOFF, MAX_ATTEMPTS, Claimed
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from tests.cli_process import CAREVAULT
from tests.smtp_sink import SENDER, SmtpSink

ALERT = "/privacy/alerts/{}"
PHI_WORDS = ("Quintero", "Alicia", "1984", "555-0142", "Lantern")


def tenant_with(rt: Runtime, slug: str = "north", **roles: int) -> tuple[Tenant, dict[str, str]]:
    """A tenant and users (role value → count); returns the tenant and email → user id."""
    tenant = rt.identity.create_tenant(slug, f"{slug.title()} Clinic", TenantKind.PRACTICE)
    people = {}
    for role, count in roles.items():
        for n in range(count):
            role_value = Role(role.replace("_", "-"))
            email = f"{role_value.value}{n}@{slug}.example.org"
            people[email] = rt.identity.create_user(tenant, email, role_value)
    return tenant, people


def queue(rt: Runtime, tenant_id: str, **kwargs: object) -> str:
    now = isoformat(rt.clock.now())
    return rt.committer.submit(
        lambda conn: enqueue(conn, tenant_id, now=now, **kwargs)  # type: ignore[arg-type]
    )


def outbox_row(rt: Runtime, message_id: str) -> sa.Row[object]:
    with rt.reader.connect() as conn:
        return conn.execute(
            select(notification_outbox).where(notification_outbox.c.message_id == message_id)
        ).one()


def deliveries(rt: Runtime, message_id: str) -> list[sa.Row[object]]:
    d = notification_deliveries
    with rt.reader.connect() as conn:
        return list(
            conn.execute(
                select(d).where(d.c.message_id == message_id).order_by(d.c.attempt, d.c.at)
            ).all()
        )


def count_outbox(rt: Runtime) -> int:
    with rt.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(notification_outbox)).scalar())


def test_a_message_reaches_its_user_with_the_right_headers_and_no_phi(
    mail_runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    rt = mail_runtime
    tenant, people = tenant_with(rt, patient=1, practitioner=1)
    user_id = people["patient0@north.example.org"]
    message_id = queue(
        rt, tenant.tenant_id, kind=RecipientKind.USER, recipient=user_id, template="new-message"
    )
    report = rt.notifications.deliver_due()
    assert (report.messages, report.sent) == (1, 1)

    [got] = smtp_sink.messages
    assert got.rcpt_tos == ("patient0@north.example.org",)
    assert got.mail_from == SENDER
    assert got.message["To"] == "patient0@north.example.org"
    assert got.message["From"] == f"North Clinic <{SENDER}>"
    assert got.message["Subject"] == "You have a new message from North Clinic"
    assert got.message["Auto-Submitted"] == "auto-generated"
    assert "Sign in to read it" in got.text
    assert not any(word in got.raw.decode() for word in PHI_WORDS)

    assert outbox_row(rt, message_id).state == MessageState.SENT
    [record] = deliveries(rt, message_id)
    assert (record.recipient_user_id, record.attempt, record.outcome, record.smtp_code) == (
        user_id, 1, "sent", 250,
    )  # fmt: skip
    # Audited in the tenant's chain, by user id, never by address.
    with rt.reader.connect() as conn:
        entries = conn.execute(
            select(audit_entries).where(
                audit_entries.c.tenant_id == tenant.tenant_id,
                audit_entries.c.resource_type == "Notification",
            )
        ).all()
    assert len(entries) == 1
    assert message_id in entries[0].resource_ids
    assert "@" not in " ".join(str(v) for v in entries[0])
    assert rt.audit_verification(tenant.tenant_id).ok
    # Nothing is due any more: a second round sends nothing.
    assert rt.notifications.deliver_due().messages == 0
    assert len(smtp_sink.messages) == 1


def test_a_role_message_fans_out_to_each_active_member_alone(
    mail_runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    rt = mail_runtime
    tenant, people = tenant_with(rt, privacy_officer=3, practitioner=1)
    disabled = people["privacy-officer2@north.example.org"]
    rt.committer.submit(
        lambda conn: conn.execute(
            update(users).where(users.c.user_id == disabled).values(active=False)
        )
    )
    link = ALERT.format(uuid.uuid4())
    message_id = queue(
        rt, tenant.tenant_id, kind=RecipientKind.ROLE, recipient="privacy-officer",
        template="snooping-alert", params={"link": link},
    )  # fmt: skip
    rt.notifications.deliver_due()

    assert sorted(m.rcpt_tos for m in smtp_sink.messages) == [
        ("privacy-officer0@north.example.org",),
        ("privacy-officer1@north.example.org",),
    ]
    for got in smtp_sink.messages:  # each sees only themself, and the link under our origin
        assert got.message["To"] == got.rcpt_tos[0]
        assert f"{rt.settings.public_origin}{link}" in got.text
    assert outbox_row(rt, message_id).state == MessageState.SENT
    assert {r.recipient_user_id for r in deliveries(rt, message_id)} == {
        people["privacy-officer0@north.example.org"],
        people["privacy-officer1@north.example.org"],
    }


def test_a_refused_message_is_retried_after_the_backoff_by_the_clock(
    mail_runtime: Runtime, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    rt = mail_runtime
    tenant, people = tenant_with(rt, staff=1)
    smtp_sink.answer_data("451 4.3.0 try again later")
    message_id = queue(
        rt, tenant.tenant_id, kind=RecipientKind.USER,
        recipient=people["staff0@north.example.org"], template="new-sign-in",
    )  # fmt: skip
    report = rt.notifications.deliver_due()
    assert (report.sent, report.temporary) == (0, 1)
    row = outbox_row(rt, message_id)
    assert (row.state, row.attempts) == (MessageState.PENDING, 1)
    assert row.next_attempt_at == isoformat(clock.now() + BACKOFF[0])

    clock.advance(BACKOFF[0] - timedelta(seconds=1))
    assert rt.notifications.deliver_due().messages == 0  # not due yet
    clock.advance(timedelta(seconds=1))
    assert rt.notifications.deliver_due().sent == 1

    assert [m.rcpt_tos for m in smtp_sink.messages] == [("staff0@north.example.org",)]
    outcomes = [(r.attempt, r.outcome, r.smtp_code) for r in deliveries(rt, message_id)]
    assert outcomes == [(1, "temporary-failure", 451), (2, "sent", 250)]
    assert outbox_row(rt, message_id).state == MessageState.SENT


def test_after_the_last_retry_the_message_fails(
    mail_runtime: Runtime, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    rt = mail_runtime
    tenant, people = tenant_with(rt, staff=1)
    smtp_sink.answer_data(*["421 4.4.2 busy"] * MAX_ATTEMPTS)
    message_id = queue(
        rt, tenant.tenant_id, kind=RecipientKind.USER,
        recipient=people["staff0@north.example.org"], template="mfa-changed",
    )  # fmt: skip
    for wait in (timedelta(0), *BACKOFF):
        clock.advance(wait)
        assert rt.notifications.deliver_due().temporary == 1
    row = outbox_row(rt, message_id)
    assert (row.state, row.attempts) == (MessageState.FAILED, MAX_ATTEMPTS)
    clock.advance(timedelta(days=2))
    assert rt.notifications.deliver_due().messages == 0
    assert smtp_sink.messages == []


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_a_5xx_answer_is_permanent(
    mail_runtime: Runtime, smtp_sink: SmtpSink, clock: ManualClock, where: str
) -> None:
    rt = mail_runtime
    tenant, people = tenant_with(rt, staff=1)
    if where == "rcpt":
        smtp_sink.answer_rcpt("550 5.1.1 no such mailbox")
    else:
        smtp_sink.answer_data("554 5.6.0 rejected")
    message_id = queue(
        rt, tenant.tenant_id, kind=RecipientKind.USER,
        recipient=people["staff0@north.example.org"], template="email-changed",
    )  # fmt: skip
    assert rt.notifications.deliver_due().permanent == 1
    [record] = deliveries(rt, message_id)
    assert (record.outcome, record.smtp_code) == (
        "permanent-failure", 550 if where == "rcpt" else 554,
    )  # fmt: skip
    assert outbox_row(rt, message_id).state == MessageState.FAILED
    clock.advance(timedelta(days=1))
    assert rt.notifications.deliver_due().messages == 0
    assert smtp_sink.messages == []


def test_the_outbox_row_commits_or_rolls_back_with_its_event(mail_runtime: Runtime) -> None:
    rt = mail_runtime
    tenant, people = tenant_with(rt, staff=1)
    user_id = people["staff0@north.example.org"]
    now = isoformat(rt.clock.now())

    def event_then_failure(conn: Connection) -> None:
        conn.execute(update(tenants).values(name="Renamed").where(tenants.c.slug == "north"))
        enqueue(conn, tenant.tenant_id, kind=RecipientKind.USER, recipient=user_id,
                template="new-sign-in", now=now)  # fmt: skip
        raise RuntimeError("the event failed after queueing its notice")

    with pytest.raises(RuntimeError):
        rt.committer.submit(event_then_failure)
    assert count_outbox(rt) == 0
    assert rt.identity.tenant_by_slug("north").name == "North Clinic"

    def event(conn: Connection) -> None:
        conn.execute(update(tenants).values(name="Renamed").where(tenants.c.slug == "north"))
        enqueue(conn, tenant.tenant_id, kind=RecipientKind.USER, recipient=user_id,
                template="new-sign-in", now=now)  # fmt: skip

    rt.committer.submit(event)
    assert count_outbox(rt) == 1
    assert rt.identity.tenant_by_slug("north").name == "Renamed"


@pytest.mark.parametrize(
    ("template", "params", "message"),
    [
        ("lab-result", {}, "no notification template"),
        ("new-message", {"preview": "Your biopsy came back"}, "no parameter named preview"),
        ("password-reset", {}, "needs the parameter 'link'"),
        ("sign-in-failures", {"count": "five"}, "must be an integer"),
        ("snooping-alert", {"link": "/portal/messages?to=alicia.q@example.org"}, "link"),
        ("snooping-alert", {"link": "/privacy/alerts?token=1984-03-17"}, "link"),
        ("break-glass-alert", {"link": "/portal/patients/quintero"}, "link"),
    ],
)
def test_an_email_that_would_carry_phi_is_refused_and_nothing_is_written(
    mail_runtime: Runtime, template: str, params: dict[str, object], message: str
) -> None:
    rt = mail_runtime
    tenant, _ = tenant_with(rt)
    with pytest.raises(Invalid, match=message):
        queue(
            rt, tenant.tenant_id, kind=RecipientKind.ROLE, recipient="privacy-officer",
            template=template, params=params,
        )  # fmt: skip
    assert count_outbox(rt) == 0


def test_a_row_written_around_the_guard_is_caught_before_sending(
    mail_runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    rt = mail_runtime
    tenant, _people = tenant_with(rt, privacy_officer=1)
    message_id = queue(
        rt, tenant.tenant_id, kind=RecipientKind.ROLE, recipient="privacy-officer",
        template="snooping-alert", params={"link": ALERT.format(uuid.uuid4())},
    )  # fmt: skip
    tampered = '{"link": "/privacy/alerts?patient=alicia.q@example.org"}'
    rt.committer.submit(
        lambda conn: conn.execute(
            update(notification_outbox)
            .where(notification_outbox.c.message_id == message_id)
            .values(params=tampered)
        )
    )
    assert rt.notifications.deliver_due().permanent == 1
    assert smtp_sink.messages == []
    [record] = deliveries(rt, message_id)
    assert (record.outcome, record.reason) == ("permanent-failure", "phi-guard")


def test_a_line_break_in_a_header_field_is_never_sent(
    mail_runtime: Runtime, smtp_sink: SmtpSink
) -> None:
    rt = mail_runtime
    tenant, people = tenant_with(rt, staff=1)
    user_id = people["staff0@north.example.org"]
    # A tenant display name and an address that would add a Bcc header if they got through.
    rt.committer.submit(
        lambda conn: conn.execute(
            update(tenants)
            .where(tenants.c.tenant_id == tenant.tenant_id)
            .values(name="North\r\nBcc: spy@evil.test")
        )
    )
    first = queue(rt, tenant.tenant_id, kind=RecipientKind.USER, recipient=user_id,
                  template="new-sign-in")  # fmt: skip
    assert rt.notifications.deliver_due().permanent == 1
    rt.committer.submit(
        lambda conn: conn.execute(
            update(tenants).where(tenants.c.tenant_id == tenant.tenant_id).values(name="North")
        )
    )
    sealed = rt.vault.seal_for(
        tenant.tenant_id, "accounts", b"staff0@north.example.org\r\nBcc: spy@evil.test",
        user_id.encode(),
    )  # fmt: skip
    rt.committer.submit(
        lambda conn: conn.execute(
            update(users).where(users.c.user_id == user_id).values(email_sealed=sealed)
        )
    )
    second = queue(rt, tenant.tenant_id, kind=RecipientKind.USER, recipient=user_id,
                   template="new-sign-in")  # fmt: skip
    assert rt.notifications.deliver_due().permanent == 1
    assert smtp_sink.messages == []
    for message_id in (first, second):
        [record] = deliveries(rt, message_id)
        assert record.outcome == "permanent-failure"
        assert record.reason in ("phi-guard", "header")


def test_two_workers_never_send_the_same_message_twice(
    mail_runtime: Runtime, mail_settings: Settings, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    rt = mail_runtime
    tenant, people = tenant_with(rt, staff=1)
    user_id = people["staff0@north.example.org"]
    ids = [
        queue(rt, tenant.tenant_id, kind=RecipientKind.USER, recipient=user_id,
              template="new-sign-in")
        for _ in range(20)
    ]  # fmt: skip
    other = Runtime(mail_settings, clock=clock)  # a second process's worth of engines
    try:
        start = threading.Barrier(2)

        def work(runtime: Runtime) -> None:
            start.wait()
            while runtime.notifications.deliver_due(limit=3).messages:
                pass

        threads = [threading.Thread(target=work, args=(r,)) for r in (rt, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        other.close()
    assert len(smtp_sink.messages) == 20
    ids_sent = {m.message["Message-ID"] for m in smtp_sink.messages}
    assert len(ids_sent) == 20
    for message_id in ids:
        assert [r.outcome for r in deliveries(rt, message_id)] == ["sent"]


def test_a_row_claimed_in_one_transaction_is_not_claimed_by_a_concurrent_one(
    mail_runtime: Runtime, mail_settings: Settings
) -> None:
    """The claim's compare-and-set: B reads the rows as due while A's claim is uncommitted
    (PostgreSQL) or waits for A's write lock (SQLite); once A commits, B takes none of them."""
    rt = mail_runtime
    tenant, people = tenant_with(rt, staff=1)
    for _ in range(3):
        queue(rt, tenant.tenant_id, kind=RecipientKind.USER,
              recipient=people["staff0@north.example.org"], template="new-sign-in")  # fmt: skip
    url = mail_settings.resolved_database_url
    engines = [make_engine(url, writer=True, pool_size=1) for _ in range(2)]
    claims: dict[str, list[Claimed]] = {}

    def claim_b() -> None:
        with engines[1].begin() as conn:
            claims["b"] = rt.notifications._claim(conn, 10)

    try:
        with engines[0].begin() as conn:
            claims["a"] = rt.notifications._claim(conn, 10)
            other = threading.Thread(target=claim_b)
            other.start()
            # Let B reach its read and block on A's locks; were it slower, A would simply
            # commit first and the test would pass for the easy reason, never fail wrongly.
            other.join(timeout=1.0)
        other.join(timeout=60)
    finally:
        for engine in engines:
            engine.dispose()
    assert len(claims["a"]) == 3
    assert claims["b"] == []


def test_the_background_sender_delivers_and_stops_with_the_runtime(
    mail_settings: Settings, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    initialize(mail_settings)
    rt = Runtime(mail_settings.model_copy(update={"notifications_poll_seconds": 0.05}), clock=clock)
    try:
        tenant, people = tenant_with(rt, staff=1)
        rt.start_notification_sender()
        queue(rt, tenant.tenant_id, kind=RecipientKind.USER,
              recipient=people["staff0@north.example.org"], template="new-sign-in")  # fmt: skip
        arrived = threading.Event()
        for _ in range(200):  # the thread polls in real time; wait for it, at most 10 s
            if smtp_sink.messages:
                arrived.set()
                break
            arrived.wait(0.05)
        assert arrived.is_set()
    finally:
        rt.close()
    assert not any(t.name == "carevault-notifications" for t in threading.enumerate())


def test_without_smtp_messages_stay_pending(runtime: Runtime) -> None:
    tenant, people = tenant_with(runtime, staff=1)
    message_id = queue(
        runtime, tenant.tenant_id, kind=RecipientKind.USER,
        recipient=people["staff0@north.example.org"], template="new-sign-in",
    )  # fmt: skip
    report = runtime.notifications.deliver_due()
    assert (report.configured, report.pending, report.messages) == (False, 1, 0)
    assert outbox_row(runtime, message_id).state == MessageState.PENDING
    assert runtime.notifications.list_messages(tenant.tenant_id)[0].state == "pending"


def test_the_cli_lists_and_sends(
    mail_runtime: Runtime, mail_settings: Settings, smtp_sink: SmtpSink, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the command line is the same on both backends; once is enough")
    rt = mail_runtime
    tenant, people = tenant_with(rt, staff=1)
    user_id = people["staff0@north.example.org"]
    message_id = queue(rt, tenant.tenant_id, kind=RecipientKind.USER, recipient=user_id,
                       template="new-sign-in")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREVAULT_")}
    env |= {"CAREVAULT_HOME": str(mail_settings.home), "COLUMNS": "200", "NO_COLOR": "1"}

    def cli(*args: str, smtp: bool = True) -> subprocess.CompletedProcess[str]:
        extra = {"CAREVAULT_SMTP_HOST": smtp_sink.host,
                 "CAREVAULT_SMTP_PORT": str(smtp_sink.port)} if smtp else {}  # fmt: skip
        return subprocess.run(
            [str(CAREVAULT), *args], env=env | extra, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    listed = cli("notifications", "list", "--tenant", "north")
    assert listed.returncode == 0, listed.stderr
    assert message_id in listed.stdout
    assert "pending" in listed.stdout
    assert "@" not in listed.stdout

    unconfigured = cli("notifications", "send", smtp=False)
    assert unconfigured.returncode == 1
    assert "SMTP" in unconfigured.stdout + unconfigured.stderr

    sent = cli("notifications", "send")
    assert sent.returncode == 0, sent.stderr
    assert "1 sent" in sent.stdout
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("staff0@north.example.org",)]
    listed = cli("notifications", "list", "--tenant", "north", "--state", "sent")
    assert message_id in listed.stdout
