"""The promise suite: each test drives CareVault under one seed profile and is marked with the
promise ids it proves (`@pytest.mark.promise("LI-07")`); docs/promises.md is kept in step
with these marks by `python -m tests.promises.promise_map --write`.

`profiled` builds a runtime, an app client and the two-tenant clinic under a named profile
(policies/NAME.yaml), on SQLite and PostgreSQL like every integration test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.clock import ManualClock
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from tests.conftest import Clinic, make_site


@dataclass
class Deployment:
    """One deployment following one profile: its runtime, an HTTP client and a clinic."""

    profile: str
    runtime: Runtime
    client: TestClient
    clinic: Clinic
    clock: ManualClock


@pytest.fixture
def profiled(settings: Settings, clock: ManualClock) -> Iterator[Callable[[str], Deployment]]:
    """`profiled("lifeimage")`: a fresh deployment under that profile (one per test)."""
    stack = ExitStack()
    made: list[str] = []

    def make(profile: str) -> Deployment:
        if made:
            raise RuntimeError("one deployment per test: the data folder is the test's")
        made.append(profile)
        ours = settings.model_copy(update={"policy_profile": profile})
        initialize(ours)
        rt = Runtime(ours, clock=clock)
        stack.callback(rt.close)
        client = stack.enter_context(TestClient(create_app(rt), raise_server_exceptions=False))
        clinic = Clinic(make_site(rt, "north"), make_site(rt, "south"))
        return Deployment(profile, rt, client, clinic, clock)

    with stack:
        yield make
