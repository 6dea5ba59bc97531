"""Sign-in throttling: slow down, then lock for a while, never for good.

Counted per (tenant, email hash) rather than per user, so an email with no account is
throttled exactly like one with an account and the answers tell nothing apart. After
SLOW_AFTER consecutive failures each further attempt must wait (1, 2, 4, 8 … seconds);
after LOCK_AFTER the address is locked for LOCK_FOR, and the lock lapses by itself. A
success, or a completed password reset (which needs the mailbox and the second factor),
clears the count, so an attacker can delay a victim but never shut them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import Connection, delete, insert, select, update

from carevault.clock import isoformat
from carevault.errors import CareVaultError
from carevault.identity.account_models import sign_in_throttle

SLOW_AFTER = 5
LOCK_AFTER = 10
LOCK_FOR = timedelta(minutes=15)
MAX_DELAY = timedelta(minutes=5)


class Throttled(CareVaultError):
    status, code = 429, "throttled"

    def __init__(self, retry_after: timedelta) -> None:
        self.retry_after_seconds = max(1, int(-(-retry_after.total_seconds() // 1)))
        super().__init__(
            f"too many failed sign-in attempts; try again in {self.retry_after_seconds} s"
        )


class Escalation(Enum):
    NONE = "none"
    SLOWED = "slowed"
    """The attempt that started the slow-down: the account holder is told."""
    LOCKED = "locked"


@dataclass(frozen=True)
class FailureOutcome:
    failures: int
    escalation: Escalation


def delay_after(failures: int) -> timedelta:
    if failures < SLOW_AFTER:
        return timedelta(0)
    return min(timedelta(seconds=2 ** (failures - SLOW_AFTER)), MAX_DELAY)


def wait_needed(conn: Connection, tenant_id: str, email_hash: str, now: datetime) -> timedelta:
    """How long before another attempt may be made (zero: go ahead)."""
    row = conn.execute(
        select(sign_in_throttle.c.next_attempt_at, sign_in_throttle.c.locked_until).where(
            sign_in_throttle.c.tenant_id == tenant_id,
            sign_in_throttle.c.email_hash == email_hash,
        )
    ).one_or_none()
    if row is None:
        return timedelta(0)
    stamp = isoformat(now)
    for until in (row.locked_until, row.next_attempt_at):
        if until is not None and until > stamp:
            return datetime.fromisoformat(until) - now
    return timedelta(0)


def record_failure(
    conn: Connection, tenant_id: str, email_hash: str, now: datetime
) -> FailureOutcome:
    key = (sign_in_throttle.c.tenant_id == tenant_id) & (
        sign_in_throttle.c.email_hash == email_hash
    )
    row = conn.execute(
        select(sign_in_throttle.c.failures, sign_in_throttle.c.locked_until).where(key)
    ).one_or_none()
    stamp = isoformat(now)
    lapsed = row is not None and row.locked_until is not None and row.locked_until <= stamp
    failures = 1 if row is None or lapsed else row.failures + 1
    locked_until = isoformat(now + LOCK_FOR) if failures >= LOCK_AFTER else None
    delay = delay_after(failures)
    values = {
        "failures": 0 if locked_until else failures,  # a fresh count once the lock lapses
        "last_failure_at": stamp,
        "next_attempt_at": isoformat(now + delay) if delay and not locked_until else None,
        "locked_until": locked_until,
    }
    if row is None:
        conn.execute(
            insert(sign_in_throttle).values(tenant_id=tenant_id, email_hash=email_hash, **values)
        )
    else:
        conn.execute(update(sign_in_throttle).where(key).values(**values))
    if locked_until:
        escalation = Escalation.LOCKED
    elif failures == SLOW_AFTER:
        escalation = Escalation.SLOWED
    else:
        escalation = Escalation.NONE
    return FailureOutcome(failures, escalation)


def clear(conn: Connection, tenant_id: str, email_hash: str) -> None:
    conn.execute(
        delete(sign_in_throttle).where(
            sign_in_throttle.c.tenant_id == tenant_id,
            sign_in_throttle.c.email_hash == email_hash,
        )
    )


def locked_until(conn: Connection, tenant_id: str, email_hash: str, now: datetime) -> str | None:
    until = conn.execute(
        select(sign_in_throttle.c.locked_until).where(
            sign_in_throttle.c.tenant_id == tenant_id,
            sign_in_throttle.c.email_hash == email_hash,
        )
    ).scalar_one_or_none()
    return until if until is not None and until > isoformat(now) else None
