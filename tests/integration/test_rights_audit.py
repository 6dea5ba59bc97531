"""Every step of a case is audited in the transaction that takes it, every refusal after
the rollback, in the deciding tenant's chain (or the vendor's), and no entry carries PHI."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carevault.clock import ManualClock
from carevault.errors import CareVaultError
from carevault.runtime import Runtime
from tests.conftest import Clinic
from tests.rights_helpers import ACCESS, WHO, actor, rights_audit, vendor_audit, wire


def test_each_step_and_each_refusal_is_audited(
    runtime: Runtime, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    service = wire(runtime)
    patient = actor(runtime, north, "patient")
    officer = actor(runtime, north, "privacy-officer")
    stranger = actor(runtime, clinic.south, "patient")
    view, _ = service.receive(patient, ACCESS, WHO)
    rid = view.request_id
    service.get(patient, rid, WHO)
    service.queue(officer, None, WHO)
    clock.advance(timedelta(days=3))
    service.extend(officer, rid, "Waiting for imaging from the archive.", WHO)
    service.decide(officer, rid, {"decision": "accept"}, WHO)
    service.fulfil(officer, rid, {}, WHO)
    service.copy(patient, rid, "pdf", WHO)
    for attempt in (
        lambda: service.get(stranger, rid, WHO),
        lambda: service.extend(patient, rid, "I would like more time too.", WHO),
        lambda: service.decide(officer, rid, {"decision": "accept"}, WHO),
        lambda: service.fulfil(officer, rid, {}, WHO),
        lambda: service.copy(patient, rid, "bundle-zip", WHO),
        lambda: service.receive(patient, {"action": "access"}, WHO),
    ):
        with pytest.raises(CareVaultError):
            attempt()
    entries = rights_audit(runtime, north.tenant_id)
    steps = [(e.action, e.outcome, (e.detail or "").split(":")[0].split(",")[0]) for e in entries]
    assert steps[:7] == [
        ("create", "success", "rights request received"),
        ("read", "success", "rights request read"),
        ("search", "success", "rights queue"),
        ("admin", "success", "rights request extended by 30 days"),
        ("admin", "success", "rights request accepted"),
        ("admin", "success", "rights request fulfilled"),
        ("read", "success", "rights copy downloaded"),
    ]
    refusals = [(e.outcome, e.status) for e in entries[7:]]
    assert refusals == [
        ("denied", 403),
        ("invalid", 409),
        ("invalid", 409),
        ("not-found", 404),
        ("invalid", 400),
    ]
    assert all(rid in e.resource_ids for e in entries[:11])
    # the stranger's refusal is in their own tenant's chain: nothing of north's leaks there
    (theirs,) = rights_audit(runtime, clinic.south.tenant_id)
    assert (theirs.outcome, theirs.status, theirs.patient_ids) == ("not-found", 404, "[]")
    assert all(north.patient_id in e.patient_ids for e in entries[:6])
    # no PHI in any entry: ids, codes and dates only
    for e in entries:
        text = f"{e.detail} {e.resource_ids}"
        assert "Quintero" not in text
        assert "alicia" not in text.lower()
        assert "archive" not in text
    assert runtime.audit_verification(north.tenant_id).ok
    assert vendor_audit(runtime) == []
