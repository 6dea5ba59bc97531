"""Global Privacy Control (messaging/gpc.py) and breach notices (messaging/breach.py): what is
recorded, what is ignored and what is refused, through web/communications_api.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.messaging.models import notification_outbox
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from tests.conftest import Site, make_site

Made = tuple[Runtime, TestClient, Site]


@pytest.fixture
def deployment(settings: Settings, clock: ManualClock) -> Iterator[Callable[[str], Made]]:
    opened: list[tuple[Runtime, TestClient]] = []

    def make(profile: str) -> Made:
        ours = settings.model_copy(update={"policy_profile": profile})
        initialize(ours)
        rt = Runtime(ours, clock=clock)
        client = TestClient(create_app(rt), raise_server_exceptions=False)
        client.__enter__()
        opened.append((rt, client))
        return rt, client, make_site(rt, "north")

    yield make
    for rt, client in opened:
        client.__exit__(None, None, None)
        rt.close()


def choice_entries(rt: Runtime, site: Site) -> list[sa.Row[tuple[object, ...]]]:
    with rt.reader.connect() as conn:
        return list(conn.execute(sa.select(audit_entries).where(
            audit_entries.c.tenant_id == site.tenant_id,
            audit_entries.c.resource_type == "PrivacyChoice")))  # fmt: skip


def test_gpc_is_ignored_where_the_policy_does_not_honour_it(
    deployment: Callable[[str], Made],
) -> None:
    rt, client, site = deployment("practice-fusion")
    gpc = site.headers("patient", **{"Sec-GPC": "1"})
    assert client.get(f"/fhir/Patient/{site.patient_id}", headers=gpc).status_code == 200
    answer = client.get("/account/privacy-choices", headers=site.headers("patient")).json()
    assert answer == {"sale_and_sharing_opt_out": False, "since": None,
                      "global_privacy_control": False}  # fmt: skip
    assert choice_entries(rt, site) == []


def test_only_a_valid_signal_of_a_signed_in_person_is_recorded(
    deployment: Callable[[str], Made],
) -> None:
    rt, client, site = deployment("healthsoft")
    assert client.get("/health", headers={"Sec-GPC": "1"}).status_code == 200  # anonymous
    bad = client.get("/fhir/Patient", headers={"Authorization": "Bearer nope", "Sec-GPC": "1"})
    assert bad.status_code == 401
    for value in ("0", "true", ""):
        client.get(
            "/account/privacy-choices", headers=site.headers("patient", **{"Sec-GPC": value})
        )
    assert choice_entries(rt, site) == []
    assert client.get("/account/privacy-choices").status_code == 401
    client.get("/account/privacy-choices", headers=site.headers("staff", **{"Sec-GPC": " 1 "}))
    assert len(choice_entries(rt, site)) == 1
    assert client.get("/account/privacy-choices", headers=site.headers("staff")).json()[
        "sale_and_sharing_opt_out"
    ]


def test_breach_notices_refuse_what_they_cannot_do(deployment: Callable[[str], Made]) -> None:
    rt, client, site = deployment("healthsoft")
    officer = site.headers("privacy-officer")
    cases = [
        (site.headers("practice-admin"), {"patient_ids": [site.patient_id]}, 403),
        ({}, {"patient_ids": [site.patient_id]}, 401),
        (officer, {"patient_ids": []}, 400),
        (officer, {"patient_ids": "everyone"}, 400),
        (officer, {"patient_ids": ["../etc/passwd"]}, 400),
        (officer, {"patient_ids": [7]}, 400),
    ]
    for headers, body, status in cases:
        answer = client.post("/privacy/breaches", json=body, headers=headers)
        assert answer.status_code == status, (body, answer.text)
    assert client.post("/privacy/breaches", content=b"{", headers=officer).status_code == 400
    with rt.reader.connect() as conn:
        assert conn.execute(sa.select(notification_outbox).where(
            notification_outbox.c.template == "breach-notice")).all() == []  # fmt: skip
        refused = conn.execute(sa.select(audit_entries).where(
            audit_entries.c.tenant_id == site.tenant_id,
            audit_entries.c.resource_type == "BreachNotice")).all()  # fmt: skip
    assert {e.outcome for e in refused} == {"denied", "invalid"}
    done = client.post("/privacy/breaches", headers=officer,
                       json={"patient_ids": [site.patient_id, site.patient_id]})  # fmt: skip
    assert done.status_code == 201, done.text
    assert done.json()["patients"] == 1  # named twice, told once
    assert done.json()["notices_queued"] == 1
    assert rt.audit_verification(site.tenant_id).ok
