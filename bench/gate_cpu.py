"""The gate's added CPU per read, the shared commit aside: in-process, no HTTP.

    taskset -c 1 python bench/gate_cpu.py [--reads 5000] [--patients 200]

Builds a Runtime on a temporary SQLite data folder, seeds patients through the gate, then
times the same reads two ways, interleaved: through `runtime.gate(actor).read(...)` and
through the record store directly (the bypass of bench/gate_bypass.py). CPU is the calling
thread's CPU time (time.thread_time_ns), so other threads do not count.

The group commit is shared by every request in a batch, so it is left out. FOR THIS
MEASUREMENT ONLY the runtime's committer.submit (and submit_merged, where the committer merges
audit appends) is replaced on the instance (never in src/) by CommitAside:
  - "no-op": nothing is written: the gate's own work (decide, audit record, minimum
    necessary) without its audit append;
  - "savepoint": the audit append runs as the committer runs it, in a savepoint of a
    transaction that is never committed: a submitted job at once, merged appends in batches
    of BATCH reads (the bench's 16 connections), their CPU shared out over the batch's reads.
    The gate plus its own audit append (chain hashing, SQL), without the commit and its
    fsync. This is the verdict figure.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from carevault.audit import chain
from carevault.audit.models import Action, Outcome
from carevault.identity.models import Actor, TenantKind, system_actor
from carevault.identity.permissions import Role
from carevault.records.models import resource_versions
from carevault.records.store import RecordStore, Scope, Version
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings

GOAL_US = 100.0
WARMUP = 300


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def cpu_us(fn: Callable[[], Any]) -> float:
    started = time.thread_time_ns()
    fn()
    return (time.thread_time_ns() - started) / 1000


# -- setup ------------------------------------------------------------------------------------


def seed(rt: Runtime, patients: int) -> tuple[Actor, str, list[str]]:
    """A tenant, its patients (through the gate, committed for real), and a practitioner."""
    tenant = rt.identity.create_tenant("bench", "Bench Clinic", TenantKind.PRACTICE)
    gate = rt.gate(system_actor(tenant.tenant_id, "bench seed"))
    rng = random.Random(7)
    ids = []
    for n in range(patients):
        body = {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": f"B-{n:06d}"}],
            "name": [{"family": f"Benchmark{rng.randint(0, 999)}", "given": ["Ada"]}],
            "gender": rng.choice(("female", "male")),
            "birthDate": f"{rng.randint(1930, 2020)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        }
        ids.append(gate.create("Patient", body).resource_id)
    email = "bench-practitioner@bench.example.org"
    user_id = rt.identity.create_user(tenant, email, Role.PRACTITIONER)
    token = rt.identity.create_token(tenant, user_id).token
    return rt.identity.authenticate(token), token, ids


class CommitAside:
    """Replaces this runtime's committer.submit (and submit_merged) for the measurement.

    In "savepoint" mode work runs in a savepoint of an open transaction on the writer, as the
    committer runs it, and nothing is committed. `renew()`, called between timed calls, flushes
    merged appends once BATCH have queued (timing them, and charging each read of the batch its
    share), and rolls the transaction back as often as a group commit would end one: one
    endless transaction would let PostgreSQL's versions of the audit head row pile up.
    """

    BATCH = 16

    def __init__(self, rt: Runtime, mode: str) -> None:
        self._rt, self._mode = rt, mode
        self._conn = rt.writer.connect()
        self._outer = self._conn.begin()
        self._jobs = 0
        self._merged: dict[tuple[Any, Hashable], list[Any]] = {}
        self._owed: list[tuple[list[float], int]] = []

    def submit(self, work: Callable[[Connection], Any]) -> Any:
        if self._mode == "no-op":
            return None
        self._jobs += 1
        return self._in_savepoint(work)

    def submit_merged(self, flush: Any, group: Hashable, item: Any) -> None:
        if self._mode != "no-op":
            self._merged.setdefault((flush, group), []).append(item)

    def charge(self, samples: list[float], index: int) -> None:
        """samples[index] (a read just timed) gets its share of the next merged flush."""
        if self._merged:
            self._owed.append((samples, index))

    def renew(self, *, force: bool = False) -> None:
        if self._merged and (force or sum(map(len, self._merged.values())) >= self.BATCH):
            started = time.thread_time_ns()
            for (flush, group), items in self._merged.items():
                self._in_savepoint(partial(_flush_group, flush, group, items))
            spent = (time.thread_time_ns() - started) / 1000
            count = sum(map(len, self._merged.values()))
            for samples, index in self._owed:
                samples[index] += spent / count
            self._merged, self._owed = {}, []
            self._jobs += self.BATCH
        if self._jobs >= self.BATCH:
            self._outer.rollback()
            self._outer = self._conn.begin()
            self._jobs = 0

    def _in_savepoint(self, work: Callable[[Connection], Any]) -> Any:
        savepoint = self._conn.begin_nested()
        try:
            return work(self._conn)
        finally:
            savepoint.commit()  # releases the savepoint; the outer transaction never commits

    def __enter__(self) -> CommitAside:
        committer = self._rt.committer
        self._originals = {n: getattr(committer, n) for n in ("submit", "submit_merged")
                           if hasattr(committer, n)}  # fmt: skip
        for name in self._originals:
            setattr(committer, name, getattr(self, name))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._originals.items():
            setattr(self._rt.committer, name, original)
        self._outer.rollback()
        self._conn.close()


def _flush_group(flush: Any, group: Hashable, items: list[Any], conn: Connection) -> Any:
    return flush(conn, group, items)


def samples(fn: Callable[[], Any], count: int, between: Callable[[], None]) -> list[float]:
    """CPU of count calls after WARMUP untimed ones; between() runs untimed before each call."""
    found = []
    for i in range(count + WARMUP):
        between()
        spent = cpu_us(fn)
        if i >= WARMUP:
            found.append(spent)
    return found


def _nothing() -> None:
    return None


def gate_read(rt: Runtime, actor: Actor, rid: str) -> Version:
    return rt.gate(actor).read("Patient", rid)


def bypass_read(rt: Runtime, store: RecordStore, scope: Scope, rid: str) -> Version:
    """What gate_bypass.BypassGate.read does: the store, nothing else."""
    with rt.reader.connect() as conn:
        found = store.read(conn, scope, "Patient", rid)
        conn.rollback()
    if found is None or found.deleted:
        raise LookupError(f"Patient/{rid} was seeded but cannot be read")
    return found


# -- measurements ------------------------------------------------------------------------------


def paired(
    rt: Runtime, actor: Actor, ids: list[str], reads: int, aside: CommitAside
) -> dict[str, list[float]]:
    """CPU of gate reads and bypass reads of the same ids, interleaved, order alternating."""
    store, scope = rt.gate_services.store, Scope(actor.tenant_id)
    gate_us: list[float] = []
    bypass_us: list[float] = []
    for i in range(reads + WARMUP):
        rid = ids[i % len(ids)]
        first, second = (gate_us, bypass_us) if i % 2 == 0 else (bypass_us, gate_us)
        for target in (first, second):
            aside.renew()
            if target is gate_us:
                spent = cpu_us(partial(gate_read, rt, actor, rid))
            else:
                spent = cpu_us(partial(bypass_read, rt, store, scope, rid))
            if i >= WARMUP:
                target.append(spent)
                if target is gate_us:
                    aside.charge(gate_us, len(gate_us) - 1)
    aside.renew(force=True)
    added = [g - b for g, b in zip(gate_us, bypass_us, strict=True)]
    return {"gate": gate_us, "bypass": bypass_us, "added": added}


def split(rt: Runtime, actor: Actor, ids: list[str], reads: int) -> dict[str, list[float]]:
    """The gate's pieces, each timed on its own (private methods: this is a bench)."""
    gate = rt.gate(actor)
    version = bypass_read(rt, rt.gate_services.store, Scope(actor.tenant_id), ids[0])
    record = gate._record(Action.READ, "Patient", Outcome.SUCCESS, 200, [version], (ids[0],), None)
    key = rt.vault.subkey(actor.tenant_id, "audit-chain")
    row = chain._row_for(actor.tenant_id, 1, record)
    row["prev_hash"] = chain.GENESIS
    pieces: dict[str, Callable[[], Any]] = {
        "gate object (scope, profile)": lambda: rt.gate(actor),
        "decide": lambda: gate._decide("Patient", "read"),
        "audit record (AuditRecord)": lambda: gate._record(
            Action.READ, "Patient", Outcome.SUCCESS, 200, [version], (ids[0],), None
        ),
        "chain row (JSON of fields)": lambda: chain._row_for(actor.tenant_id, 1, record),
        "chain hashing (HMAC-SHA256)": lambda: chain.entry_hash(key, chain.GENESIS, row),
        "minimum necessary": lambda: gate._minimum(version),
    }
    audit, batch = rt.gate_services.audit, [record] * CommitAside.BATCH
    with CommitAside(rt, "savepoint") as aside:
        pieces["audit append, alone (SQL+hash)"] = lambda: aside.submit(
            lambda conn: audit.append(conn, actor.tenant_id, [record])
        )
        found = {name: samples(fn, reads, aside.renew) for name, fn in pieces.items()}
        merged = samples(
            lambda: aside.submit(lambda conn: audit.append(conn, actor.tenant_id, batch)),
            max(1, reads // CommitAside.BATCH),
            aside.renew,
        )
        found[f"audit append, {len(batch)} merged (per entry)"] = [x / len(batch) for x in merged]
        return found


def context(rt: Runtime, token: str, ids: list[str], reads: int) -> dict[str, list[float]]:
    """Other CPU on a read request's path, outside the gate, to see the gate's share."""
    store, tenant = rt.gate_services.store, rt.identity.authenticate(token).tenant_id
    scope = Scope(tenant)
    row_key = ("Patient", ids[0])

    def connect_only() -> None:
        with rt.reader.connect() as conn:
            conn.rollback()

    with rt.reader.connect() as conn:
        versions = resource_versions.c
        sealed = conn.execute(
            select(versions.key_name, versions.sealed, versions.version_id).where(
                versions.tenant_id == tenant,
                versions.resource_type == row_key[0],
                versions.resource_id == row_key[1],
            )
        ).one()
        conn.rollback()
    aad = f"{tenant}|{row_key[0]}|{row_key[1]}|{sealed.version_id}".encode()
    pieces: dict[str, Callable[[], Any]] = {
        "authenticate (bearer token -> actor)": lambda: rt.identity.authenticate(token),
        "reader connect + BEGIN + rollback": connect_only,
        "store.read (SQL build, run, decrypt)": lambda: bypass_read(rt, store, scope, ids[0]),
        "decrypt one record (AES-GCM)": lambda: rt.vault.open_record(
            tenant, sealed.key_name, sealed.sealed, aad
        ),
    }
    return {name: samples(fn, reads, _nothing) for name, fn in pieces.items()}


# -- report ---------------------------------------------------------------------------------------


def line(label: str, samples: list[float]) -> str:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    return f"  {label:38} p50 {p50:8.1f} µs   p99 {p99:8.1f} µs"


def report(
    results: dict[str, dict[str, list[float]]],
    pieces: dict[str, list[float]],
    around: dict[str, list[float]],
) -> bool:
    passed = True
    for mode, figures in results.items():
        print(f"\ncommit aside by '{mode}' submit ({len(figures['gate'])} reads each way)")
        print(line("read through the gate", figures["gate"]))
        print(line("read through the bypass (store only)", figures["bypass"]))
        print(line("added by the gate, per read (paired)", figures["added"]))
        median_gap = statistics.median(figures["gate"]) - statistics.median(figures["bypass"])
        print(f"  {'difference of medians':38} {median_gap:8.1f} µs")
        if mode == "savepoint":
            added = percentile(figures["added"], 50)
            passed = added < GOAL_US
            verdict = "PASS" if passed else "FAIL"
            print(f"  verdict: gate's added CPU per read at p50 = {added:.1f} µs "
                  f"(goal < {GOAL_US:.0f} µs): {verdict}")  # fmt: skip
    print("\nthe gate's cost split (each piece timed alone)")
    for name, samples in pieces.items():
        print(line(name, samples))
    print("\nfor scale: the rest of a read request's path (not the gate)")
    for name, samples in around.items():
        print(line(name, samples))
    return passed


@contextmanager
def database(backend: str) -> Iterator[str | None]:
    """None for SQLite in the data folder; else a fresh database on the bench's cluster."""
    if backend == "sqlite":
        yield None
        return
    from fhir_crud import Postgres

    pg = Postgres()
    try:
        yield pg.url
    finally:
        pg.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="The gate's added CPU per read.")
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument(
        "--backend", choices=("sqlite", "postgres"), default="sqlite",
        help="postgres: the private cluster of fhir_crud.py (scripts/pg.sh, port 55503)",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cv-gate-cpu-") as tmp, database(args.backend) as url:
        settings = Settings(home=Path(tmp) / "home", database_url=url)
        initialize(settings)
        rt = Runtime(settings)
        try:
            actor, token, ids = seed(rt, args.patients)
            results = {}
            for mode in ("no-op", "savepoint"):
                with CommitAside(rt, mode) as aside:
                    results[mode] = paired(rt, actor, ids, args.reads, aside)
            pieces = split(rt, actor, ids, args.reads)
            around = context(rt, token, ids, args.reads)
        finally:
            rt.close()
    print(f"{args.backend}, {args.patients} patients, Python {sys.version.split()[0]}")
    report(results, pieces, around)


if __name__ == "__main__":
    main()
