"""Posted versions of the privacy policy, and the one in effect at a given instant.

The deployment's configured file (`policy_file` or the profile) is version 0, in effect from
the start. Each posted version is stored whole, with the instant it was posted and the instant
it takes effect (posted + the `changes.effective_after_days` of the version in effect when it
was posted). `LivePolicy` is the runtime's `PrivacyPolicy`: every question it is asked is
answered by the version in effect at the clock's now, so the old rules hold until the
effective instant and the new ones from it, with no restart.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Engine, Integer, Row, String, Table, Text, select

from carevault.clock import Clock
from carevault.database import metadata
from carevault.policy.loader import parse_policy
from carevault.policy.model import PrivacyPolicy
from carevault.policy.schema import Policy

RELOAD_SECONDS = 30.0
"""How stale another process's posting may be here (`carevault policy post` while serving)."""

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("source", Text, nullable=False),  # the file as posted: what was promised, verbatim
    Column("posted_at", String(32), nullable=False),
    Column("effective_at", String(32), nullable=False),
    Column("posted_by", String(128), nullable=False),
    Column("tenants_notified", Integer, nullable=False),
)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class State(StrEnum):
    IN_EFFECT = "in-effect"
    PENDING = "pending"  # posted, not yet in effect
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    """0: the deployment's configured file."""
    policy: PrivacyPolicy
    sha256: str
    posted_at: datetime | None
    """None for version 0: in effect from the start."""
    effective_at: datetime | None
    posted_by: str = "configuration"
    tenants_notified: int = 0
    source: str | None = None
    phi_purposes: frozenset[str] = field(init=False)
    """The policy's PHI purposes of use, worked out once: the gate asks at every decision."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "phi_purposes", self.policy.phi_purposes_of_use)

    def in_effect_at(self, now: datetime) -> bool:
        return self.effective_at is None or self.effective_at <= now


def _parsed(instant: str) -> datetime:
    return datetime.fromisoformat(instant.replace("Z", "+00:00"))


class PolicyTimeline:
    """Version 0 and the posted versions, oldest first; re-read from the database at most
    every RELOAD_SECONDS (and at once after a posting in this process)."""

    def __init__(self, reader: Engine, clock: Clock, configured: PrivacyPolicy) -> None:
        self._reader = reader
        self._clock = clock
        doc = configured.document
        self._base = PolicyVersion(0, configured, digest(doc.model_dump_json()), None, None)
        self._versions: tuple[PolicyVersion, ...] = (self._base,)
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self._clock

    def versions(self) -> Sequence[PolicyVersion]:
        if time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            self.reload()
        return self._versions

    def reload(self) -> None:
        with self._lock:
            known = {v.version: v for v in self._versions}
            with self._reader.connect() as conn:
                rows = conn.execute(
                    select(policy_versions).order_by(policy_versions.c.version)
                ).all()
                conn.rollback()
            # Parse only what is new: a stored version was checked when it was posted; one
            # that no longer parses (a schema change) fails the start, loudly.
            loaded = [self._base] + [known.get(r.version) or _version_of(r) for r in rows]
            self._versions = tuple(loaded)
            self._loaded_at = time.monotonic()

    def in_effect(self, now: datetime | None = None) -> PolicyVersion:
        """The latest version whose effective instant has come (version 0 at worst)."""
        at = now or self._clock.now()
        for version in reversed(self.versions()):
            if version.in_effect_at(at):
                return version
        return self._base

    def state(self, version: PolicyVersion, now: datetime | None = None) -> State:
        at = now or self._clock.now()
        if not version.in_effect_at(at):
            return State.PENDING
        return State.IN_EFFECT if self.in_effect(at) is version else State.SUPERSEDED

    def latest(self) -> PolicyVersion:
        """The newest version, in effect or not: what a new posting is compared with."""
        return self.versions()[-1]


def _version_of(row: Row[Any]) -> PolicyVersion:
    return PolicyVersion(
        version=row.version,
        policy=parse_policy(row.source, f"policy version {row.version}"),
        sha256=row.sha256,
        posted_at=_parsed(row.posted_at),
        effective_at=_parsed(row.effective_at),
        posted_by=row.posted_by,
        tenants_notified=row.tenants_notified,
        source=row.source,
    )


class LivePolicy(PrivacyPolicy):
    """The runtime's policy: each question is answered by the version in effect now."""

    def __init__(self, timeline: PolicyTimeline) -> None:
        object.__setattr__(self, "_timeline", timeline)  # the parent is a frozen dataclass

    @property
    def timeline(self) -> PolicyTimeline:
        found: PolicyTimeline = self.__dict__["_timeline"]
        return found

    @property
    def document(self) -> Policy:
        return self.timeline.in_effect().policy.document

    @property
    def phi_purposes_of_use(self) -> frozenset[str]:
        return self.timeline.in_effect().phi_purposes
