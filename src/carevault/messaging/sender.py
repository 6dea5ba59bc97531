"""The background sender of `carevault serve`: a round of deliveries every few seconds.

It polls in real time, but what is due is decided by the injected clock (the rows'
next_attempt_at), so tests move the clock and call `deliver_due` rather than wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from carevault.messaging.service import NotificationService

log = logging.getLogger("carevault.notifications")


class NotificationSender:
    def __init__(
        self,
        service: NotificationService,
        poll_seconds: float,
        before_each_round: Sequence[Callable[[], object]] = (),
    ) -> None:
        self._service = service
        # E.g. releasing held disclosure notices whose gag ended: they join this round.
        self._before = tuple(before_each_round)
        self._poll = max(poll_seconds, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="carevault-notifications", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for step in self._before:
                    step()
                self._service.deliver_due()
            except Exception as exc:  # one bad round must not end the sender; no PHI in the log
                log.error("notification round failed", extra={"error": type(exc).__name__})
            self._stop.wait(self._poll)
