"""The patients a de-identification run partitions: ids only, in keyset pages, for system
actors (a run's driver hands each partition's ids to a worker, which reads them through
`Gate.export`, audited per patient). No resource is decrypted here."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select

from carevault.audit.models import Action, AuditRecord
from carevault.clock import isoformat
from carevault.errors import Forbidden, Invalid
from carevault.identity.models import Actor
from carevault.identity.permissions import fhir_permission
from carevault.privacy.services import GateServices
from carevault.records.models import resources as cur


def patient_partitions(services: GateServices, actor: Actor, size: int) -> Iterator[list[str]]:
    """Every live Patient id of the actor's tenant, `size` at a time, in id order."""
    if actor.system_reason is None or fhir_permission("Patient", "read") not in actor.permissions:
        raise Forbidden("only a system actor that may read Patient lists a cohort")
    if size < 1:
        raise Invalid("a partition holds at least one patient")
    services.audit.commit(
        services.committer,
        actor.tenant_id,
        AuditRecord.by(
            actor,
            isoformat(services.clock.now()),
            Action.SEARCH,
            resource_type="Patient",
            detail=f"{actor.system_reason}; cohort ids, partitions of {size}",
        ),
    )
    after = ""
    while True:
        with services.reader.connect() as conn:
            ids = list(conn.scalars(
                select(cur.c.resource_id).where(
                    cur.c.tenant_id == actor.tenant_id, cur.c.resource_type == "Patient",
                    cur.c.deleted.is_(False), cur.c.resource_id > after,
                ).order_by(cur.c.resource_id).limit(size)
            ))  # fmt: skip
            conn.rollback()
        if not ids:
            return
        yield ids
        after = ids[-1]


def patient_count(services: GateServices, actor: Actor) -> int:
    """How many live patients the tenant holds (for a progress bar; ids stay here)."""
    if actor.system_reason is None:
        raise Forbidden("only a system actor counts a cohort")
    with services.reader.connect() as conn:
        total = conn.scalar(
            select(func.count()).select_from(cur).where(
                cur.c.tenant_id == actor.tenant_id, cur.c.resource_type == "Patient",
                cur.c.deleted.is_(False),
            )
        )  # fmt: skip
        conn.rollback()
    return int(total or 0)
