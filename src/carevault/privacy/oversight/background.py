"""Oversight wiring: the sentinel, the officer's service, and the thread that scans.

The thread waits in real time between scans (the clock it is given decides "today", not
when to wake), scans every tenant in turn, and logs failures without PHI; a failed scan
leaves the watermark where it was, so the next one retries the same entries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import select

from carevault.identity.models import Actor, tenants
from carevault.privacy.gate import Gate
from carevault.privacy.oversight.rules import VolumeRule
from carevault.privacy.oversight.sentinel import ScanReport, Sentinel
from carevault.privacy.oversight.service import OversightService
from carevault.privacy.services import GateServices

log = logging.getLogger("carevault.oversight")


class Oversight:
    def __init__(
        self,
        services: GateServices,
        open_gate: Callable[[Actor], Gate],
        rule: VolumeRule,
        *,
        interval_seconds: float,
    ) -> None:
        self._s = services
        self.sentinel = Sentinel(services, open_gate, rule)
        self.service = OversightService(
            services.reader, services.committer, services.vault, services.clock, services.audit
        )
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def scan_all(self) -> list[ScanReport]:
        with self._s.reader.connect() as conn:
            ids = list(conn.execute(select(tenants.c.tenant_id).order_by(tenants.c.slug)).scalars())
        return [self.sentinel.scan(tenant_id) for tenant_id in ids]

    def start(self) -> None:
        """Scan every `interval_seconds` in a daemon thread (no-op if 0 or already running)."""
        if self._interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="snooping-sentinel", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                reports = self.scan_all()
            except Exception:  # the loop must outlive one bad scan; logged
                log.exception("snooping scan failed; it will be retried")
                continue
            raised = sum(len(r.raised) for r in reports)
            if raised:
                log.info("snooping scan raised alerts", extra={"alerts": raised})
