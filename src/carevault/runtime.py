"""The composition root: opens the database, key store and committer, and hands out gates.

The web app and the command line build on this; neither touches keys or records directly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select

from carevault.audit.chain import Verification
from carevault.audit.models import RequestInfo, audit_heads
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, SystemClock
from carevault.committer import GroupCommitter
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import Vault
from carevault.database import analyze, make_engine
from carevault.identity.account_base import AccountDeps
from carevault.identity.accounts import AccountService
from carevault.identity.models import Actor
from carevault.identity.service import IdentityService
from carevault.identity.webauthn_factor import RelyingParty
from carevault.messaging.sender import NotificationSender
from carevault.messaging.service import NotificationService
from carevault.policy import PrivacyPolicy, load_policy, load_profile
from carevault.policy.posting import PolicyPosts
from carevault.policy.versions import LivePolicy, PolicyTimeline
from carevault.privacy.break_glass import BreakGlass
from carevault.privacy.bulk_jobs import BulkExports
from carevault.privacy.disclosure.desk import DisclosureDesk
from carevault.privacy.gate import Gate
from carevault.privacy.minimum_necessary import MinimumNecessary
from carevault.privacy.oversight.background import Oversight
from carevault.privacy.oversight.rules import VolumeRule
from carevault.privacy.profiles.loader import load_profiles
from carevault.privacy.relationships import Representations
from carevault.privacy.services import GateServices
from carevault.privacy.shredding import KeyCustody
from carevault.settings import Settings

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

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
        # The privacy policy as code: the gate and the disclosure path ask it. The configured
        # file is version 0; a posted version answers from the instant it takes effect.
        pf = settings.policy_file
        configured = load_policy(pf) if pf else load_profile(settings.policy_profile)
        timeline = PolicyTimeline(self.reader, self.clock, configured)
        timeline.reload()
        self.policy: PrivacyPolicy = LivePolicy(timeline)
        self.gate_services = GateServices(
            reader=self.reader,
            committer=self.committer,
            vault=self.vault,
            clock=self.clock,
            default_count=settings.search_default_count,
            max_count=settings.search_max_count,
            minimum_necessary=minimum_necessary or load_profiles(),
            phi_purposes=lambda: self.policy.phi_purposes_of_use,
        )
        self.audit = self.gate_services.audit
        # Posting a new policy version (`carevault policy post`, /admin/privacy-policy).
        self.policy_posts = PolicyPosts(timeline, self.committer, self.audit, self.clock)
        self.identity = IdentityService(
            self.reader, self.committer, self.vault, self.clock, self.audit
        )
        # Sign-in, sessions, second factors, password reset, account administration.
        self.accounts = AccountService(
            AccountDeps(
                self.reader,
                self.committer,
                self.vault,
                self.clock,
                self.audit,
                RelyingParty.from_origin(settings.public_origin),
            ),
            self.identity,
        )
        self.identity.session_authenticator = self.accounts.authenticate_session
        # Crypto-shredding and key rotation, audited (`carevault keys ...`).
        self.keys = KeyCustody(self.gate_services)
        # Bulk $export jobs: one worker thread, running each job as its requester.
        self.exports = BulkExports(self.gate_services, settings.home, self.gate)
        # Notifications: the outbox is delivered by deliver_due(), or by the sender thread
        # that `carevault serve` starts (start_notification_sender).
        self.notifications = NotificationService(
            self.reader, self.committer, self.vault, self.clock, self.audit, settings
        )
        self._notification_sender: NotificationSender | None = None
        self._retention_scheduler: BackgroundScheduler | None = None
        # Reach beyond one's own record: emergency grants, representatives, workforce links.
        self.break_glass = BreakGlass(self.gate_services)
        self.representations = Representations(
            self.gate_services, lambda actor, pid: self.gate(actor).read("Patient", pid)
        )
        # The one disclosure path, which asks the privacy policy.
        self.disclosures = DisclosureDesk(self.gate_services, self.policy, self.gate)
        # Snooping alerts: the sentinel reads the audit chain after the fact (start_sentinel).
        self.oversight = Oversight(
            self.gate_services,
            self.gate,
            VolumeRule(
                settings.snooping_volume_multiplier,
                settings.snooping_volume_floor,
                settings.snooping_volume_window_days,
            ),
            interval_seconds=settings.snooping_scan_seconds,
        )

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

    def start_sentinel(self) -> None:
        """Scan the audit chains in the background (the served app; tests call scan())."""
        self.oversight.start()

    def start_retention_schedule(self) -> None:
        """Run the retention job for every tenant on its timetable (the served app)."""
        hours = self.settings.retention_run_hours
        if self._retention_scheduler is None and hours > 0:
            from carevault.retention import schedule  # APScheduler only where it is used

            self._retention_scheduler = schedule.start(self, hours)

    def start_notification_sender(self) -> None:
        """Deliver due notifications every few seconds in the background (the served app)."""
        if self._notification_sender is None:
            self._notification_sender = NotificationSender(
                self.notifications,
                self.settings.notifications_poll_seconds,
                before_each_round=(self.disclosures.release_due_notices,),
            )
            self._notification_sender.start()

    def close(self) -> None:
        if self._retention_scheduler is not None:
            self._retention_scheduler.shutdown(wait=True)  # a run in flight finishes first
        if self._notification_sender is not None:
            self._notification_sender.stop()  # before the committer: a round records its sends
        self.oversight.close()  # before the committer: a scan in flight finishes its write
        self.exports.close()  # before the committer: a stopped job records its failure
        self.committer.close()
        self.reader.dispose()
        self.writer.dispose()
        self.vault.close()
