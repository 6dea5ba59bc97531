"""The gate's added cost per read with all checks on, against the bypass baseline.

In-process, no HTTP (issue 4, "Speed"). Reuses gate_cpu.py's setup and measurement: 200
patients written through the gate, then reads of the same ids through
`runtime.gate(actor).read(...)` and through the record store alone (gate_bypass.py's
bypass), interleaved and paired, each timed with the thread's CPU clock, the audit append
run in a savepoint that is never committed ("the shared commit aside": the group commit's
fsync is shared by the whole batch and is not the gate's per-read cost).

All checks on: decide (role, tenant, reach: the actor's relationship to the patient),
scope in SQL, decryption, minimum necessary (the role's field profile), and the audit
entry (record, chain row, HMAC, SQL). Run twice: under the tenant-wide rule, and under the
care-team rule where the practitioner reaches each patient through an Encounter that names
them (resolved in SQL per gate, as for a request). Prints p50 and p90 in µs and the ratio
to the goal (< 100 µs added at p50).

    taskset -c 1 python bench/gate_checks.py [--backend postgres] [--reads 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import update

from carevault.clock import isoformat
from carevault.identity.models import Actor, system_actor, users
from carevault.identity.tenant_policy import CareRule, TenantPolicy, store_policy
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from gate_cpu import GOAL_US, CommitAside, database, paired, percentile, seed


def care_team(rt: Runtime, actor: Actor, ids: list[str]) -> None:
    """Switch the tenant to the care-team rule and put the practitioner on every patient's
    Encounter."""
    gate = rt.gate(system_actor(actor.tenant_id, "bench seed"))
    practitioner = gate.create("Practitioner", {"resourceType": "Practitioner",
                                                "name": [{"family": "Bench"}]})  # fmt: skip
    pract_id = practitioner.resource_id
    for pid in ids:
        gate.create("Encounter", {
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
            "participant": [{"individual": {"reference": f"Practitioner/{pract_id}"}}],
        })  # fmt: skip
    now = isoformat(rt.clock.now())

    def work(conn: object) -> None:
        store_policy(conn, actor.tenant_id, TenantPolicy(care_rule=CareRule.CARE_TEAM), now)  # type: ignore[arg-type]
        conn.execute(  # type: ignore[attr-defined]
            update(users)
            .where(users.c.tenant_id == actor.tenant_id, users.c.user_id == actor.user_id)
            .values(practitioner_id=pract_id)
        )

    rt.committer.submit(work)


def measure(rt: Runtime, actor: Actor, ids: list[str], reads: int) -> dict[str, list[float]]:
    with CommitAside(rt, "savepoint") as aside:
        return paired(rt, actor, ids, reads, aside)


def report(label: str, figures: dict[str, list[float]]) -> float:
    added50, added90 = percentile(figures["added"], 50), percentile(figures["added"], 90)
    gate50, bypass50 = percentile(figures["gate"], 50), percentile(figures["bypass"], 50)
    print(f"  {label:28} gate p50 {gate50:7.1f} µs  bypass p50 {bypass50:7.1f} µs  "
          f"added p50 {added50:6.1f} µs  p90 {added90:6.1f} µs  "
          f"ratio to goal {added50 / GOAL_US:4.2f}")  # fmt: skip
    return added50


def main() -> None:
    parser = argparse.ArgumentParser(description="The gate's added cost per read, all checks.")
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-url", help="an empty PostgreSQL database to use instead of the bench's cluster"
    )
    args = parser.parse_args()
    where = nullcontext(args.pg_url) if args.pg_url else database(args.backend)
    with tempfile.TemporaryDirectory(prefix="cv-gate-checks-") as tmp, where as url:
        settings = Settings(home=Path(tmp) / "home", database_url=url)
        initialize(settings)
        rt = Runtime(settings)
        try:
            actor, token, ids = seed(rt, args.patients)
            results = {"tenant-wide rule": measure(rt, actor, ids, args.reads)}
            care_team(rt, actor, ids)
            actor = rt.identity.authenticate(token)  # the token now carries the care-team rule
            rt.gate(actor).read("Patient", ids[0])  # and it reaches the patient: the setup holds
            results["care-team rule (Encounter)"] = measure(rt, actor, ids, args.reads)
        finally:
            rt.close()
    backend = "postgres" if args.pg_url else args.backend
    print(f"{backend}, {args.patients} patients, {args.reads} paired reads, "
          f"Python {sys.version.split()[0]}; goal < {GOAL_US:.0f} µs added at p50")  # fmt: skip
    worst = max(report(label, figures) for label, figures in results.items())
    print(f"verdict: {'PASS' if worst < GOAL_US else 'FAIL'} (worst added p50 {worst:.1f} µs)")


if __name__ == "__main__":
    main()
