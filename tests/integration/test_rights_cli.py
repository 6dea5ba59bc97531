"""`carevault requests list|directions|direction`, run as a real process."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.cli_process import run_cli
from tests.conftest import Clinic
from tests.rights_helpers import ACCESS, WHO, actor, rights_audit, wire


def test_requests_list_shows_the_queue_by_due_date(
    runtime: Runtime, clinic: Clinic, settings: Settings, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("one process test is enough")
    service = wire(runtime)
    view, _ = service.receive(actor(runtime, clinic.north, "patient"), ACCESS, WHO)
    due = view.due_at[:10]
    listed = run_cli(settings, "requests", "list", "--tenant", "north", "--due-before", due)
    assert listed.returncode == 0, listed.stderr
    assert view.request_id in listed.stdout
    assert "hipaa-access" in listed.stdout
    assert f"due {due}" in listed.stdout
    earlier = run_cli(
        settings, "requests", "list", "--tenant", "north", "--due-before", "2026-12-01"
    )
    assert earlier.returncode == 0
    assert view.request_id not in earlier.stdout
    assert "no open requests" in earlier.stdout
    bad = run_cli(settings, "requests", "list", "--tenant", "north", "--due-before", "soon")
    assert bad.returncode != 0
    assert "due_before" in bad.stderr
    assert "Traceback" not in bad.stderr
    details = [e.detail for e in rights_audit(runtime, clinic.north.tenant_id)]
    assert "requests list (command line); rights queue" in details


def test_requests_directions_lists_and_reports_the_deletion_directions(
    runtime: Runtime, clinic: Clinic, settings: Settings, backend: str
) -> None:
    """The adapter's side of a deletion: what to send to each service provider, and the
    report that it was sent; a bad report is refused, with no traceback, and audited."""
    if backend != "sqlite":
        pytest.skip("one process test is enough")
    service = wire(runtime)
    holder = actor(runtime, clinic.north, "staff")
    vendor = actor(runtime, clinic.north, "vendor-operator")
    view, _ = service.receive(holder, {"action": "delete", "categories": ["account"]}, WHO)
    service.decide(vendor, view.request_id, {"decision": "accept"}, WHO)
    done = service.fulfil(vendor, view.request_id, {}, WHO)
    assert done.fulfilment is not None
    deletion: dict[str, Any] = done.fulfilment["deletion"]  # type: ignore[assignment]
    [direction] = deletion["directed"]
    assert direction["categories"] == ["account"]
    listed = run_cli(settings, "requests", "directions")
    assert listed.returncode == 0, listed.stderr
    assert direction["direction_id"] in listed.stdout
    assert direction["recipient"] in listed.stdout
    assert view.request_id in listed.stdout
    bad = run_cli(settings, "requests", "direction", direction["direction_id"], "lost")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr
    sent = run_cli(settings, "requests", "direction", direction["direction_id"], "sent")
    assert sent.returncode == 0, sent.stderr
    after = run_cli(settings, "requests", "directions")
    assert "no deletion directions to send" in after.stdout
    with runtime.reader.connect() as conn:
        details = [
            str(d)
            for d in conn.execute(
                select(audit_entries.c.detail).where(
                    audit_entries.c.tenant_id == VENDOR_CHAIN,
                    audit_entries.c.resource_type == "DeletionDirection",
                )
            ).scalars()
        ]
    assert any("deletion direction sent" in d for d in details)
    assert any("deletion direction report refused" in d for d in details)
