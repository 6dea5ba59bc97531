"""Audit tables and the value type of one entry."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from carevault.database import metadata


class Action(StrEnum):
    CREATE = "create"
    READ = "read"
    VREAD = "vread"
    SEARCH = "search"
    UPDATE = "update"
    DELETE = "delete"
    HISTORY = "history"
    EXPORT = "export"
    IMPORT = "import"
    LOGIN = "login"
    EVERYTHING = "everything"
    """Patient/$everything: one entry naming the patient and every resource returned."""
    VALIDATE = "validate"
    """$validate: nothing read or stored; the resource type is named, no ids."""
    ADMIN = "admin"
    """Tenant, user and token administration; what was done is in `detail`."""


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    """Refused by policy: no permission, or not visible to this actor."""
    INVALID = "invalid"
    """Refused as bad input (validation, version conflict, unknown parameter)."""
    NOT_FOUND = "not-found"
    """Nothing the actor may see answers to that id (missing, or hidden from them)."""
    FAILED = "failed"
    """The server could not do it."""


audit_entries = Table(
    "audit_entries",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("recorded_at", String(32), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("actor_id", String(128), nullable=False),
    Column("actor_role", String(32), nullable=False),
    Column("on_behalf_of", String(128), nullable=True),
    Column("action", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer, nullable=True),
    Column("purpose", String(16), nullable=True),
    Column("resource_type", String(64), nullable=True),
    Column("resource_ids", Text, nullable=False),
    Column("patient_ids", Text, nullable=False),
    Column("source_ip", String(64), nullable=True),
    Column("user_agent", String(256), nullable=True),
    Column("detail", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Column("head_mac", String(64), nullable=False),
)


class Doer(Protocol):
    """Who acted: `identity.models.Actor` has these (audit does not import identity)."""

    @property
    def user_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def purpose(self) -> StrEnum: ...


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from (web/fhir_api/deps.request_info), for its audit entry."""

    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One event, before it takes its place in a chain. No PHI: ids and codes only."""

    recorded_at: str
    actor_id: str
    actor_role: str
    action: Action
    outcome: Outcome
    status: int | None = None
    purpose: str | None = None
    resource_type: str | None = None
    resource_ids: tuple[str, ...] = ()
    patient_ids: tuple[str, ...] = ()
    request_id: str | None = None
    on_behalf_of: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    detail: str | None = None

    @classmethod
    def by(
        cls,
        actor: Doer,
        recorded_at: str,
        action: Action,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        status: int | None = 200,
        resource_type: str | None = None,
        resource_ids: tuple[str, ...] = (),
        patient_ids: tuple[str, ...] = (),
        origin: RequestInfo | None = None,
        detail: str | None = None,
    ) -> AuditRecord:
        """What ``actor`` did, under the purpose they act for (and, for a request, where it
        came from): the entry every audited service writes for its own actions."""
        return cls(
            recorded_at, actor.user_id, actor.kind, action, outcome, status,
            actor.purpose.value, resource_type, resource_ids, patient_ids,
            origin.request_id if origin else None, None,
            origin.source_ip if origin else None, origin.user_agent if origin else None, detail,
        )  # fmt: skip
