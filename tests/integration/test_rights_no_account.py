"""A CCPA requester with no account (a marketing contact, a site visitor who writes in by
email) is verified by the token an email check sends to their address, and every notice of
their case (acknowledgement, extension, decision, completion) reaches that address through
the real SMTP path, with a link that opens the case without an account. The address is
sealed at rest, opened only at send time, and never in a log, a URL, an audit entry or the
outbox's parameters. A forged token, a used one or an expired one is refused (403), audited,
and changes nothing; a wrong link reads like a missing case (404)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carevault.app import create_app
from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.database import metadata
from carevault.messaging.models import notification_deliveries, notification_outbox
from carevault.rights.models import rights_requests
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from tests.conftest import Clinic, make_site
from tests.smtp_sink import SmtpSink

VISITOR = "visitor.ramos@example.net"
KNOW = {"action": "know", "categories": ["marketing-contacts"], "channel": "email"}
DELETE = {"action": "delete", "categories": ["marketing-contacts"], "channel": "email"}
_TOKEN = re.compile(r"/rights/email/confirm\?token=([A-Za-z0-9_-]+)")
_CASE = re.compile(r"(/rights/requests/[0-9a-f-]{36}\?token=[A-Za-z0-9_-]+)")


class Desk:
    def __init__(self, rt: Runtime, client: TestClient, clinic: Clinic, sink: SmtpSink) -> None:
        self.rt, self.client, self.clinic, self.sink = rt, client, clinic, sink

    def deliver(self) -> list[Any]:
        before = len(self.sink.messages)
        self.rt.notifications.deliver_due()
        return self.sink.messages[before:]

    def check(self, address: str = VISITOR) -> str:
        """Ask for an email check and read the token out of the email that arrives."""
        answer = self.client.post("/rights/email-checks", json={"email": address})
        assert answer.status_code == 202, answer.text
        [mail] = [
            m
            for m in self.deliver()
            if address in m.rcpt_tos and "Confirm your address" in str(m.message["Subject"])
        ]
        found = _TOKEN.search(mail.text)
        assert found is not None, mail.text
        return found.group(1)

    def file(self, body: dict[str, Any], token: str) -> Any:
        return self.client.post("/rights/requests", json={**body, "email_check": {"token": token}})

    def vendor(self, rid: str, step: str, body: dict[str, Any]) -> Any:
        headers = self.clinic.north.headers("vendor-operator")
        return self.client.post(f"/admin/rights/requests/{rid}/{step}", json=body, headers=headers)

    def requests(self) -> int:
        with self.rt.reader.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(rights_requests)).scalar_one())

    def refusals(self) -> list[str]:
        with self.rt.reader.connect() as conn:
            rows = conn.execute(
                select(audit_entries.c.detail).where(
                    audit_entries.c.tenant_id == VENDOR_CHAIN,
                    audit_entries.c.outcome != "success",
                )
            )
            return [str(d) for d in rows.scalars()]


@pytest.fixture
def desk(mail_settings: Settings, clock: ManualClock, smtp_sink: SmtpSink) -> Iterator[Desk]:
    ours = mail_settings.model_copy(update={"policy_profile": "ihr-health"})
    initialize(ours)
    rt = Runtime(ours, clock=clock)
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            yield Desk(
                rt, client, Clinic(make_site(rt, "north"), make_site(rt, "south")), smtp_sink
            )
    finally:
        rt.close()


def _link(mail: Any) -> str:
    found = _CASE.search(mail.text)
    assert found is not None, mail.text
    return found.group(1)


def _nothing_in_the_clear(rt: Runtime, address: str) -> None:
    """No column of any table holds the address in the clear (sealed or hashed only)."""
    needle = address.encode()
    with rt.reader.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    assert needle not in raw, f"{table.name} holds the address in the clear"


def test_a_person_with_no_account_is_answered_at_the_address_they_confirmed(
    desk: Desk, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = desk.check()
    made = desk.file(KNOW, token)
    assert made.status_code == 201, made.text
    case = made.json()["request"]
    assert (case["verification"], case["requester_kind"]) == ("email-confirmed", "person")
    assert case["decides"] == "CareVault (the vendor)"
    rid = case["request_id"]
    # the acknowledgement reaches the address, through SMTP, with a link needing no account
    [ack] = desk.deliver()
    assert ack.rcpt_tos == (VISITOR,)
    assert "News about your privacy request to CareVault" in str(ack.message["Subject"])
    link = _link(ack)
    assert rid in link
    opened = desk.client.get(link)
    assert opened.status_code == 200, opened.text
    assert [n["kind"] for n in opened.json()["notices"]] == ["received"]
    assert opened.json()["due_at"][:10] == (clock.now() + timedelta(days=45)).date().isoformat()
    # the one extension: the email says how long; the reason is behind the link
    reason = "We are checking our marketing lists for this address."
    assert desk.vendor(rid, "extend", {"reason": reason}).status_code == 200
    [more] = desk.deliver()
    assert more.rcpt_tos == (VISITOR,)
    assert "45 more days" in more.text
    assert reason not in more.text
    told = [n["text"] for n in desk.client.get(link).json()["notices"] if n["kind"] == "extended"]
    assert reason in told[0]
    # completion, and the answer by the same link
    done = desk.vendor(rid, "fulfil", {})
    assert done.status_code == 200, done.text
    [complete] = desk.deliver()
    assert complete.rcpt_tos == (VISITOR,)
    got = desk.client.get(f"{link}&form=json".replace("?token", "/copy?token"))
    assert got.status_code == 200, got.text
    assert got.json()["pieces"]["account"] is None
    # a deletion: acknowledged, decided, done: each notice to the address
    deletion = desk.file(DELETE, desk.check()).json()["request"]
    assert len(desk.deliver()) == 1  # received
    assert desk.vendor(deletion["request_id"], "decide", {"decision": "accept"}).status_code == 200
    [decided] = desk.deliver()
    assert decided.rcpt_tos == (VISITOR,)
    assert desk.vendor(deletion["request_id"], "fulfil", {}).status_code == 200
    [finished] = desk.deliver()
    view = desk.client.get(_link(finished)).json()
    assert view["fulfilment"]["deletion"]["held"].startswith("no account")
    assert view["fulfilment"]["deletion"]["directed"] == []  # no provider got marketing contacts
    # the address: sealed or hashed at rest, never logged, never in an audit entry
    _nothing_in_the_clear(desk.rt, VISITOR)
    ours = [r for r in caplog.records if r.name.startswith("carevault")]  # not the sink's own
    assert ours
    assert all(VISITOR not in f"{r.getMessage()} {r.__dict__}" for r in ours)
    with desk.rt.reader.connect() as conn:
        params = conn.execute(select(notification_outbox.c.params)).scalars().all()
        kinds = conn.execute(
            select(notification_outbox.c.recipient_kind).where(
                notification_outbox.c.tenant_id == VENDOR_CHAIN
            )
        ).scalars()
        sent = conn.execute(
            select(func.count()).where(
                notification_deliveries.c.tenant_id == VENDOR_CHAIN,
                notification_deliveries.c.outcome == "sent",
            )
        ).scalar_one()
    assert set(kinds) == {"address"}
    assert sent == 8  # two checks, and six notices of two cases
    assert all(VISITOR not in p for p in params)


def test_an_unverifiable_requester_is_refused_audited_and_nothing_changes(desk: Desk) -> None:
    token = desk.check()
    for given in ({"token": "forged-token-0123456789abcdefABCDEF"}, {"token": ""}, "x"):
        answer = desk.client.post("/rights/requests", json={**KNOW, "email_check": given})
        assert answer.status_code in (400, 403), answer.text
        assert answer.json()["detail"]
    forged = desk.client.post(
        "/rights/requests", json={**KNOW, "email_check": {"token": token[:-2] + "zz"}}
    )
    assert forged.status_code == 403
    assert "could not verify that the address is yours" in forged.json()["detail"]
    assert desk.requests() == 0
    assert len(desk.refusals()) == 4
    assert all("rights request refused" in d for d in desk.refusals())
    # used once only
    assert desk.file(KNOW, token).status_code == 201
    again = desk.file(KNOW, token)
    assert again.status_code == 403
    assert desk.requests() == 1
    # sensitive data is not reached by an address alone
    sensitive = desk.file({**KNOW, "categories": ["request-data"]}, desk.check())
    assert sensitive.status_code == 422  # request-data is not open to a request to know
    # a wrong link reads like a missing case, and is audited
    mail = next(m for m in desk.sink.messages if "News about" in str(m.message["Subject"]))
    link = _link(mail)
    assert desk.client.get(link).status_code == 200
    wrong = desk.client.get(link[:-3] + "abc")
    assert wrong.status_code == 404
    assert any("read by link" in d for d in desk.refusals())
    bad = desk.client.post("/rights/email-checks", json={"email": "not an address"})
    assert bad.status_code == 400
    assert "email must be an email address" in bad.json()["detail"]


def test_a_check_is_good_for_three_days(desk: Desk, clock: ManualClock) -> None:
    """N = 3 days: used at day 2 and day 3 (inclusive) it verifies; at day 4 it does not."""
    tokens = [desk.check(f"reader{n}@example.net") for n in range(3)]
    clock.advance(timedelta(days=2))
    assert desk.file(KNOW, tokens[0]).status_code == 201
    clock.advance(timedelta(days=1))
    assert desk.file(KNOW, tokens[1]).status_code == 201
    clock.advance(timedelta(days=1))
    late = desk.file(KNOW, tokens[2])
    assert late.status_code == 403
    assert "older than 3 days" in late.json()["detail"]
    assert desk.requests() == 2


def test_the_last_notice_of_an_erasing_deletion_reaches_the_erased_accounts_address(
    desk: Desk,
) -> None:
    north = desk.clinic.north
    made = desk.client.post(
        "/rights/requests",
        json={"action": "delete", "categories": ["account"]},
        headers=north.headers("staff"),
    )
    assert made.status_code == 201, made.text
    rid = made.json()["request"]["request_id"]
    [ack] = desk.deliver()
    assert ack.rcpt_tos == ("staff@north.example.org",)  # the account, while it exists
    assert "Sign in" in ack.text
    assert desk.vendor(rid, "decide", {"decision": "accept"}).status_code == 200
    desk.deliver()
    done = desk.vendor(rid, "fulfil", {})
    assert done.status_code == 200, done.text
    assert done.json()["fulfilment"]["deletion"]["erased"] is True
    [last] = desk.deliver()
    assert last.rcpt_tos == ("staff@north.example.org",)
    view = desk.client.get(_link(last))  # no account any more: the link opens the answer
    assert view.status_code == 200
    [answer] = [n["text"] for n in view.json()["notices"] if n["kind"] == "fulfilled"]
    assert "What we kept, and why" in answer
    signed = desk.client.post(
        "/auth/sign-in",
        json={"tenant": "north", "email": "staff@north.example.org",
              "password": "a long passphrase", "delivery": "bearer"},
    )  # fmt: skip
    assert signed.status_code in (400, 401, 403)


def test_an_address_gets_at_most_three_live_checks(desk: Desk, clock: ManualClock) -> None:
    first = desk.check()
    desk.check()
    desk.check()
    flood = desk.client.post("/rights/email-checks", json={"email": VISITOR})
    assert flood.status_code == 409
    assert "still unused" in flood.json()["detail"]
    assert desk.deliver() == []  # nothing more was sent
    assert any("email check refused" in d for d in desk.refusals())
    assert desk.file(KNOW, first).status_code == 201  # one used: another may be sent
    desk.check()
    clock.advance(timedelta(days=4))  # the rest lapsed
    desk.check()


def test_an_address_asks_to_know_twice_in_twelve_months(desk: Desk, clock: ManualClock) -> None:
    assert desk.file(KNOW, desk.check()).status_code == 201
    clock.advance(timedelta(days=100))
    copy = {"action": "access", "categories": ["marketing-contacts"], "channel": "email"}
    assert desk.file(copy, desk.check()).status_code == 201
    third = desk.file(KNOW, desk.check())
    assert third.status_code == 422
    assert "2 in any 12 months" in third.json()["detail"]
    assert desk.requests() == 2
