"""De-identification tables: research projects, their patients' pseudonyms, and releases.

Nothing here is readable without the tenant's keys: a project's secret and each
patient-to-code link are sealed under a tenant sub-key, and rows are found by keyed hashes.
A release row holds counts, rule hashes and digests of what left, never a value.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKeyConstraint, Index, LargeBinary, String, Table, Text

from carevault.database import metadata

deid_projects = Table(
    "deid_projects",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("project_id", String(36), primary_key=True),
    Column("name", String(128), nullable=False),  # chosen by the operator: "diabetes-2026"
    Column("sealed_secret", LargeBinary, nullable=False),  # keys the non-patient pseudonyms
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    Index("ix_deid_projects_name", "tenant_id", "name", unique=True),
)

deid_pseudonyms = Table(
    "deid_pseudonyms",
    metadata,
    # One random re-identification code per (project, patient): found by keyed hashes of the
    # patient id (export) or of the code (re-identification); the link itself is sealed.
    Column("tenant_id", String(36), primary_key=True),
    Column("project_id", String(36), primary_key=True),
    Column("patient_hash", String(64), primary_key=True),
    Column("code_hash", String(64), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", String(32), nullable=False),
    ForeignKeyConstraint(
        ["tenant_id", "project_id"], ["deid_projects.tenant_id", "deid_projects.project_id"]
    ),
    Index("ix_deid_pseudonyms_code", "tenant_id", "project_id", "code_hash", unique=True),
)

deid_releases = Table(
    "deid_releases",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("release_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),  # export, aggregate
    Column("project", String(128), nullable=True),
    Column("profile", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("actor_id", String(128), nullable=False),
    Column("released_at", String(32), nullable=False),
    Column("detail", Text, nullable=False),  # JSON: counts, rule hashes, output digest
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    Index("ix_deid_releases_time", "tenant_id", "released_at"),
)
