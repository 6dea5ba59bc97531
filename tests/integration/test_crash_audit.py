"""kill -9 under load: every request that got an answer has its audit entry.

The real server (`carevault serve`) runs as a process; eight threads fire creates, reads,
searches, updates and refusals at it; the server is killed with SIGKILL while requests are
in flight; then the database, read directly, must hold an audit entry for the X-Request-ID of
every response that arrived (no response leaves before its entry is durable), and
`carevault audit verify` must pass (the chains survive the crash). The cycle repeats on the
same data folder.

After each restart also: every acknowledged write (a 200/201 to a create or update) is
stored at its acknowledged version, and no stored version lacks the audit entry of the write
that made it (read straight from resource_versions and audit_entries).

Iterations: CAREVAULT_CRASH_ITERATIONS, else 2; the `slow` case runs 50 under `-m slow`.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.integration.test_cli import Cli, carevault_executable

PG_URL = os.environ.get("CAREVAULT_TEST_PG_URL")
ITERATIONS = int(os.environ.get("CAREVAULT_CRASH_ITERATIONS", "2"))
SLOW_ITERATIONS = 50
THREADS = 8
RESPONSES_BEFORE_KILL = 160
"""The kill comes once this many answers arrived; the threads are still sending then."""
STARTUP_SECONDS = 60.0
WRITES = frozenset({"create", "update", "observe"})


@dataclass
class Answered:
    request_id: str
    status: int
    kind: str


@dataclass
class Load:
    """What the client threads saw: every answer, and errors before and after the kill."""

    base: str
    token: str
    tenant_id: str
    answered: list[Answered] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    acknowledged: list[tuple[str, str, int]] = field(default_factory=list)
    """(type, id, version) of every create and update answered 200/201."""
    early_errors: list[str] = field(default_factory=list)
    enough: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: httpx.Response, kind: str) -> None:
        request_id = response.headers.get("x-request-id")
        if kind in WRITES and response.status_code in (200, 201):
            body = response.json()
            ack = (body["resourceType"], body["id"], int(body["meta"]["versionId"]))
            with self.lock:
                self.acknowledged.append(ack)
        with self.lock:
            if request_id is None:
                self.early_errors.append(f"{kind}: {response.status_code} without X-Request-ID")
                return
            self.answered.append(Answered(request_id, response.status_code, kind))
            if len(self.answered) >= RESPONSES_BEFORE_KILL:
                self.enough.set()


# -- the requests ------------------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "User-Agent": "crash-test"}


def _patient_body(n: int) -> dict[str, object]:
    return {"resourceType": "Patient", "gender": "unknown", "name": [{"family": f"Crash{n}"}]}


def _some_patient(load: Load, n: int) -> str | None:
    with load.lock:
        return load.patients[n % len(load.patients)] if load.patients else None


def op_create(load: Load, client: httpx.Client, n: int) -> tuple[httpx.Response, str]:
    response = client.post("/fhir/Patient", json=_patient_body(n), headers=_auth(load.token))
    if response.status_code == 201:
        with load.lock:
            load.patients.append(response.json()["id"])
    return response, "create"


def op_read(load: Load, client: httpx.Client, n: int) -> tuple[httpx.Response, str]:
    rid = _some_patient(load, n)
    if rid is None:
        return op_create(load, client, n)
    return client.get(f"/fhir/Patient/{rid}", headers=_auth(load.token)), "read"


def op_update(load: Load, client: httpx.Client, n: int) -> tuple[httpx.Response, str]:
    rid = _some_patient(load, n)
    if rid is None:
        return op_create(load, client, n)
    body = {**_patient_body(n), "id": rid}
    return client.put(f"/fhir/Patient/{rid}", json=body, headers=_auth(load.token)), "update"


def op_observe(load: Load, client: httpx.Client, n: int) -> tuple[httpx.Response, str]:
    rid = _some_patient(load, n)
    if rid is None:
        return op_create(load, client, n)
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{rid}"},
        "valueQuantity": {"value": 60 + n % 40, "unit": "/min"},
    }
    return client.post("/fhir/Observation", json=body, headers=_auth(load.token)), "observe"


def op_search(load: Load, client: httpx.Client, n: int) -> tuple[httpx.Response, str]:
    params = {"_count": "5", "gender": "unknown"}
    return client.get("/fhir/Patient", params=params, headers=_auth(load.token)), "search"


def op_missing(load: Load, client: httpx.Client, n: int) -> tuple[httpx.Response, str]:
    return client.get(f"/fhir/Patient/{uuid.uuid4()}", headers=_auth(load.token)), "not-found"


def op_bad_token(load: Load, client: httpx.Client, n: int) -> tuple[httpx.Response, str]:
    forged = f"cv1.{load.tenant_id}.{uuid.uuid4().hex}"  # refused in the tenant's chain
    return client.get("/fhir/Patient", headers=_auth(forged)), "bad-token"


def op_no_token(load: Load, client: httpx.Client, n: int) -> tuple[httpx.Response, str]:
    return client.get("/fhir/Patient", headers={"User-Agent": "crash-test"}), "no-token"


Op = Callable[[Load, httpx.Client, int], tuple[httpx.Response, str]]
OPS: tuple[Op, ...] = (op_create, op_read, op_search, op_observe, op_create, op_read,
                       op_update, op_missing, op_bad_token, op_no_token)  # fmt: skip
EXPECTED_STATUS = {"create": 201, "read": 200, "search": 200, "observe": 201, "update": 200,
                   "not-found": 404, "bad-token": 401, "no-token": 401}  # fmt: skip


def worker(load: Load, offset: int) -> None:
    counter = itertools.count(offset * 7919)
    with httpx.Client(base_url=load.base, timeout=60.0) as client:
        while not load.killed.is_set():
            n = next(counter)
            try:
                response, kind = OPS[n % len(OPS)](load, client, n)
            except httpx.TransportError as exc:
                if not load.killed.is_set():
                    load.early_errors.append(f"{type(exc).__name__} before the kill")
                return
            load.record(response, kind)


# -- the server and its database ---------------------------------------------------------------


@dataclass
class Deployment:
    cli: Cli
    env: dict[str, str]
    database_url: str | None

    def audited(self) -> dict[str, int | None]:
        """request_id -> status of every audit entry, read straight from the database."""
        query = "SELECT request_id, status FROM audit_entries WHERE request_id IS NOT NULL"
        if self.database_url is None:
            uri = f"file:{self.cli.home / 'carevault.db'}?mode=ro"
            conn = sqlite3.connect(uri, uri=True)
            try:
                return dict(conn.execute(query).fetchall())
            finally:
                conn.close()
        with psycopg.connect(_libpq(self.database_url)) as pg:
            return dict(pg.execute(query).fetchall())

    def rows(self, query: str) -> list[tuple[object, ...]]:
        if self.database_url is None:
            uri = f"file:{self.cli.home / 'carevault.db'}?mode=ro"
            conn = sqlite3.connect(uri, uri=True)
            try:
                return list(conn.execute(query).fetchall())
            finally:
                conn.close()
        with psycopg.connect(_libpq(self.database_url)) as pg:
            return list(pg.execute(query).fetchall())

    def versions(self) -> set[tuple[str, str, int]]:
        """Every stored version (type, id, version), straight from resource_versions."""
        query = "SELECT resource_type, resource_id, version_id FROM resource_versions"
        return {(str(t), str(i), int(str(v))) for t, i, v in self.rows(query)}

    def audited_writes(self) -> Counter[tuple[str, str]]:
        """(type, id) -> how many successful create/update/delete entries name it."""
        query = ("SELECT resource_type, resource_ids FROM audit_entries WHERE outcome = "
                 "'success' AND action IN ('create', 'update', 'delete', 'import')")  # fmt: skip
        found: Counter[tuple[str, str]] = Counter()
        for rtype, ids in self.rows(query):
            for rid in json.loads(str(ids)):
                found[str(rtype), rid] += 1
        return found


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited with {server.returncode}"
        try:
            if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # waiting on another process to start listening, not on our clock
    pytest.fail(f"the server did not answer /health within {STARTUP_SECONDS} s")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    env: dict[str, str] = {}
    database_url = None
    name = f"cv_crash_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        if PG_URL is None:
            pytest.skip("PostgreSQL not started (set CAREVAULT_TEST_PG_URL)")
        admin = _libpq(PG_URL).rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        database_url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
        env["CAREVAULT_DATABASE_URL"] = database_url
    cli = Cli(tmp_path / "data")
    yield Deployment(cli, env, database_url)
    if database_url is not None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def provision(dep: Deployment) -> str:
    """init, a tenant, a practitioner and their token, all through the command."""
    cli, env = dep.cli, dep.env
    cli.ok("init", env=env)
    cli.ok("tenant", "create", "--slug", "crashclinic", "--name", "Crash Clinic", env=env)
    cli.ok("user", "create", "--tenant", "crashclinic", "--email", "doc@crash.example.org",
           "--role", "practitioner", env=env)  # fmt: skip
    token = cli.ok("token", "create", "--tenant", "crashclinic", "--user",
                   "doc@crash.example.org", env=env).out.strip()  # fmt: skip
    assert token.startswith("cv1.")
    return token


def start_server(dep: Deployment, port: int, log: Path) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAREVAULT_")}
    environ |= {"CAREVAULT_HOME": str(dep.cli.home), "CAREVAULT_WARM_STRICT_VALIDATION": "false"}
    environ |= dep.env
    with log.open("ab") as out:
        return subprocess.Popen(
            [carevault_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def crash_cycle(dep: Deployment, token: str, cycle: int) -> Load:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(dep, port, dep.cli.home.parent / f"server-{cycle}.log")
    try:
        wait_until_healthy(base, server)
        load = Load(base, token, token.split(".")[1])
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [pool.submit(worker, load, i) for i in range(THREADS)]
            finished_early = not load.enough.wait(timeout=300)
            load.killed.set()
            os.kill(server.pid, signal.SIGKILL)  # while the threads are still sending
            for future in futures:
                future.result()
        assert not finished_early, "the server answered too slowly to reach the kill"
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)
    assert server.returncode == -signal.SIGKILL
    return load


def check_every_answer_is_audited(dep: Deployment, load: Load) -> None:
    assert load.early_errors == []
    assert len(load.answered) >= RESPONSES_BEFORE_KILL
    kinds = {a.kind for a in load.answered}
    assert set(EXPECTED_STATUS) <= kinds, f"every kind of request was answered: {kinds}"
    for answer in load.answered:
        assert answer.status == EXPECTED_STATUS[answer.kind], answer
    audited = dep.audited()
    missing = [a for a in load.answered if a.request_id not in audited]
    assert missing == [], f"{len(missing)} of {len(load.answered)} answers have no audit entry"
    wrong = [a for a in load.answered if audited[a.request_id] != a.status]
    assert wrong == [], "each entry records the status that was answered"


def check_every_acknowledged_write_is_there(dep: Deployment, load: Load) -> None:
    """After the kill: each write answered 200/201 is stored at its acknowledged version,
    and no stored version lacks the audit entry of the write that made it."""
    assert load.acknowledged, "the load made acknowledged writes"
    stored = dep.versions()
    lost = [ack for ack in load.acknowledged if ack not in stored]
    assert lost == [], f"{len(lost)} acknowledged writes are not in the database: {lost[:5]}"
    audited = dep.audited_writes()
    newest: dict[tuple[str, str], int] = {}
    for rtype, rid, version in stored:
        newest[rtype, rid] = max(version, newest.get((rtype, rid), 0))
    unaudited = [(k, v, audited[k]) for k, v in newest.items() if audited[k] < v]
    assert unaudited == [], f"versions without their audit entry: {unaudited[:5]}"


def run_cycles(dep: Deployment, iterations: int) -> None:
    token = provision(dep)
    total = 0
    for cycle in range(iterations):
        load = crash_cycle(dep, token, cycle)
        check_every_answer_is_audited(dep, load)
        check_every_acknowledged_write_is_there(dep, load)
        total += len(load.answered)
        verified = dep.cli("audit", "verify", env=dep.env)
        assert verified.code == 0, verified
        assert "BROKEN" not in verified.text
    assert total >= iterations * RESPONSES_BEFORE_KILL


def _selects_slow(config: pytest.Config) -> bool:
    expression = str(config.getoption("markexpr", "") or "")
    return "slow" in expression and "not slow" not in expression


@pytest.mark.parametrize(
    "iterations",
    [
        pytest.param(ITERATIONS, id="quick"),
        pytest.param(SLOW_ITERATIONS, id="long", marks=pytest.mark.slow),
    ],
)
def test_kill_9_leaves_an_audit_entry_for_every_answer(
    request: pytest.FixtureRequest, deployment: Deployment, iterations: int
) -> None:
    if iterations == SLOW_ITERATIONS and not _selects_slow(request.config):
        pytest.skip(f"{SLOW_ITERATIONS} crash cycles run under -m slow")
    run_cycles(deployment, iterations)
