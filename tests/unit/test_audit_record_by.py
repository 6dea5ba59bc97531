"""`AuditRecord.by`: the entry an audited service writes for what an actor did."""

from __future__ import annotations

from carevault.audit.models import Action, AuditRecord, Outcome, RequestInfo
from carevault.identity.models import system_actor
from carevault.identity.permissions import Purpose


def test_by_takes_who_and_why_from_the_actor() -> None:
    actor = system_actor("tenant-1", "retention job", Purpose.HOPERAT)
    record = AuditRecord.by(actor, "2026-12-02T00:00:00Z", Action.DELETE, resource_type="Patient",
                            resource_ids=("p1",), patient_ids=("p1",),
                            detail="expired")  # fmt: skip
    assert record == AuditRecord(
        recorded_at="2026-12-02T00:00:00Z", actor_id="system:retention job",
        actor_role=actor.kind, action=Action.DELETE, outcome=Outcome.SUCCESS, status=200,
        purpose="HOPERAT", resource_type="Patient", resource_ids=("p1",), patient_ids=("p1",),
        detail="expired",
    )  # fmt: skip
    assert record.on_behalf_of is None


def test_by_keeps_a_refusal_and_where_it_came_from() -> None:
    actor = system_actor("tenant-1", "x", Purpose.HRESCH)
    record = AuditRecord.by(actor, "t", Action.ADMIN, outcome=Outcome.DENIED, status=403,
                            origin=RequestInfo("r1", "10.0.0.1", "ua"))  # fmt: skip
    assert (record.outcome, record.status, record.purpose) == (Outcome.DENIED, 403, "HRESCH")
    assert (record.request_id, record.source_ip, record.user_agent) == ("r1", "10.0.0.1", "ua")
