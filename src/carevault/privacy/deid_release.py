"""Recording a release of de-identified data (an extract or an aggregate): one row in
`deid_releases` and its audit entry, in one transaction. The detail holds counts, rule
hashes and digests, never a value; de-identified data names no patient, so neither does
the entry."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from carevault.audit.models import Action, AuditRecord
from carevault.clock import isoformat
from carevault.identity.models import Actor
from carevault.identity.permissions import Role
from carevault.privacy.deid_models import deid_releases
from carevault.privacy.services import GateServices

REQUESTER_ROLES = frozenset({Role.PRIVACY_OFFICER})
"""Who may ask for a de-identified release (aggregate or extract) over the API."""


def record_release(
    services: GateServices,
    actor: Actor,
    *,
    kind: str,
    profile: str,
    purpose: str,
    project: str | None,
    detail: Mapping[str, Any],
) -> str:
    """Record the release; returns its id once the row and its audit entry are durable."""
    release_id = str(uuid.uuid4())
    now = isoformat(services.clock.now())

    def work(conn: Connection) -> tuple[str, AuditRecord]:
        conn.execute(deid_releases.insert().values(
            tenant_id=actor.tenant_id, release_id=release_id, kind=kind, project=project,
            profile=profile, purpose=purpose, actor_id=actor.user_id, released_at=now,
            detail=json.dumps(dict(detail), sort_keys=True),
        ))  # fmt: skip
        record = AuditRecord.by(
            actor,
            now,
            Action.EXPORT,
            resource_type="",
            resource_ids=(release_id,),
            detail=f"de-identified release; kind={kind}; profile={profile}; purpose={purpose}",
        )
        return release_id, record

    return services.audit.commit_with(services.committer, actor.tenant_id, work)


def releases(services: GateServices, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's releases, oldest first (for the privacy officer and the tests)."""
    with services.reader.connect() as conn:
        rows = conn.execute(
            select(deid_releases).where(deid_releases.c.tenant_id == tenant_id)
            .order_by(deid_releases.c.released_at)
        ).mappings().all()  # fmt: skip
        conn.rollback()
    return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]
