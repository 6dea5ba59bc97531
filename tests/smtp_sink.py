"""A real local SMTP server (aiosmtpd) that keeps what it receives, for notification tests.

Fixtures (registered in tests/conftest.py):
- `smtp_sink`: a running sink; `.messages` holds what it accepted; `.answer_data("451 ...")`
  and `.answer_rcpt("550 ...")` script the next answers (then it accepts again).
- `mail_settings`: the test's `settings` pointing at the sink.
- `mail_runtime`: a Runtime on `mail_settings` with the test's clock (deliver with
  `mail_runtime.notifications.deliver_due()`).
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from carevault.clock import ManualClock
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings

SENDER = "notices@carevault.test"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return None if part is None else str(part.get_content())  # type: ignore[attr-defined]


class SmtpSink:
    """The aiosmtpd handler: accepts everything unless an answer was scripted."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.refused = 0
        self._data_answers: deque[str] = deque()
        self._rcpt_answers: deque[str] = deque()
        self._lock = threading.Lock()
        self.host = "127.0.0.1"
        self.port = 0

    def answer_data(self, *answers: str) -> None:
        """The next DATA commands get these answers, in order (e.g. '451 4.3.0 try later')."""
        with self._lock:
            self._data_answers.extend(answers)

    def answer_rcpt(self, *answers: str) -> None:
        with self._lock:
            self._rcpt_answers.extend(answers)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    def settings_for(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={"smtp_host": self.host, "smtp_port": self.port, "smtp_from": SENDER}
        )

    # aiosmtpd calls these hooks by name.
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._lock:
            if self._rcpt_answers:
                self.refused += 1
                return self._rcpt_answers.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self._data_answers:
                self.refused += 1
                return self._data_answers.popleft()
            raw = bytes(envelope.original_content or envelope.content)
            parsed = message_from_bytes(raw, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), parsed, raw)
            )
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.port = free_port()
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def mail_settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    return smtp_sink.settings_for(settings)


@pytest.fixture
def mail_runtime(mail_settings: Settings, clock: ManualClock) -> Iterator[Runtime]:
    initialize(mail_settings)
    rt = Runtime(mail_settings, clock=clock)
    yield rt
    rt.close()
