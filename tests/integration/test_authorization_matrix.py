"""The authorization matrix: every route of the app x every role x three data targets, zero
leaks and never a 5xx.

Routes come from `create_app(runtime).routes` (tests/matrix_targets.py turns each into
requests, with path parameters filled from real ids; an unknown parameter name fails the
run). Roles: the seven of the catalog, no token, and a garbage token. Targets: the north
tenant's first patient ("own": the patient and representative users are linked to her), the
south tenant's patient ("other-tenant"), and north's second patient ("other-patient").

A role may never see: the south tenant's markers (anyone in north); the second patient's
(patient, representative); any patient's (practice-admin, privacy-officer, vendor-operator,
no token, garbage token). Answers are read whole (headers, JSON, NDJSON, CSV, HTML, a PDF's
text). A change a request makes to the tracked records is put back after it (and reported
if the role had no business making it), so every cell sees the same data.

The world is built once per backend per module (a few seconds); each (role, target) cell is
one test that sends every route's requests and lists every failure by route.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.clock import ManualClock
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from tests import matrix_calls as mc
from tests import matrix_targets as mt
from tests.conftest import START

MAY_CHANGE_RECORDS = frozenset({"practitioner", "staff", "practice-admin"})
"""Roles whose writes to their own tenant's records are legitimate (the admin: directory)."""
NOT_PHI = frozenset({"Practitioner"})


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_template: str | None,
) -> Iterator[mt.World]:
    home = tmp_path_factory.mktemp(f"matrix-{request.param}") / "data"
    url = None
    if request.param == "postgres":
        if pg_template is None:
            pytest.skip("PostgreSQL not started (scripts/test starts it)")
        url = mt.fresh_database(pg_template)
    settings = Settings(home=home, database_url=url)
    initialize(settings)
    rt = Runtime(settings, clock=ManualClock(START))
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            north = mt.build_site(rt, client, "north", south=False)
            south = mt.build_site(rt, client, "south", south=True)
            yield mt.World(rt, client, north, south)
    finally:
        rt.close()
        if url is not None:
            mt.drop_database(url)


@pytest.fixture(scope="module")
def routes(world: mt.World) -> list[mc.RouteKey]:
    return mc.app_routes(world.client.app)


def test_every_route_yields_requests_for_every_target(
    world: mt.World, routes: list[mc.RouteKey]
) -> None:
    """A route whose path parameters have no generator fails here, naming the parameter."""
    assert len(routes) >= 20, [str(r) for r in routes]
    problems = []
    for route in routes:
        for name in mt.TARGETS:
            try:
                calls = mc.calls_for(route, world.target(name))
            except mc.UnknownParameter as exc:
                problems.append(str(exc))
                continue
            if not calls:
                problems.append(f"{route}: no request for target {name}")
    assert problems == [], "\n".join(problems)


def test_the_markers_are_there_for_those_who_may_see_them(world: mt.World) -> None:
    """Positive control (runs before the matrix): the world holds each marker, and the scan
    sees it where the role may see it."""
    client, north = world.client, world.north
    cases = [
        ("practitioner", f"/fhir/Patient/{north.alice.patient_id}", mt.ALICE),
        ("practitioner", f"/fhir/Observation/{north.bob.resources['Observation']}", mt.BOB),
        ("patient", f"/fhir/Condition/{north.alice.resources['Condition']}", mt.ALICE),
        ("representative", f"/fhir/Patient/{north.alice.patient_id}", mt.ALICE),
        ("staff", f"/fhir/Group/{north.group_id}", mt.BOB),
    ]
    if not north.representative_linked:  # the relationships service is not there (yet)
        cases = [c for c in cases if c[0] != "representative"]
    for role, url, marker in cases:
        response = client.get(url, headers=world.headers(role))
        assert response.status_code == 200, (role, url, response.text)
        assert marker in mc.answer_text(response), (role, url)
    south = world.south
    theirs = {"Authorization": f"Bearer {south.tokens['practitioner']}"}
    own = client.get(f"/fhir/Patient/{south.alice.patient_id}", headers=theirs)
    assert mt.SOUTH in mc.answer_text(own)


@pytest.mark.parametrize("target", mt.TARGETS)
@pytest.mark.parametrize("role", mt.ROLES)
def test_no_leak_and_no_server_error(
    world: mt.World, routes: list[mc.RouteKey], role: str, target: str
) -> None:
    aim = world.target(target)
    failures: list[str] = []
    answered = 0
    for route in routes:
        try:
            calls = mc.calls_for(route, aim)
        except mc.UnknownParameter as exc:
            failures.append(str(exc))
            continue
        for call in calls:
            response = mc.send(world.client, call, world.headers(role))
            answered += 1
            where = f"{call} [role {role}, target {target}] -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{where}: server error {response.text[:200]}")
            found = mc.leaks(role, response)
            if found:
                failures.append(f"{where}: LEAKED {found}")
            if call.mutating and response.status_code < 400:
                failures += _put_back(world, role, where)
    assert answered > 0
    assert failures == [], f"{len(failures)} failures:\n" + "\n".join(failures[:60])


def _put_back(world: mt.World, role: str, where: str) -> list[str]:
    """Undo a successful change; a change the role had no business making is a failure."""
    failures = []
    for site in (world.north, world.south):
        changed = mt.restore(world.runtime, site)
        for name in changed:
            rtype = name.split("/")[0]
            allowed = site is world.north and role in MAY_CHANGE_RECORDS
            if role == "practice-admin":
                allowed = allowed and rtype in NOT_PHI
            if not allowed:
                failures.append(f"{where}: CHANGED {site.slug} {name}")
        mt.heal_tokens(world.runtime, site)
        if "/representations" in where:  # a revoked relationship is recorded anew
            mt.relink_representative(world.runtime, site)
    return failures


def test_a_pdf_answer_is_read_as_text(tmp_path: Path) -> None:
    """The scan reads a PDF's text, compressed streams and all (fpdf2 compresses them)."""
    from fpdf import FPDF
    from httpx import Response

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=f"Report for {mt.BOB.capitalize()}family")
    content = bytes(pdf.output())
    assert mt.BOB.encode() not in content.lower()  # the page stream is compressed
    response = Response(200, content=content, headers={"content-type": "application/pdf"})
    assert mc.leaks("patient", response) == [mt.BOB]
