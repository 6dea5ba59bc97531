"""LI-52: a material change is posted on the website, every organization party to a business
associate agreement is notified, and the change takes effect seven days after it was first
posted; before that the old rules hold. Proven by moving the injected clock across the day."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.identity.permissions import Purpose
from carevault.messaging.models import notification_outbox
from carevault.policy import policies_dir
from carevault.policy.versions import policy_versions
from tests.audit_rows import audit_of
from tests.promises.conftest import Deployment

URL = "/admin/privacy-policy/versions"
YAML = {"Content-Type": "application/yaml"}
BILLING = """purposes:
  billing:
    description: To bill for the services you use.
    categories: [phi, account]
    purpose_of_use: HPAYMT
"""


def lifeimage_with_billing() -> str:
    """The lifeIMAGE policy with one material change: PHI is also used for billing."""
    text = (policies_dir() / "lifeimage.yaml").read_text(encoding="utf-8")
    assert text.count("\npurposes:\n") == 1
    return text.replace("\npurposes:\n", "\n" + BILLING, 1)


def _read_as_billing(dep: Deployment) -> int:
    """Staff of north read a patient under HPAYMT (a fresh token: the clock moves days)."""
    identity = dep.runtime.identity
    tenant = identity.tenant_by_slug("north")
    user = identity.user_id_by_email(tenant, "staff@north.example.org")
    token = identity.create_token(tenant, user, purpose=Purpose.HPAYMT).token
    answer = dep.client.get(
        f"/fhir/Patient/{dep.clinic.north.patient_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    status: int = answer.status_code
    return status


def _post(dep: Deployment, text: str, role: str = "vendor-operator", **headers: str) -> Any:
    return dep.client.post(
        URL, content=text.encode(), headers=dep.clinic.north.headers(role, **(YAML | headers))
    )


def _stored(dep: Deployment) -> int:
    with dep.runtime.reader.connect() as conn:
        found = conn.execute(sa.select(sa.func.count()).select_from(policy_versions)).scalar()
        return int(found or 0)


def _notices(dep: Deployment) -> list[Any]:
    o = notification_outbox
    with dep.runtime.reader.connect() as conn:
        return list(
            conn.execute(
                sa.select(o.c.tenant_id, o.c.recipient_kind, o.c.recipient, o.c.params).where(
                    o.c.template == "policy-change-posted"
                )
            ).all()
        )


@pytest.mark.promise("LI-52")
def test_lifeimage_change_is_posted_notified_and_takes_effect_seven_days_later(
    profiled: Callable[[str], Deployment],
) -> None:
    dep = profiled("lifeimage")
    posted_at = dep.clock.now()
    assert _read_as_billing(dep) == 403  # lifeIMAGE uses PHI only to provide the service

    answer = _post(dep, lifeimage_with_billing())
    assert answer.status_code == 201, answer.text
    version = answer.json()
    effective = posted_at + timedelta(days=7)
    assert version["version"] == 1
    assert version["state"] == "pending"
    assert version["effective_at"].startswith(effective.strftime("%Y-%m-%dT%H:%M:%S"))
    assert version["tenants_notified"] == 2
    entries = audit_of(dep.runtime, answer)
    assert [(e["tenant_id"], e["outcome"]) for e in entries] == [(VENDOR_CHAIN, "success")]
    assert "version 1 posted" in entries[0]["detail"]

    # every organization is told, through its administrators and its privacy officer
    notices = _notices(dep)
    tenants = {dep.clinic.north.tenant_id, dep.clinic.south.tenant_id}
    assert {(n.tenant_id, n.recipient) for n in notices} == {
        (t, r) for t in tenants for r in ("practice-admin", "privacy-officer")
    }
    day = effective.date()
    for n in notices:
        assert n.recipient_kind == "role"
        assert orjson.loads(n.params) == {
            "days": 7, "year": day.year, "month": day.month, "day": day.day,
        }  # fmt: skip

    # the website shows the change from the moment it is posted, with its dates
    page = dep.client.get("/privacy-policy?format=markdown")
    assert page.status_code == 200
    assert "A new version (1) was posted" in page.text
    assert f"takes effect {effective:%Y-%m-%d %H:%M} UTC" in page.text
    assert "Billing" not in page.text  # the rules in effect are still the old ones

    # the old rules hold until the seventh day, the new ones from it
    dep.clock.advance(timedelta(days=6))
    assert _read_as_billing(dep) == 403
    assert dep.runtime.policy.phi_purposes_of_use == {"TREAT"}
    dep.clock.advance(timedelta(days=1))
    assert _read_as_billing(dep) == 200
    assert dep.runtime.policy.phi_purposes_of_use == {"TREAT", "HPAYMT"}
    dep.clock.advance(timedelta(days=1))
    assert _read_as_billing(dep) == 200

    page = dep.client.get("/privacy-policy?format=markdown")
    assert f"Version 1, posted {posted_at:%Y-%m-%d %H:%M} UTC" in page.text
    assert "Billing" in page.text
    html = dep.client.get("/privacy-policy")
    assert html.headers["content-type"].startswith("text/html")
    assert f"in effect from {effective:%Y-%m-%d %H:%M} UTC" in html.text
    old = dep.client.get("/privacy-policy/versions/0?format=markdown")
    assert "Effective 2016-12-14." in old.text
    assert "Billing" not in old.text
    assert dep.client.get("/privacy-policy/versions/9").status_code == 404

    # an auditor (a tenant's privacy officer) sees which policy was in effect when
    listed = dep.client.get(URL, headers=dep.clinic.south.headers("privacy-officer"))
    assert listed.status_code == 200, listed.text
    states = [(v["version"], v["state"], v["effective_at"]) for v in listed.json()["versions"]]
    assert states == [(0, "superseded", None), (1, "in-effect", version["effective_at"])]
    assert audit_of(dep.runtime, listed)[0]["tenant_id"] == dep.clinic.south.tenant_id
    assert dep.runtime.audit_verification(VENDOR_CHAIN).ok


@pytest.mark.promise("LI-52")
def test_lifeimage_refuses_a_bad_posting_and_stores_nothing(
    profiled: Callable[[str], Deployment],
) -> None:
    dep = profiled("lifeimage")
    good = lifeimage_with_billing()

    # refused as `carevault policy check` refuses it: the schema, then the cross-references
    typo = _post(
        dep, good.replace("purpose_of_use: HPAYMT", "purpose_of_use: HPAYMT\n    urgent: true")
    )
    assert typo.status_code == 400, typo.text
    assert [i["path"] for i in typo.json()["issues"]] == ["purposes.billing.urgent"]
    assert [e["outcome"] for e in audit_of(dep.runtime, typo)] == ["invalid"]
    unknown = _post(dep, good.replace("categories: [phi, account]\n", "categories: [bills]\n", 1))
    assert unknown.status_code == 400, unknown.text
    assert any("bills" in i["message"] for i in unknown.json()["issues"]), unknown.text

    not_yaml = _post(dep, "policy: [1", "vendor-operator")
    assert not_yaml.status_code == 400
    assert "not valid YAML" in not_yaml.json()["detail"]

    for role in ("practice-admin", "privacy-officer", "practitioner", "patient"):
        refused = _post(dep, good, role)
        assert refused.status_code == 403, (role, refused.text)
        entry = audit_of(dep.runtime, refused)
        assert [(e["tenant_id"], e["outcome"]) for e in entry] == [
            (dep.clinic.north.tenant_id, "denied")
        ]

    as_json = _post(dep, good, "vendor-operator", **{"Content-Type": "application/json"})
    assert as_json.status_code == 415
    assert [e["outcome"] for e in audit_of(dep.runtime, as_json)] == ["invalid"]
    anonymous = dep.client.post(URL, content=good.encode(), headers=YAML)
    assert anonymous.status_code == 401

    unchanged = (policies_dir() / "lifeimage.yaml").read_text(encoding="utf-8") + "\n# same\n"
    same = _post(dep, unchanged)
    assert same.status_code == 409
    assert "the same policy as version 0" in same.json()["detail"]

    # nothing stored, nobody told, the old rules in force
    assert _stored(dep) == 0
    assert _notices(dep) == []
    assert _read_as_billing(dep) == 403
    patient = dep.client.get(URL, headers=dep.clinic.north.headers("patient"))
    assert patient.status_code == 403
