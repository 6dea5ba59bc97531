"""lifeIMAGE's promises on legally compelled releases (seed 003 sections 2, 4 and 7,
policies/lifeimage.yaml): only the minimum the law compels leaves, the member is told in
advance unless the order forbids it (then as soon as it may), and told afterwards of the order
and what left."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from tests.access_helpers import fresh_token
from tests.audit_rows import audit_of
from tests.disclosure_helpers import (
    disclose,
    ledger,
    observation,
    organization,
    outbox,
    refused,
    released,
)
from tests.promises.conftest import Deployment
from tests.promises.disclosure_steps_li import (
    accounting,
    condition,
    encounter,
    fields_of,
    held,
    order_id,
)

Profiled = Callable[[str], Deployment]


@pytest.mark.promise("LI-08", "LI-14")
def test_a_subpoena_and_law_enforcement_get_only_their_minimum(profiled: Profiled) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    firm = organization(rt, north, "bus", name="Counsel LLP")
    police = organization(rt, north, "govt", name="City Police")
    patient = f"Patient/{north.patient_id}"
    visit, injury = encounter(rt, north), condition(rt, north)
    blood = observation(rt, north, code="882-1", display="ABO and Rh group")
    dna = observation(rt, north, code="21566-5", display="DNA analysis")

    # a subpoena: what it names, cut to the legal-request profile (no telecom, no notes)
    sub = order_id(client, north, kind="subpoena", assurances=["qualified-protective-order"],
                   resource_types=["Patient", "Encounter", "Condition"], date_from=None,
                   date_to=None)  # fmt: skip
    out = disclose(client, north, "subpoena", firm, order=sub, info=(patient, visit, injury))
    assert out.status_code == 200, out.text
    got = released(out)
    assert fields_of(got[patient]) == {"identifier", "name", "birthDate", "gender", "address"}
    assert "hospitalization" not in got[visit]
    assert fields_of(got[visit]) <= {"status", "class", "type", "period", "subject", "reasonCode"}
    assert "note" not in got[injury]
    assert got[injury]["onsetDateTime"] == "2024-06-01"
    assert "patient anxious" not in out.text
    assert "does not name" in refused(
        rt, north, disclose(client, north, "subpoena", firm, order=sub, info=(blood,)), 403, 1
    )

    # law enforcement: the 164.512(f)(2) identify-and-locate list, never DNA
    assert "DNA" in refused(rt, north, disclose(client, north, "law-enforcement", police,
                                                info=(patient, dna)), 403, 1)  # fmt: skip
    located = disclose(client, north, "law-enforcement", police,
                       info=(patient, visit, injury, blood))  # fmt: skip
    assert located.status_code == 200, located.text
    kept = released(located)
    assert set(kept) == {patient, visit}  # conditions and observations withheld by the profile
    assert fields_of(kept[patient]) == {"name", "address", "birthDate", "identifier"}
    assert fields_of(kept[visit]) == {"period", "reasonCode", "subject"}
    issues = located.json()["entry"][-1]["resource"]["issue"]
    assert any(blood in i["diagnostics"] and "minimum necessary" in i["diagnostics"]
               for i in issues)  # fmt: skip
    (entry,) = [e for e in audit_of(rt, located) if e["action"] == "export"]
    assert set(entry["resource_ids"]) == {patient, visit}
    assert sorted(r.basis for r in ledger(rt, north)) == ["law-enforcement", "subpoena"]


@pytest.mark.promise("LI-15", "LI-35")
def test_the_member_is_told_before_a_compelled_release_unless_the_order_forbids_it(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    rt, client, north, clock = dep.runtime, dep.client, dep.clinic.north, dep.clock
    court = organization(rt, north, "govt", name="District Court")
    police = organization(rt, north, "govt", name="City Police")
    named = observation(rt, north, when="2024-06-01")
    patient = f"Patient/{north.patient_id}"

    # no gag: the notice is queued with the release, before it (same commit, same instant)
    out = disclose(client, north, "required-by-law", court, info=(named,),
                   order=order_id(client, north))  # fmt: skip
    assert out.status_code == 200, out.text
    (row,) = ledger(rt, north)
    (notice,) = outbox(rt, north, "disclosure-upcoming")
    assert notice.created_at <= row.disclosed_at
    (entry,) = [e for e in audit_of(rt, out) if e["action"] == "export"]
    assert "notice=queued" in entry["detail"]
    # a law-enforcement request is told in advance too
    assert disclose(client, north, "law-enforcement", police, info=(patient,)).status_code == 200
    assert len(outbox(rt, north, "disclosure-upcoming")) == 2

    # a gag to a date: nothing is sent; the notice is held and goes once the date has passed
    gagged = order_id(client, north, kind="warrant", gag="until-date", gag_until="2026-12-10")
    sent_before = len(outbox(rt, north, "disclosure-made"))
    out = disclose(client, north, "required-by-law", police, info=(named,), order=gagged)
    assert out.status_code == 200, out.text
    assert len(outbox(rt, north, "disclosure-upcoming")) == 2
    assert len(outbox(rt, north, "disclosure-made")) == sent_before
    (hold,) = held(rt, north)
    assert hold.released_at is None
    clock.advance(timedelta(days=17))  # 2026-12-10: the gag lasts through that day
    assert rt.disclosures.release_due_notices().notices == 0
    assert len(outbox(rt, north, "disclosure-made")) == sent_before
    clock.advance(timedelta(days=1))
    assert rt.disclosures.release_due_notices().notices == 1
    assert len(outbox(rt, north, "disclosure-made")) == sent_before + 1
    assert held(rt, north)[0].released_at is not None

    # a gag until lifted: held until the officer lifts it
    until_lifted = order_id(client, north, gag="until-lifted")
    assert disclose(client, north, "required-by-law", court, info=(named,),
                    order=until_lifted).status_code == 200  # fmt: skip
    clock.advance(timedelta(days=30))
    assert rt.disclosures.release_due_notices().notices == 0
    assert len(outbox(rt, north, "disclosure-made")) == sent_before + 1
    headers = {"Authorization": f"Bearer {fresh_token(rt, north, 'privacy-officer')}"}
    lifted = client.post(f"/admin/legal-orders/{until_lifted}/lift-gag", headers=headers)
    assert lifted.status_code == 200, lifted.text
    assert len(outbox(rt, north, "disclosure-made")) == sent_before + 2
    assert all(h.released_at is not None for h in held(rt, north))


@pytest.mark.promise("LI-34")
def test_after_a_court_ordered_release_the_member_is_told_of_the_order_and_what_left(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    court = organization(rt, north, "govt", name="District Court")
    named = observation(rt, north, when="2024-06-01")
    order = order_id(client, north)
    out = disclose(client, north, "required-by-law", court, info=(named,), order=order)
    assert out.status_code == 200, out.text
    (before,) = outbox(rt, north, "disclosure-upcoming")
    (after,) = outbox(rt, north, "disclosure-made")  # the report, queued behind the notice
    assert before.created_at <= after.created_at
    assert before.recipient == after.recipient
    # the message carries no PHI; it sends the member to the accounting, which names both
    (listed,) = accounting(client, north)["disclosures"]
    (row,) = ledger(rt, north)
    assert listed["id"] == row.disclosure_id
    assert (listed["basis"], listed["order"]) == ("required-by-law", order)
    assert named in listed["description"]
    assert listed["recipient"]["reference"] == court
