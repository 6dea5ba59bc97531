"""Each tenant's access policy: who counts as caring for a patient, and how long sessions live.

A small practice lets every clinician see every patient ("tenant-wide"); a larger one
limits a practitioner to patients they have an encounter, a care-team membership or a
referral with ("care-team"). Defaults apply until the account administrator sets one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import Column, Connection, ForeignKeyConstraint, Integer, String, Table, select

from carevault.database import metadata


class CareRule(StrEnum):
    TENANT_WIDE = "tenant-wide"
    CARE_TEAM = "care-team"


tenant_policies = Table(
    "tenant_policies",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("care_rule", String(16), nullable=False),
    Column("session_idle_minutes", Integer, nullable=False),
    Column("session_absolute_minutes", Integer, nullable=False),
    Column("updated_at", String(32), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)


@dataclass(frozen=True)
class TenantPolicy:
    care_rule: CareRule = CareRule.TENANT_WIDE
    session_idle: timedelta = timedelta(minutes=15)
    session_absolute: timedelta = timedelta(hours=12)

    def __post_init__(self) -> None:
        if not timedelta(minutes=1) <= self.session_idle <= self.session_absolute:
            raise ValueError("the idle limit must be at least a minute and within the absolute")
        if self.session_absolute > timedelta(hours=24):
            raise ValueError("a session lives at most 24 hours")


DEFAULT_POLICY = TenantPolicy()


def load_policy(conn: Connection, tenant_id: str) -> TenantPolicy:
    row = conn.execute(
        select(tenant_policies).where(tenant_policies.c.tenant_id == tenant_id)
    ).one_or_none()
    if row is None:
        return DEFAULT_POLICY
    return TenantPolicy(
        care_rule=CareRule(row.care_rule),
        session_idle=timedelta(minutes=row.session_idle_minutes),
        session_absolute=timedelta(minutes=row.session_absolute_minutes),
    )


def store_policy(conn: Connection, tenant_id: str, policy: TenantPolicy, now: str) -> None:
    """Insert or replace the tenant's policy inside the caller's transaction (audit it there)."""
    values = {
        "care_rule": policy.care_rule.value,
        "session_idle_minutes": int(policy.session_idle.total_seconds() // 60),
        "session_absolute_minutes": int(policy.session_absolute.total_seconds() // 60),
        "updated_at": now,
    }
    updated = conn.execute(
        tenant_policies.update().where(tenant_policies.c.tenant_id == tenant_id).values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(tenant_policies.insert().values(tenant_id=tenant_id, **values))
