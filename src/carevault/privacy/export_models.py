"""The bulk export jobs table: who asked, what state the job is in, and what it wrote.

No PHI here: ids, types, counts, instants and the kick-off URL (its path holds ids
only, its query `_type`, `_since` and `_outputFormat`).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKeyConstraint, Index, Integer, String, Table, Text

from carevault.database import metadata

export_jobs = Table(
    "export_jobs",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("job_id", String(36), primary_key=True),
    Column("user_id", String(128), nullable=False),  # only they may poll, download, cancel
    Column("level", String(16), nullable=False),  # system, patient, group
    Column("state", String(16), nullable=False),  # queued, running, completed, failed
    Column("request_url", Text, nullable=False),
    Column("transaction_time", String(32), nullable=False),
    Column("completed_at", String(32), nullable=True),
    Column("expires_at", String(32), nullable=True),
    Column("progress", Integer, nullable=False),
    Column("output", Text, nullable=True),  # JSON [{type, name, count, downloaded}]
    Column("error", Text, nullable=True),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    Index("ix_export_jobs_expires", "tenant_id", "expires_at"),
)
