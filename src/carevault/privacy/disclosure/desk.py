"""The disclosure services, built once per process (Runtime.disclosures)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from carevault.clock import isoformat
from carevault.identity.models import Actor
from carevault.policy import PrivacyPolicy
from carevault.privacy.authorizations import Authorizations
from carevault.privacy.disclosure.legal import LegalRecords
from carevault.privacy.disclosure.notices import ReleaseReport, release_due_notices
from carevault.privacy.disclosure.service import Disclosures
from carevault.privacy.gate import Gate
from carevault.privacy.services import GateServices


class DisclosureDesk:
    def __init__(
        self, services: GateServices, policy: PrivacyPolicy, gate: Callable[[Actor], Gate]
    ) -> None:
        self._s = services
        self.policy = policy
        self.service = Disclosures(services, policy)
        self.authorizations = Authorizations(services, gate)
        self.legal = LegalRecords(services)

    def release_due_notices(self, now: datetime | None = None) -> ReleaseReport:
        """Send held notices whose gag has ended (the sender loop or the CLI runs this)."""
        return release_due_notices(self._s, isoformat(now or self._s.clock.now()))
