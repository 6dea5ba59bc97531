"""Audit entries map to valid R4 AuditEvents with the BALP codes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from carevault.audit.audit_event import for_patient, parse_search, to_audit_event
from carevault.audit.models import Action, Outcome
from carevault.errors import Invalid


def _row(**over: Any) -> dict[str, Any]:
    row = {
        "tenant_id": "t1", "seq": 7, "recorded_at": "2026-11-23T09:00:00.000000Z",
        "request_id": "r1", "actor_id": "u1", "actor_role": "practitioner",
        "on_behalf_of": None, "action": "read", "outcome": "success", "status": 200,
        "purpose": "TREAT", "resource_type": "Observation",
        "resource_ids": orjson.dumps(["o1"]).decode(),
        "patient_ids": orjson.dumps(["p1", "p2"]).decode(), "source_ip": "10.0.0.1",
        "user_agent": "x", "detail": None, "prev_hash": "0" * 64, "entry_hash": "1" * 64,
    }  # fmt: skip
    row.update(over)
    return row


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_entry_is_a_valid_audit_event(action: Action, outcome: Outcome) -> None:
    event = to_audit_event(_row(action=action.value, outcome=outcome.value, on_behalf_of="u9"))
    AuditEvent.model_validate(event)
    assert event["action"] in "CRUDE"
    assert event["outcome"] == ("0" if outcome is Outcome.SUCCESS else "8" if
                                outcome is Outcome.FAILED else "4")  # fmt: skip


def test_balp_read() -> None:
    event = to_audit_event(_row())
    assert event["type"]["code"] == "rest"
    assert event["subtype"][0] == {"system": "http://hl7.org/fhir/restful-interaction",
                                   "code": "read", "display": "read"}  # fmt: skip
    assert event["action"] == "R"
    agent = event["agent"][0]
    assert agent["requestor"] is True
    assert agent["network"] == {"address": "10.0.0.1", "type": "2"}
    assert agent["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    patients = [e for e in event["entity"] if e["type"]["code"] == "1"]
    assert [e["what"]["reference"] for e in patients] == ["Patient/p1", "Patient/p2"]
    assert all(e["role"]["code"] == "1" for e in patients)
    data = [e for e in event["entity"] if e["type"]["code"] == "2"]
    assert data[0]["what"]["reference"] == "Observation/o1"
    assert to_audit_event(_row(action="search"))["action"] == "E"
    assert to_audit_event(_row(action="search"))["subtype"][0]["code"] == "search-type"


def test_patient_view_hides_other_patients_and_addresses() -> None:
    event = for_patient(_row(), frozenset({"p1"}))
    AuditEvent.model_validate(event)
    text = orjson.dumps(event).decode()
    assert "p2" not in text
    assert "10.0.0.1" not in text
    assert "Observation/o1" not in text


def test_search_parameters() -> None:
    flt = parse_search([("patient", "Patient/p1"), ("action", "R"), ("outcome", "0"),
                        ("date", "ge2026-01-01"), ("date", "lt2026-02-01")])  # fmt: skip
    assert flt.patient_id == "p1"
    assert Action.READ in flt.actions
    assert Action.CREATE not in flt.actions
    assert flt.outcomes == (Outcome.SUCCESS,)
    assert flt.since == "2026-01-01T00:00:00.000000Z"
    assert flt.until == "2026-02-01T00:00:00.000000Z"
    for bad in (("action", "X"), ("outcome", "3"), ("date", "ge-soon"), ("colour", "red"),
                ("patient", "a b")):  # fmt: skip
        with pytest.raises(Invalid):
            parse_search([bad])
