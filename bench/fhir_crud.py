"""FHIR CRUD throughput over real HTTP, gate on vs gate off, on SQLite and PostgreSQL.

    python bench/fhir_crud.py [--backend sqlite|postgres|both] [--duration 10]
                              [--connections 16] [--rounds 3] [--profile]

One go: a temporary data folder, `carevault init`, the demo data (or a bench seed over HTTP
when the demo seeder is not there), a practitioner token, then for each round the server is
started pinned to one core (`taskset -c 1`) — once as `carevault serve` (gate on) and once as
bench/gate_bypass.py (gate off) — and driven by wrk pinned to the other core. Each workload
runs --duration seconds per round; the table shows medians over rounds. Raw figures go to
bench/results/ (git-ignored). See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
PG_DIR = Path("/tmp/pg-bench")  # noqa: S108 (a fixed private cluster, as scripts/pg.sh wants)
PG_PORT = 55503
SERVER_CORE, LOAD_CORE = "1", "0"
GOALS = {"read": 800.0, "create": 300.0, "search-obs": 200.0, "search-name": 200.0}
RATIO_GOAL = 0.7
PEERS = {"HAPI FHIR": 380.0, "Medplum": 90.0}  # CRUD requests/s per vCPU (published, 2026)
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORKLOADS = ("read", "search-obs", "search-name", "create")


# -- data the workloads draw from ------------------------------------------------


@dataclass
class Dataset:
    tenant_slug: str
    token: str
    patient_ids: list[str]
    observation_ids: list[str]
    family_prefixes: list[str]
    seeded_by: str


@dataclass
class Run:
    backend: str
    mode: str  # "on" (the gate) or "off" (the bench bypass)
    workload: str
    round: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    server_cpu_s: float
    db_cpu_s: float
    server_cpu_us_per_req: float
    core_cpu_us_per_req: float
    """Server plus database (PostgreSQL's processes) CPU per request: all of core 1's work."""
    core_busy: float
    """That CPU over the wall time: under 1.0 means the core was shared or the server waited."""
    server_sys_share: float
    """The kernel's share of the server's CPU (syscalls, fsync, thread switches)."""
    profiled: bool = False


@dataclass
class Summary:
    backend: str
    workload: str
    on: dict[str, float] = field(default_factory=dict)
    off: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.on["rps"] / self.off["rps"] if self.off.get("rps") else float("nan")


# -- processes ---------------------------------------------------------------------


def sh(cmd: list[str], env: dict[str, str], **kw: Any) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, **kw)
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd[:3])}...\n{done.stderr}")
    return str(done.stdout)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (Debian package)...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    return shutil.which("wrk") or sys.exit("wrk is not installed and could not be installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def carevault_exe() -> str:
    return str(Path(sys.executable).parent / "carevault")


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def children_of(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
    return kids


class Server:
    """The FHIR server under test, pinned to SERVER_CORE; gate on or off."""

    def __init__(self, mode: str, env: dict[str, str], log: Path) -> None:
        self.mode, self.port = mode, free_port()
        if mode == "on":
            cmd = [carevault_exe(), "serve", "--port", str(self.port)]
        else:
            cmd = [sys.executable, str(BENCH / "gate_bypass.py"), "--port", str(self.port)]
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *cmd], env=env, stdout=self._log, stderr=self._log
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the {self.mode} server exited ({self.proc.returncode}); see its log")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        sys.exit("the server did not answer /health within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: uvicorn's graceful shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- PostgreSQL ------------------------------------------------------------------------


class Postgres:
    """A private cluster (scripts/pg.sh, port 55503) pinned to the server's core, fsync on."""

    def __init__(self) -> None:
        self.started_here = not (PG_DIR / "postmaster.pid").exists()
        url = sh(
            [str(REPO / "scripts" / "pg.sh"), "start", str(PG_DIR), str(PG_PORT)], os.environ.copy()
        ).strip()
        self.admin_url = url.rsplit("/", 1)[0]
        self.postmaster = int((PG_DIR / "postmaster.pid").read_text().split()[0])
        # The database is part of the server under test: give it the server's core, not wrk's.
        for pid in [self.postmaster, *children_of(self.postmaster)]:
            subprocess.run(
                ["taskset", "-a", "-p", "-c", SERVER_CORE, str(pid)],
                capture_output=True,
                check=False,
            )
        self.db = f"bench_{os.getpid()}"
        self._admin(f'CREATE DATABASE "{self.db}"')
        self.settings = {
            name: self._admin(f"SHOW {name}", fetch=True)
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        }
        if self.settings["fsync"] != "on" or self.settings["synchronous_commit"] != "on":
            sys.exit(f"PostgreSQL must run with fsync and synchronous_commit on: {self.settings}")

    @property
    def url(self) -> str:
        return f"{self.admin_url}/{self.db}"

    def analyze(self) -> None:
        """Statistics as autovacuum would have them a minute later (see README: fresh tables)."""
        import psycopg

        conninfo = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in [self.postmaster, *children_of(self.postmaster)])

    def _admin(self, sql: str, *, fetch: bool = False) -> str:
        import psycopg

        conninfo = self.admin_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            cur = conn.execute(sql)
            return str(cur.fetchone()[0]) if fetch else ""  # type: ignore[index]

    def close(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        if self.started_here:
            subprocess.run([str(REPO / "scripts" / "pg.sh"), "stop", str(PG_DIR)], check=False)


# -- seeding -------------------------------------------------------------------------------

FAMILIES = ("Abernathy", "Balogun", "Castellanos", "Delacroix", "Eriksen", "Fontaine",
            "Gallardo", "Haverford", "Ibarra", "Jovanovic", "Kowalczyk", "Lindqvist", "Marchetti",
            "Nakamura", "Oyelaran", "Petrakis", "Quesada", "Rasmussen", "Szabo", "Thornbury",
            "Underhill", "Valdivia", "Whitcombe", "Xiong", "Yamamoto", "Zelenko")  # fmt: skip
GIVEN = ("Ada", "Bruno", "Chiara", "Dmitri", "Esme", "Farid", "Greta", "Hiro", "Ines", "Jonah")
VITALS = (
    ("8867-4", "Heart rate", "/min", 55, 110),
    ("9279-1", "Respiratory rate", "/min", 10, 24),
    ("8310-5", "Body temperature", "Cel", 36, 39),
    ("29463-7", "Body weight", "kg", 45, 120),
    ("8302-2", "Body height", "cm", 150, 195),
)


def synthetic_patient(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": f"BENCH-{n:06d}"}],
        "name": [{"family": rng.choice(FAMILIES), "given": [rng.choice(GIVEN)]}],
        "gender": rng.choice(("female", "male", "other")),
        "birthDate": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "telecom": [{"system": "phone", "value": f"555-{rng.randint(1000, 9999)}"}],
    }


def synthetic_observation(rng: random.Random, patient_id: str) -> dict[str, Any]:
    code, display, unit, low, high = rng.choice(VITALS)
    day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(7, 18):02d}:00:00Z"
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": day,
        "valueQuantity": {
            "value": round(rng.uniform(low, high), 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


async def seed_over_http(base: str, token: str, patients: int, per_patient: int) -> None:
    """Patients, then Observations, through the real API (and so through the gate)."""
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:

        async def post(body: dict[str, Any]) -> str:
            async with limit:
                answer = await client.post(f"/fhir/{body['resourceType']}", json=body)
            if answer.status_code != 201:
                sys.exit(f"seeding failed: {answer.status_code} {answer.text[:300]}")
            return str(answer.json()["id"])

        ids = await asyncio.gather(*(post(synthetic_patient(rng, n)) for n in range(patients)))
        bodies = [synthetic_observation(rng, pid) for pid in ids for _ in range(per_patient)]
        await asyncio.gather(*(post(b) for b in bodies))


def discover(base: str, token: str, rtype: str, cap: int) -> list[dict[str, Any]]:
    """Page through a search to learn ids (and, for Patients, family names) to drive load with."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{base}/fhir/{rtype}?_count=100"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while url and len(found) < cap:
            bundle = client.get(url).raise_for_status().json()
            found += [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
            url = next((ln["url"] for ln in bundle["link"] if ln["relation"] == "next"), None)
    return [r for r in found if r.get("resourceType") == rtype][:cap]


def practice_slug(listing: str) -> str:
    """The demo's practice tenant, from `tenant list` (slug, kind, name; rich may wrap names)."""
    rows = [line.split() for line in listing.splitlines()]
    rows = [
        row
        for row in rows
        if len(row) > 1 and row[1] in ("practice", "laboratory", "imaging-centre")
    ]
    practices = [row[0] for row in rows if row[1] == "practice"]
    if not rows:
        sys.exit(f"no tenant found in `carevault tenant list`: {listing!r}")
    return (practices or [rows[0][0]])[0]


def prepare(env: dict[str, str], args: argparse.Namespace, log: Path) -> Dataset:
    sh([carevault_exe(), "init"], env)
    has_demo = (REPO / "src" / "carevault" / "demo" / "seed.py").exists()
    demo = args.seed == "demo" or (args.seed == "auto" and has_demo)
    if demo:
        sh([carevault_exe(), "demo", "--seed-only", "--patients", str(args.patients)], env)
        slug = practice_slug(sh([carevault_exe(), "tenant", "list"], env))
    else:
        slug = "bench"
        sh([carevault_exe(), "tenant", "create", "--slug", slug, "--name", "Bench Clinic"], env)
    email = "bench-practitioner@bench.example.org"
    cli = carevault_exe()
    sh([cli, "user", "create", "--tenant", slug, "--email", email, "--role", "practitioner"], env)
    token = sh(
        [carevault_exe(), "token", "create", "--tenant", slug, "--user", email, "--expires", "2d"],
        env,
    ).strip()
    server = Server("on", env, log)
    try:
        if not demo:
            asyncio.run(seed_over_http(server.base, token, args.patients, args.observations))
        patients = discover(server.base, token, "Patient", 2000)
        observations = discover(server.base, token, "Observation", 2000)
    finally:
        server.stop()
    families = {
        str(n.get("family", ""))[:3].lower() for p in patients for n in p.get("name", [])[:1]
    }
    families.discard("")
    if not patients or not observations or not families:
        sys.exit("the seed left no patients, observations or family names to drive load with")
    return Dataset(
        slug,
        token,
        [p["id"] for p in patients],
        [o["id"] for o in observations],
        sorted(families),
        "carevault demo --seed-only" if demo else "bench HTTP seed",
    )


# -- wrk -------------------------------------------------------------------------------------

_LUA = """
local token = "{token}"
local reqs = {{
{entries}
}}
local i = 0
request = function()
  i = i + 1
  local r = reqs[(i % #reqs) + 1]
  local headers = {{["Authorization"] = "Bearer " .. token, ["Accept"] = "application/fhir+json"}}
  if r[3] then headers["Content-Type"] = r[3] end
  return wrk.format(r[1], r[2], headers, r[4])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    content_type: str | None = None
    body: str | None = None

    def lua(self) -> str:
        ctype = f'"{self.content_type}"' if self.content_type else "nil"
        body = f"[==[{self.body}]==]" if self.body is not None else "nil"
        return f'  {{"{self.method}", "{self.path}", {ctype}, {body}}},'


def workload_requests(data: Dataset) -> dict[str, list[Request]]:
    rng = random.Random(11)
    half = max(1, len(data.patient_ids) // 2)
    # Searches look at the first half of the patients and creates write to the second half,
    # so the Observations created during the run do not grow the searches' answers.
    searched, written = data.patient_ids[:half], data.patient_ids[half:] or data.patient_ids
    reads = [f"/fhir/Patient/{p}" for p in data.patient_ids[:500]]
    reads += [f"/fhir/Observation/{o}" for o in data.observation_ids[:500]]
    rng.shuffle(reads)
    form = "application/x-www-form-urlencoded"
    return {
        "read": [Request("GET", p) for p in reads],
        "search-obs": [
            Request("GET", f"/fhir/Observation?patient={p}&_count=10") for p in searched
        ],
        # Names are identifiers: POST _search keeps them out of URLs and logs.
        "search-name": [
            Request("POST", "/fhir/Patient/_search", form, f"family={f}&_count=10")
            for f in data.family_prefixes
        ],
        "create": [
            Request(
                "POST",
                "/fhir/Observation",
                "application/fhir+json",
                json.dumps(synthetic_observation(rng, rng.choice(written))),
            )
            for _ in range(300)
        ],
    }


def write_scripts(folder: Path, data: Dataset) -> dict[str, Path]:
    scripts = {}
    for name, requests in workload_requests(data).items():
        path = folder / f"{name}.lua"
        entries = "\n".join(r.lua() for r in requests)
        path.write_text(_LUA.format(token=data.token, entries=entries))
        scripts[name] = path
    return scripts


def warm_up(base: str, token: str, requests: list[Request], count: int = 30) -> None:
    """Touch each path kind (imports, pools, caches) and prove the requests succeed."""
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        for r in requests[:count]:
            headers = {"Content-Type": r.content_type} if r.content_type else {}
            answer = client.request(r.method, r.path, content=r.body, headers=headers)
            if answer.status_code not in (200, 201):
                sys.exit(
                    f"{r.method} {r.path.split('?')[0]} answered {answer.status_code}: "
                    f"{answer.text[:300]}"
                )


@contextmanager
def sampled(pid: int, out: Path | None, seconds: int) -> Iterator[None]:
    """py-spy on the server during the run (non-blocking, on the load core), if asked."""
    spy_exe = shutil.which("py-spy")
    if out is None or spy_exe is None:
        yield
        return
    cmd = [spy_exe, "record", "--nonblocking", "-p", str(pid), "-d", str(seconds)]
    cmd += ["-r", "100", "-f", "raw", "-o", str(out)]
    spy = subprocess.Popen(["taskset", "-c", LOAD_CORE, *cmd], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        yield
    finally:
        spy.wait(seconds + 30)


def run_wrk(wrk: str, script: Path, base: str, args: argparse.Namespace) -> dict[str, int]:
    cmd = [
        "taskset",
        "-c",
        LOAD_CORE,
        wrk,
        "-t1",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        sys.exit(f"wrk gave no result: {done.stdout[-500:]} {done.stderr[-500:]}")
    return dict(json.loads(line.removeprefix("BENCH_JSON ")))


def measure(
    ctx: BackendContext, server: Server, workload: str, rnd: int, profile_to: Path | None
) -> Run:
    db_before = ctx.pg.cpu_seconds() if ctx.pg else 0.0
    user_before, sys_before = cpu_split(server.proc.pid)
    with sampled(server.proc.pid, profile_to, ctx.args.duration):
        raw = run_wrk(ctx.wrk, ctx.scripts[workload], server.base, ctx.args)
    user_after, sys_after = cpu_split(server.proc.pid)
    cpu = (user_after - user_before) + (sys_after - sys_before)
    db_cpu = (ctx.pg.cpu_seconds() - db_before) if ctx.pg else 0.0
    seconds = raw["duration_us"] / 1e6
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")}
    requests = raw["requests"]
    return Run(
        ctx.backend,
        server.mode,
        workload,
        rnd,
        requests,
        seconds,
        requests / seconds,
        raw["p50_us"] / 1000,
        raw["p99_us"] / 1000,
        errors,
        cpu,
        db_cpu,
        _per_request(cpu, requests),
        _per_request(cpu + db_cpu, requests),
        (cpu + db_cpu) / seconds,
        (sys_after - sys_before) / cpu if cpu else 0.0,
        profile_to is not None,
    )


@dataclass
class BackendContext:
    backend: str
    env: dict[str, str]
    args: argparse.Namespace
    wrk: str
    scripts: dict[str, Path]
    requests: dict[str, list[Request]]
    data: Dataset
    log: Path
    pg: Postgres | None = None


def _per_request(cpu_s: float, requests: int) -> float:
    return cpu_s / requests * 1e6 if requests else float("nan")


def describe(run: Run) -> str:
    errors = f"  ERRORS {run.errors}" if any(run.errors.values()) else ""
    return (
        f"  {run.backend:8} gate {run.mode:3} {run.workload:11} round {run.round + 1}: "
        f"{run.rps:7.0f}/s  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  "
        f"core CPU {run.core_cpu_us_per_req:5.0f} µs/req, busy {run.core_busy:4.0%}{errors}"
    )


def bench_backend(ctx: BackendContext, profile_dir: Path | None) -> list[Run]:
    runs: list[Run] = []
    for rnd in range(ctx.args.rounds):
        # Alternate which mode goes first, so neither always meets the larger database.
        for mode in ("on", "off") if rnd % 2 == 0 else ("off", "on"):
            server = Server(mode, ctx.env, ctx.log)
            try:
                for workload in WORKLOADS:
                    warm_up(server.base, ctx.data.token, ctx.requests[workload])
                    out = None
                    if profile_dir is not None and rnd == 0:
                        out = profile_dir / f"{ctx.backend}-{mode}-{workload}.txt"
                    run = measure(ctx, server, workload, rnd, out)
                    runs.append(run)
                    print(describe(run), flush=True)
            finally:
                server.stop()
    return runs


# -- summary ---------------------------------------------------------------------------------


def summarize(runs: list[Run]) -> list[Summary]:
    table: dict[tuple[str, str], Summary] = {}
    for run in runs:
        key = (run.backend, run.workload)
        table.setdefault(key, Summary(run.backend, run.workload))
    for (backend, workload), summary in table.items():
        for mode in ("on", "off"):
            mine = [r for r in runs if (r.backend, r.workload, r.mode) == (backend, workload, mode)]
            if not mine:
                continue
            figures = {
                "rps": statistics.median(r.rps for r in mine),
                "p50_ms": statistics.median(r.p50_ms for r in mine),
                "p99_ms": statistics.median(r.p99_ms for r in mine),
                "cpu_us": statistics.median(r.core_cpu_us_per_req for r in mine),
                "busy": statistics.median(r.core_busy for r in mine),
                "errors": sum(sum(r.errors.values()) for r in mine),
            }
            setattr(summary, mode, figures)
    return list(table.values())


def verdict(summary: Summary) -> str:
    goal = GOALS[summary.workload]
    rate_ok = summary.on["rps"] >= goal
    ratio_ok = summary.ratio >= RATIO_GOAL
    bad = summary.on["errors"] or summary.off.get("errors")
    return ("INVALID (errors) " if bad else "") + (
        f"{'pass' if rate_ok else 'FAIL'} rate, {'pass' if ratio_ok else 'FAIL'} ratio"
    )


def print_table(summaries: list[Summary], rounds: int) -> None:
    head = (
        f"{'backend':9}{'workload':12}{'on req/s':>9}{'p50':>6}{'p99':>6}{'off req/s':>10}"
        f"{'p50':>6}{'p99':>6}{'on/off':>7}{'CPU µs on/off':>15}{'cap/s on':>9}{'busy':>6}"
        f"  {'goal':>5}  verdict"
    )
    print(f"\nmedians of {rounds} round(s); latency in ms; CPU = core 1 CPU per request "
          "(server + database); cap/s = 1e6 / CPU µs (the rate a whole free core would give); "
          "busy = core 1 CPU / wall time (gate on)")  # fmt: skip
    print(head)
    print("-" * len(head))
    for s in summaries:
        on, off = s.on, s.off
        cpu = f"{on['cpu_us']:.0f}/{off['cpu_us']:.0f}"
        print(
            f"{s.backend:9}{s.workload:12}{on['rps']:9.0f}{on['p50_ms']:6.0f}{on['p99_ms']:6.0f}"
            f"{off['rps']:10.0f}{off['p50_ms']:6.0f}{off['p99_ms']:6.0f}{s.ratio:7.2f}"
            f"{cpu:>15}{1e6 / on['cpu_us']:9.0f}{on['busy']:6.0%}"
            f"  ≥{GOALS[s.workload]:<4.0f}  {verdict(s)}"
        )
    print(f"\ngoals: read ≥ 800/s, create ≥ 300/s, search ≥ 200/s; gate on/off ≥ {RATIO_GOAL}")
    peers = ", ".join(f"{name} ≈ {rate:.0f}" for name, rate in PEERS.items())
    print(f"peers (CRUD requests/s per vCPU; our server has one core): {peers}")


def fsync_ms(folder: Path, count: int = 30) -> float:
    """Median latency of a small write + fsync in the data folder: what one commit costs."""
    path = folder / "fsync-probe"
    samples = []
    with path.open("wb") as fh:
        for _ in range(count):
            fh.write(b"x" * 512)
            fh.flush()
            started = time.perf_counter()
            os.fsync(fh.fileno())
            samples.append((time.perf_counter() - started) * 1000)
    path.unlink()
    return statistics.median(samples)


IDLE_LEAVES = ("Condition.wait ", "Event.wait ", "SimpleQueue.get ", "Thread.join ",
               "select ", "sleep ")  # fmt: skip


def summarize_profiles(profile_dir: Path, top: int = 12) -> None:
    """Top frames by own time and by inclusive time, from py-spy's collapsed stacks.

    Non-blocking py-spy cannot tell idle threads, so samples whose innermost frame is a wait
    (a worker waiting for work, a request waiting for its group commit) are dropped. A thread
    waiting to re-take the GIL after a C call still counts, in that call's frame.
    """
    for path in sorted(profile_dir.glob("*.txt")):
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        total = 0
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count, frames = int(count_text), [_frame(f) for f in stack.split(";")]
            if frames[-1].startswith(IDLE_LEAVES):
                continue
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
        if not total:
            continue
        print(f"\n== {path.stem}: {total} active samples; top own time")
        for frame, count in own.most_common(top):
            print(f"  {100 * count / total:5.1f}%  {frame}")
        print("   top inclusive (carevault code)")
        ours = [(f, c) for f, c in inclusive.most_common() if "carevault" in f]
        for frame, count in ours[:top]:
            print(f"  {100 * count / total:5.1f}%  {frame}")


def _frame(text: str) -> str:
    """'func (path/to/file.py:12)' -> 'func (to/file.py)': group by function, not line."""
    name, _, where = text.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(where.split("/")[-2:])
    return f"{name} ({short})"


# -- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--duration", type=int, default=10, help="seconds per workload run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=300, help="patients to seed")
    parser.add_argument(
        "--seed", choices=("auto", "demo", "http"), default="auto",
        help="demo: `carevault demo --seed-only`; http: Patients and Observations over the API; "
        "auto: the demo when it is installed",
    )  # fmt: skip
    parser.add_argument("--observations", type=int, default=5, help="per patient (bench seed)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the server during round 1 and print its hot spots",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    wrk = ensure_wrk()
    if args.profile and not shutil.which("py-spy"):
        sys.exit("--profile needs py-spy: pip install py-spy")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    profile_dir = RESULTS / f"profile-{stamp}" if args.profile else None
    if profile_dir:
        profile_dir.mkdir()
    runs: list[Run] = []
    environment: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "server_core": SERVER_CORE,
        "load_core": LOAD_CORE,
        "args": vars(args),
    }
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"cv-bench-{backend}-") as tmp:
            home = Path(tmp) / "home"
            # steady state: the server does not load the $validate models while measured
            env = {
                **os.environ,
                "CAREVAULT_HOME": str(home),
                "CAREVAULT_WARM_STRICT_VALIDATION": "false",
            }
            env.pop("CAREVAULT_DATABASE_URL", None)
            pg = Postgres() if backend == "postgres" else None
            try:
                if pg:
                    env["CAREVAULT_DATABASE_URL"] = pg.url
                    environment["postgres"] = pg.settings
                else:
                    environment["sqlite"] = {"journal_mode": "WAL", "synchronous": "FULL"}
                log = Path(tmp) / "server.log"
                print(f"[{backend}] init, seed, token...", flush=True)
                data = prepare(env, args, log)
                if pg:
                    pg.analyze()
                environment[f"{backend}_fsync_ms"] = fsync_ms(Path(tmp))
                environment[f"{backend}_data"] = {
                    "seeded_by": data.seeded_by,
                    "patients": len(data.patient_ids),
                    "observations_known": len(data.observation_ids),
                }
                print(f"[{backend}] {environment[f'{backend}_data']}", flush=True)
                requests = workload_requests(data)
                scripts = write_scripts(Path(tmp), data)
                ctx = BackendContext(backend, env, args, wrk, scripts, requests, data, log, pg)
                runs += bench_backend(ctx, profile_dir)
            finally:
                if pg:
                    pg.close()
    summaries = summarize(runs)
    print_table(summaries, args.rounds)
    out = RESULTS / f"fhir_crud-{stamp}.json"
    document = {
        "environment": environment,
        "goals": GOALS,
        "ratio_goal": RATIO_GOAL,
        "peers": PEERS,
        "runs": [asdict(r) for r in runs],
        "summary": [{**asdict(s), "ratio": s.ratio} for s in summaries],
    }
    out.write_text(json.dumps(document, indent=2))
    print(f"\nraw results: {out.relative_to(REPO)}")
    if profile_dir:
        summarize_profiles(profile_dir)


if __name__ == "__main__":
    main()
