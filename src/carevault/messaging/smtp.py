"""Sending over SMTP (stdlib smtplib): build one message per recipient, classify the answer.

5xx answers to a recipient or to the message are permanent; 4xx answers, dropped connections
and timeouts are temporary. A refused sender, HELO or login is a problem of this server's
configuration, not of the message, so it is temporary too: fixing the settings lets the
queued messages go. Nothing here logs or returns an address or a name.

A message sent on behalf of a user is From "<user> via <tenant>" at the deployment's own
address, with Sender: the deployment (RFC 5322 3.6.2: the author is the user, the agent that
sent it is us); the address stays ours, so SPF/DKIM/DMARC still pass and replies never go to
an address we did not verify. A system notice is From the tenant alone, with no Sender.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from types import TracebackType

from carevault.errors import Invalid
from carevault.messaging.guard import check_header
from carevault.messaging.models import DeliveryOutcome
from carevault.messaging.templates import Rendered
from carevault.settings import Settings


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    starttls: bool
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """None when no SMTP server is configured (messages then stay pending)."""
        if not settings.smtp_host:
            return None
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout_seconds,
        )


@dataclass(frozen=True)
class SendResult:
    outcome: DeliveryOutcome
    code: int | None
    reason: str


MAX_NAME = 64
"""A user's name in a From header is cut to this many characters (a header line stays short)."""


def build_message(
    rendered: Rendered,
    *,
    to: str,
    sender: str,
    display_name: str,
    sent_at: datetime,
    on_behalf_of: str | None = None,
) -> EmailMessage:
    """One email to one address. Every header value is refused if it holds CR or LF, except
    the user's name of `on_behalf_of` (typed by a person): that one is neutralised instead."""
    check_header(display_name, "From")
    check_header(sender, "From")
    msg = EmailMessage()
    if on_behalf_of is not None:
        user = user_display_name(on_behalf_of)
        if not user:  # never quietly sent as the tenant's own notice
            raise Invalid("a message sent for a user needs the user's name")
        # Address quotes and escapes the display name; it cannot add a header or an address.
        msg["From"] = Address(display_name=f"{user} via {display_name}", addr_spec=sender)
        msg["Sender"] = Address(display_name=display_name, addr_spec=sender)
    else:
        msg["From"] = formataddr((display_name, sender))
    msg["To"] = check_header(to, "To")
    msg["Subject"] = check_header(rendered.subject, "Subject")
    msg["Date"] = format_datetime(sent_at)
    msg["Message-ID"] = make_msgid(domain=_domain(sender))
    # Tells autoresponders not to answer (RFC 3834).
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    if rendered.html:
        msg.add_alternative(rendered.html, subtype="html")
    return msg


def user_display_name(name: str) -> str:
    """A person's name made safe for a display name: control and format characters (CR, LF,
    NUL, tabs, bidi overrides) and line separators become spaces, runs of space one, the
    length capped. Quotes and other specials are left for Address to quote."""
    cleaned = "".join(
        " " if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")
        else ch
        for ch in name
    )  # fmt: skip
    return " ".join(cleaned.split())[:MAX_NAME].strip()


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


class SmtpSession:
    """One connection for a round of deliveries, opened on the first send, reopened after
    a dropped connection."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            # The server may already have gone away; nothing is lost.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._client.quit()
            self._client = None

    def send(self, msg: EmailMessage, to: str) -> SendResult:
        try:
            client = self._connect()
            client.send_message(msg, from_addr=self._config.sender, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0] if exc.recipients else None
            return _by_code(code, "recipient")
        except smtplib.SMTPDataError as exc:
            self._reset()
            return _by_code(exc.smtp_code, "data")
        except (
            smtplib.SMTPSenderRefused,
            smtplib.SMTPHeloError,
            smtplib.SMTPConnectError,
        ) as exc:
            self.close()
            return SendResult(DeliveryOutcome.TEMPORARY_FAILURE, exc.smtp_code, "server-config")
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            return SendResult(DeliveryOutcome.TEMPORARY_FAILURE, exc.smtp_code, "auth")
        except smtplib.SMTPResponseException as exc:
            self.close()
            return _by_code(exc.smtp_code, "smtp")
        except (smtplib.SMTPException, OSError):
            self.close()
            return SendResult(DeliveryOutcome.TEMPORARY_FAILURE, None, "connection")
        return SendResult(DeliveryOutcome.SENT, 250, "sent")

    def _connect(self) -> smtplib.SMTP:
        if self._client is not None:
            return self._client
        config = self._config
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            if config.starttls:
                client.starttls(context=ssl.create_default_context())
            if config.username and config.password:
                client.login(config.username, config.password)
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def _reset(self) -> None:
        """After a refused message the connection may be mid-transaction: RSET or reconnect."""
        if self._client is None:
            return
        try:
            self._client.rset()
        except (smtplib.SMTPException, OSError):
            self.close()


def _by_code(code: int | None, where: str) -> SendResult:
    if code is not None and 500 <= code < 600:
        return SendResult(DeliveryOutcome.PERMANENT_FAILURE, code, where)
    return SendResult(DeliveryOutcome.TEMPORARY_FAILURE, code, where)
