"""What every gate needs, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock
from carevault.committer import GroupCommitter
from carevault.crypto.vault import Vault
from carevault.privacy.minimum_necessary import MinimumNecessary, RoleProfiles
from carevault.records.store import RecordStore


@dataclass
class GateServices:
    reader: Engine
    committer: GroupCommitter
    vault: Vault
    clock: Clock
    default_count: int = 20
    max_count: int = 100
    minimum_necessary: MinimumNecessary = field(default_factory=RoleProfiles)
    phi_purposes: frozenset[str] | Callable[[], frozenset[str]] | None = None
    """The PurposeOfUse codes the deployment's privacy policy uses PHI for (None: any); a
    callable is asked at each decision (the runtime: the policy version in effect now)."""
    store: RecordStore = field(init=False)
    audit: AuditRecorder = field(init=False)

    def __post_init__(self) -> None:
        self.store = RecordStore(self.vault)
        self.audit = AuditRecorder(self.vault)

    def purposes_in_effect(self) -> frozenset[str] | None:
        found = self.phi_purposes
        return found() if callable(found) else found
