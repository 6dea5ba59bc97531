"""`carevault requests list --tenant S --due-before DATE`, run as a real process."""

from __future__ import annotations

import pytest

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
