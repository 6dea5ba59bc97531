"""AllMeds (AM-14) and lifeIMAGE (LI-36) share PHI with a health-oversight agency (HHS
investigating compliance) only as part of an investigation on file: the policy's
`disclosure.bases.health-oversight.requires_order`. Without the agency's administrative
request on file nothing leaves and the refusal is audited; with it, only what it names leaves,
cut to the oversight profile, and the release is in the patient's accounting unless the
agency has it suspended."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from carevault.clock import isoformat
from tests.audit_rows import audit_of
from tests.disclosure_helpers import disclose, ledger, observation, organization, refused, released
from tests.promises.conftest import Deployment
from tests.promises.disclosure_steps_li import accounting, encounter, fields_of, order_id

Profiled = Callable[[str], Deployment]


def _oversight_needs_the_investigation(dep: Deployment) -> None:
    rt, client, north, clock = dep.runtime, dep.client, dep.clinic.north, dep.clock
    agency = organization(rt, north, "govt", name="HHS Office for Civil Rights")
    patient = f"Patient/{north.patient_id}"
    visit = encounter(rt, north)
    lab = observation(rt, north)

    def ask(*info: str, order: str | None = None) -> object:
        return disclose(client, north, "health-oversight", agency, info=info, order=order,
                        purpose="HHS compliance review 26-0142")  # fmt: skip

    # nothing on file: refused, nothing released, audited
    why = refused(rt, north, ask(patient, visit), 403, 0)
    assert "investigation on file" in why
    assert "/admin/legal-orders" in why
    # a court order is no oversight demand; another patient's investigation is not this one's
    court = order_id(client, north, resource_types=["Patient", "Encounter"], date_from=None,
                     date_to=None)  # fmt: skip
    assert "is not a health-oversight investigation" in refused(
        rt, north, ask(patient, visit, order=court), 403, 0
    )
    elsewhere = order_id(client, north, kind="administrative", patient=north.other_patient_id,
                         resource_types=["Patient"], date_from=None, date_to=None)  # fmt: skip
    assert "names another patient" in refused(rt, north, ask(patient, order=elsewhere), 403, 0)

    # the investigation filed: what it names leaves, cut to the oversight profile
    probe = order_id(client, north, kind="administrative", recipient=agency,
                     resource_types=["Patient", "Encounter"], date_from=None, date_to=None,
                     request_copy="OCR complaint 26-0142: produce the visit records")  # fmt: skip
    assert "does not name" in refused(rt, north, ask(patient, lab, order=probe), 403, 0)
    out = ask(patient, visit, order=probe)
    assert out.status_code == 200, getattr(out, "text", out)
    got = released(out)
    assert set(got) == {patient, visit}
    assert fields_of(got[patient]) <= {"identifier", "birthDate", "gender"}
    assert "reasonCode" not in got[visit]
    (row,) = ledger(rt, north)
    assert (row.basis, row.order_id, row.recipient_ref) == ("health-oversight", probe, agency)
    (entry,) = [e for e in audit_of(rt, out) if e["action"] == "export"]
    assert entry["outcome"] == "success"
    assert set(entry["resource_ids"]) == {patient, visit}

    # in the accounting, unless the agency has it suspended (164.528(a)(2))
    (listed,) = accounting(client, north)["disclosures"]
    assert (listed["id"], listed["basis"], listed["order"]) == (
        row.disclosure_id, "health-oversight", probe,
    )  # fmt: skip
    suspension = client.post("/admin/accounting-suspensions", json={
        "patient": north.patient_id, "kind": "health-oversight", "agency": agency,
        "agency_name": "HHS Office for Civil Rights", "statement_form": "written",
        "statement": "Telling the individual would impede investigation 26-0142.",
        "ends_at": isoformat(clock.now() + timedelta(days=10)),
    }, headers=north.headers("privacy-officer"))  # fmt: skip
    assert suspension.status_code == 201, suspension.text
    assert accounting(client, north)["disclosures"] == []
    clock.advance(timedelta(days=10, seconds=1))
    assert [d["id"] for d in accounting(client, north)["disclosures"]] == [row.disclosure_id]


@pytest.mark.promise("LI-36")
def test_lifeimage_oversight_releases_only_for_the_investigation_on_file(
    profiled: Profiled,
) -> None:
    _oversight_needs_the_investigation(profiled("lifeimage"))


@pytest.mark.promise("AM-14")
def test_allmeds_oversight_releases_only_for_the_investigation_on_file(
    profiled: Profiled,
) -> None:
    _oversight_needs_the_investigation(profiled("allmeds"))
