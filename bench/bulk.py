"""Bulk import and export throughput on the Synthea sets, SQLite and PostgreSQL.

    python bench/bulk.py [--backend sqlite|postgres|both] [--rounds 3] [--workers 2]

Each round: a fresh data folder (and a fresh PostgreSQL database), `init`, then each set
imported into a tenant of its own through the gate, exactly as `carevault import` does
(`Gate.import_resources`, in-process, without the progress bar). synthea-100 is a partial
export (its Immunizations name Encounters it does not hold), so it is imported with
`keep_unresolved` as an operator would. The table shows the median over rounds of
resources per second (wall time of the import alone), the CPU the import used (this
process and its worker processes, plus PostgreSQL's backends), and the ratios to the goal
(1,000 resources/s on this 2-core machine) and to HAPI FHIR's published bundle import
(2,214 resources/s on 8 vCPU).

After each import the tenant is exported twice: `carevault export`'s path (NDJSON files,
`export_tenant`) and a Bulk Data `$export` job from kick-off to the last byte downloaded
(sealed files written, then decrypted while streaming). Export rates are compared with the
goal (2,000 resources/s) and the IBM/LinuxForHealth FHIR bulk export (630-720/s).
Raw figures go to bench/results/bulk-<time>.json.

PostgreSQL is a private cluster (scripts/pg.sh, /tmp/pg-bench-bulk, port 55504) with fsync
and synchronous_commit on; the bench refuses to run otherwise. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
DATA = next(
    (p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
    REPO.parent / "shared" / "data",
)  # beside the repository, else the workplace's copy
DATASETS = {"synthea-10": False, "synthea-100": True}
"""Set → whether references to resources outside the set are kept (a partial export)."""
PG_DIR = Path("/tmp/pg-bench-bulk")  # noqa: S108 (a fixed private cluster, as scripts/pg.sh wants)
PG_PORT = 55504
GOAL = 1000.0
HAPI = 2214.0  # bundle import, resources/s, 8 vCPU (published)
AIDBOX = 2678.0
EXPORT_GOAL = 2000.0
IBM_EXPORT = 720.0  # LinuxForHealth FHIR bulk export, resources/s (published 630-720)


@dataclass
class Run:
    backend: str
    dataset: str
    round: int
    resources: int
    refused: int
    seconds: float
    rate: float
    cpu_s: float
    """This process and its (finished) worker processes."""
    db_cpu_s: float
    """PostgreSQL's processes (0 for SQLite: it runs inside this process)."""
    export_rate: float = 0.0
    """`carevault export` (NDJSON files), resources/s."""
    bulk_export_rate: float = 0.0
    """A `$export` job, kick-off to the last file downloaded, resources/s."""


def cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Postgres:
    """A private cluster with fsync on, and a fresh database per round."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PG_EXTRA_OPTS"}
        self.started_here = not (PG_DIR / "postmaster.pid").exists()
        done = subprocess.run(
            [str(REPO / "scripts" / "pg.sh"), "start", str(PG_DIR), str(PG_PORT)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"could not start PostgreSQL:\n{done.stderr}")
        self.admin_url = done.stdout.strip().rsplit("/", 1)[0]
        self.postmaster = int((PG_DIR / "postmaster.pid").read_text().split()[0])
        self.settings = {
            name: self._admin(f"SHOW {name}", fetch=True)
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        }
        if self.settings["fsync"] != "on" or self.settings["synchronous_commit"] != "on":
            sys.exit(f"PostgreSQL must run with fsync and synchronous_commit on: {self.settings}")

    def fresh(self, name: str) -> str:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{name}"')
        return f"{self.admin_url}/{name}"

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def cpu_seconds(self) -> float:
        kids = subprocess.run(
            ["pgrep", "-P", str(self.postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return sum(proc_cpu(int(pid)) for pid in [self.postmaster, *kids])

    def _admin(self, sql: str, *, fetch: bool = False) -> str:
        import psycopg

        conninfo = self.admin_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            cur = conn.execute(sql)
            row = cur.fetchone() if fetch else None
            return str(row[0]) if row else ""

    def close(self) -> None:
        if self.started_here:
            subprocess.run([str(REPO / "scripts" / "pg.sh"), "stop", str(PG_DIR)], check=False)


def one_round(backend: str, rnd: int, pg: Postgres | None, workers: int | None) -> list[Run]:
    from carevault.identity.models import TenantKind, system_actor
    from carevault.runtime import Runtime, initialize
    from carevault.settings import Settings
    from carevault.transfer.sources import expand

    runs = []
    db = f"bulk_{os.getpid()}_{rnd}"
    with tempfile.TemporaryDirectory(prefix=f"cv-bulk-{backend}-") as tmp:
        extra = {"database_url": pg.fresh(db)} if pg else {}
        settings = Settings(home=Path(tmp) / "home", **extra)
        initialize(settings)
        rt = Runtime(settings)
        try:
            for name, keep in DATASETS.items():
                tenant = rt.identity.create_tenant(name, name, TenantKind.PRACTICE)
                gate = rt.gate(system_actor(tenant.tenant_id, "import"))
                sources = expand([DATA / name]).sources
                db_before = pg.cpu_seconds() if pg else 0.0
                cpu_before, started = cpu_now(), time.perf_counter()
                report = gate.import_resources(
                    sources, keep_unresolved=keep, **({"workers": workers} if workers else {})
                )
                seconds = time.perf_counter() - started
                run = Run(
                    backend, name, rnd, report.total_written, len(report.refused), seconds,
                    report.total_written / seconds, cpu_now() - cpu_before,
                    (pg.cpu_seconds() - db_before) if pg else 0.0,
                )  # fmt: skip
                print(
                    f"[{backend} round {rnd}] {name}: {run.resources} resources in "
                    f"{seconds:.2f} s = {run.rate:,.0f}/s (CPU {run.cpu_s:.1f} s + db "
                    f"{run.db_cpu_s:.1f} s){f', {run.refused} REFUSED' if run.refused else ''}",
                    flush=True,
                )
                run.export_rate = export_cli(rt, name, Path(tmp) / f"out-{name}")
                run.bulk_export_rate = export_bulk(rt, gate)
                print(
                    f"[{backend} round {rnd}] {name}: export {run.export_rate:,.0f}/s, "
                    f"$export + download {run.bulk_export_rate:,.0f}/s",
                    flush=True,
                )
                runs.append(run)
        finally:
            rt.close()
            if pg:
                pg.drop(db)
    return runs


def export_cli(rt: Any, slug: str, out: Path) -> float:
    from rich.console import Console

    from carevault.transfer.export_command import export_tenant

    started = time.perf_counter()
    summary = export_tenant(rt, slug, out, console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    return summary.total / (time.perf_counter() - started)


def export_bulk(rt: Any, gate: Any) -> float:
    from carevault.audit.models import RequestInfo
    from carevault.privacy.bulk_jobs import KickOff

    started = time.perf_counter()
    kick = KickOff(level="system", request_url="http://bench/fhir/$export")
    job = rt.exports.kick_off(gate, kick, RequestInfo(request_id="bench"))
    assert rt.exports.wait(job, 3600)
    view = rt.exports.status(gate.actor, job)
    assert view.state == "completed", view.error
    for output in view.output:
        for _chunk in rt.exports.download(gate.actor, job, output.name):
            pass
    rate = view.progress / (time.perf_counter() - started)
    rt.exports.cancel(gate.actor, job)
    return float(rate)


def print_table(runs: list[Run]) -> None:
    print()
    print(
        f"{'backend':9} {'set':12} {'resources':>9} {'median/s':>9} {'CPU ms/100':>10} "
        f"{'goal 1000':>9} {'HAPI 2214':>9} {'per core vs HAPI/vCPU':>22}"
    )
    keys = sorted({(r.backend, r.dataset) for r in runs})
    for backend, dataset in keys:
        mine = [r for r in runs if (r.backend, r.dataset) == (backend, dataset)]
        rate = statistics.median(r.rate for r in mine)
        cpu = statistics.median((r.cpu_s + r.db_cpu_s) / r.resources * 100_000 for r in mine)
        per_core = (rate / 2) / (HAPI / 8)
        print(
            f"{backend:9} {dataset:12} {mine[0].resources:>9,} {rate:>9,.0f} {cpu:>10,.0f} "
            f"{rate / GOAL:>9.2f} {rate / HAPI:>9.2f} {per_core:>22.2f}"
        )
    print(f"\n{'backend':9} {'set':12} {'export/s':>9} {'goal 2000':>9} {'IBM 720':>8} "
          f"{'$export/s':>10} {'goal 2000':>9}")  # fmt: skip
    for backend, dataset in keys:
        mine = [r for r in runs if (r.backend, r.dataset) == (backend, dataset)]
        cli = statistics.median(r.export_rate for r in mine)
        bulk = statistics.median(r.bulk_export_rate for r in mine)
        print(
            f"{backend:9} {dataset:12} {cli:>9,.0f} {cli / EXPORT_GOAL:>9.2f} "
            f"{cli / IBM_EXPORT:>8.2f} {bulk:>10,.0f} {bulk / EXPORT_GOAL:>9.2f}"
        )
    print(
        "\nmedian/s: resources per second (wall time of the import), median over rounds. "
        "CPU ms/100: CPU per 100 resources (import process, its workers and PostgreSQL). "
        f"Anchors: HAPI {HAPI:,.0f}/s and Aidbox {AIDBOX:,.0f}/s bundle import on 8 vCPU."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="check processes (default 2)")
    args = parser.parse_args()
    for name in DATASETS:
        if not (DATA / name).is_dir():
            sys.exit(f"{DATA / name} is missing")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    runs: list[Run] = []
    environment: dict[str, Any] = {"cpus": os.cpu_count(), "args": vars(args)}
    for backend in backends:
        pg = Postgres() if backend == "postgres" else None
        try:
            if pg:
                environment["postgres"] = pg.settings
            else:
                environment["sqlite"] = {"journal_mode": "WAL", "synchronous": "FULL"}
            for rnd in range(1, args.rounds + 1):
                runs += one_round(backend, rnd, pg, args.workers)
        finally:
            if pg:
                pg.close()
    print_table(runs)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"bulk-{stamp}.json"
    out.write_text(json.dumps({"environment": environment, "runs": [asdict(r) for r in runs]}))
    print(f"raw figures: {out}")


if __name__ == "__main__":  # the import's check workers are forked from this process
    main()
