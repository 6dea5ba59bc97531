"""The composition root: opens the database, key store and committer, and hands out gates.

The web app and the command line build on this; neither touches keys or records directly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select

from carevault.audit.chain import Verification
from carevault.audit.models import audit_heads
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, SystemClock
from carevault.committer import GroupCommitter
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import Vault
from carevault.database import analyze, make_engine
from carevault.identity.models import Actor
from carevault.identity.service import IdentityService
from carevault.privacy.bulk_jobs import BulkExports
from carevault.privacy.gate import Gate, RequestInfo
from carevault.privacy.minimum_necessary import MinimumNecessary, RoleProfiles
from carevault.privacy.services import GateServices
from carevault.settings import Settings

log = logging.getLogger("carevault")
MIGRATIONS = Path(__file__).parent / "migrations"


class NotInitialized(Exception):
    """The data folder or key store is missing: run `carevault init`."""


@dataclass(frozen=True)
class InitReport:
    created_keys: bool
    keystore_path: Path


def alembic_config(url: str) -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = url
    return config


def initialize(settings: Settings) -> InitReport:
    """Create the data folder, master key and key store if missing; migrate the database."""
    # Only the service account may read the data folder: it holds the key store.
    os.umask(0o077)
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    settings.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keystore_path = settings.resolved_keystore_path
    created = not Vault.exists(keystore_path)
    vault = Vault.create(keystore_path) if created else Vault.open(keystore_path)
    url = settings.resolved_database_url
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url, writer=True, pool_size=1)
    try:
        with engine.begin() as conn:
            exists = conn.execute(
                select(audit_heads.c.tenant_id).where(audit_heads.c.tenant_id == VENDOR_CHAIN)
            ).first()
            if exists is None:
                AuditRecorder(vault).start_chain(conn, VENDOR_CHAIN)
    finally:
        engine.dispose()
        vault.close()
    return InitReport(created, keystore_path)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        minimum_necessary: MinimumNecessary | None = None,
    ) -> None:
        keystore_path = settings.resolved_keystore_path
        if not Vault.exists(keystore_path):
            raise NotInitialized(f"no key store at {keystore_path}: run `carevault init` first")
        self.settings = settings
        self.clock = clock or SystemClock()
        self.vault = Vault.open(keystore_path)
        url = settings.resolved_database_url
        self.reader: Engine = make_engine(url, writer=False)
        self.writer: Engine = make_engine(url, writer=True, pool_size=2)
        self.committer = GroupCommitter(self.writer, batch_max=settings.commit_batch_max)
        self.gate_services = GateServices(
            reader=self.reader,
            committer=self.committer,
            vault=self.vault,
            clock=self.clock,
            default_count=settings.search_default_count,
            max_count=settings.search_max_count,
            minimum_necessary=minimum_necessary or RoleProfiles(),
        )
        self.audit = self.gate_services.audit
        self.identity = IdentityService(
            self.reader, self.committer, self.vault, self.clock, self.audit
        )
        # Bulk $export jobs: one worker thread, running each job as its requester.
        self.exports = BulkExports(self.gate_services, settings.home, self.gate)

    def gate(self, actor: Actor, request: RequestInfo | None = None) -> Gate:
        return Gate(self.gate_services, actor, request or RequestInfo())

    def audit_verification(self, tenant_id: str) -> Verification:
        with self.reader.connect() as conn:
            return self.audit.verify(conn, tenant_id)

    def refresh_statistics(self) -> None:
        """After bulk loads (demo seed, imports): let the planner see the new data."""
        analyze(self.writer)

    def escrow_master_key(self, passphrase: str) -> bytes:
        return self.vault.escrow(passphrase)

    def close(self) -> None:
        self.exports.close()  # before the committer: a stopped job records its failure
        self.committer.close()
        self.reader.dispose()
        self.writer.dispose()
        self.vault.close()
