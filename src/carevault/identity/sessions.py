"""Sign-in sessions: `cvs1.<tenant>.<256 random bits>`, stored only as a SHA-256 hash.

A session is born at the password step. Until the second factor is given ("mfa"), or the
first factor enrolled ("enrol"), it can do nothing else; then it becomes "active" under a
new token (no fixation). It ends at sign-out, after the tenant's idle limit, at its
absolute limit, or when the account is disabled, its role changes, or its password or
second factors are reset.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, and_, bindparam, insert, select, update

from carevault.clock import isoformat
from carevault.identity.account_models import sessions
from carevault.identity.models import users
from carevault.identity.service import SESSION_PREFIX
from carevault.identity.tenant_policy import (
    DEFAULT_POLICY,
    CareRule,
    TenantPolicy,
    tenant_policies,
)

FRESH_FOR = timedelta(minutes=5)
"""How long a re-authentication lets sensitive changes through."""
PENDING_FOR = timedelta(minutes=10)
"""A half-signed-in session must give its second factor within this."""
TOUCH_EVERY = timedelta(seconds=60)
"""last_seen_at is written at most this often: the idle limit is counted in minutes."""


class Stage(StrEnum):
    MFA = "mfa"
    ENROL = "enrol"
    ACTIVE = "active"


@dataclass(frozen=True)
class Opened:
    session_id: str
    token: str
    expires_at: str


@dataclass(frozen=True)
class SessionRow:
    tenant_id: str
    session_id: str
    user_id: str
    stage: Stage
    purpose: str
    created_at: str
    last_seen_at: str
    expires_at: str
    fresh_until: str | None
    challenge: str | None
    challenge_kind: str | None
    ended_at: str | None
    role: str
    active: bool
    patient_id: str | None
    email_hash: str
    policy: TenantPolicy
    practitioner_id: str | None = None
    may_break_glass: bool = False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(tenant_id: str) -> str:
    return f"{SESSION_PREFIX}.{tenant_id}.{secrets.token_urlsafe(32)}"


def tenant_of(token: str | None) -> str | None:
    parts = (token or "").split(".")
    if len(parts) == 3 and parts[0] == SESSION_PREFIX and 0 < len(parts[1]) <= 36:
        return parts[1]
    return None


_LOOKUP = (
    select(
        sessions,
        users.c.role,
        users.c.active,
        users.c.patient_id,
        users.c.practitioner_id,
        users.c.may_break_glass,
        users.c.email_hash,
        tenant_policies.c.session_idle_minutes,
        tenant_policies.c.session_absolute_minutes,
        tenant_policies.c.care_rule,
    )
    .join(
        users,
        and_(users.c.tenant_id == sessions.c.tenant_id, users.c.user_id == sessions.c.user_id),
    )
    .outerjoin(tenant_policies, tenant_policies.c.tenant_id == sessions.c.tenant_id)
    .where(
        sessions.c.tenant_id == bindparam("tenant_id"),
        sessions.c.token_hash == bindparam("token_hash"),
    )
)
"""Built once: every request made with a session runs it (one query, policy included)."""


def lookup(conn: Connection, token: str | None) -> SessionRow | None:
    tenant_id = tenant_of(token)
    if tenant_id is None or token is None:
        return None
    row = conn.execute(
        _LOOKUP, {"tenant_id": tenant_id, "token_hash": token_hash(token)}
    ).one_or_none()
    if row is None:
        return None
    policy = DEFAULT_POLICY
    if row.session_idle_minutes is not None:
        policy = TenantPolicy(
            care_rule=CareRule(row.care_rule),
            session_idle=timedelta(minutes=row.session_idle_minutes),
            session_absolute=timedelta(minutes=row.session_absolute_minutes),
        )
    return SessionRow(
        tenant_id=row.tenant_id,
        session_id=row.session_id,
        user_id=row.user_id,
        stage=Stage(row.stage),
        purpose=row.purpose,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        fresh_until=row.fresh_until,
        challenge=row.challenge,
        challenge_kind=row.challenge_kind,
        ended_at=row.ended_at,
        role=row.role,
        active=bool(row.active),
        patient_id=row.patient_id,
        email_hash=row.email_hash,
        policy=policy,
        practitioner_id=row.practitioner_id,
        may_break_glass=bool(row.may_break_glass),
    )


def why_not_live(row: SessionRow, now: datetime) -> str | None:
    """None if the session may be used now; else a short, safe reason."""
    stamp = isoformat(now)
    if row.ended_at is not None:
        return "the session has ended"
    if not row.active:
        return "the account is disabled"
    if row.expires_at <= stamp:
        return "the session has expired"
    if isoformat(datetime.fromisoformat(row.last_seen_at) + row.policy.session_idle) <= stamp:
        return "the session expired after inactivity"
    return None


def is_fresh(row: SessionRow, now: datetime) -> bool:
    return row.fresh_until is not None and row.fresh_until > isoformat(now)


def open_session(
    conn: Connection,
    tenant_id: str,
    user_id: str,
    *,
    stage: Stage,
    purpose: str,
    now: datetime,
    policy: TenantPolicy,
) -> Opened:
    token = new_token(tenant_id)
    session_id = str(uuid.uuid4())
    absolute = policy.session_absolute if stage is Stage.ACTIVE else PENDING_FOR
    expires_at = isoformat(now + absolute)
    conn.execute(
        insert(sessions).values(
            tenant_id=tenant_id,
            session_id=session_id,
            user_id=user_id,
            token_hash=token_hash(token),
            stage=stage.value,
            purpose=purpose,
            created_at=isoformat(now),
            last_seen_at=isoformat(now),
            expires_at=expires_at,
            fresh_until=isoformat(now + FRESH_FOR),
            challenge=None,
            challenge_kind=None,
            ended_at=None,
            ended_reason=None,
        )
    )
    return Opened(session_id, token, expires_at)


def activate(conn: Connection, row: SessionRow, now: datetime) -> Opened:
    """The second factor is given: the session becomes active under a new token."""
    token = new_token(row.tenant_id)
    expires_at = isoformat(now + row.policy.session_absolute)
    conn.execute(
        update(sessions)
        .where(sessions.c.tenant_id == row.tenant_id, sessions.c.session_id == row.session_id)
        .values(
            token_hash=token_hash(token),
            stage=Stage.ACTIVE.value,
            expires_at=expires_at,
            last_seen_at=isoformat(now),
            fresh_until=isoformat(now + FRESH_FOR),
            challenge=None,
            challenge_kind=None,
        )
    )
    return Opened(row.session_id, token, expires_at)


def mark_fresh(conn: Connection, row: SessionRow, now: datetime) -> str:
    fresh_until = isoformat(now + FRESH_FOR)
    conn.execute(
        update(sessions)
        .where(sessions.c.tenant_id == row.tenant_id, sessions.c.session_id == row.session_id)
        .values(fresh_until=fresh_until, last_seen_at=isoformat(now), challenge=None)
    )
    return fresh_until


def set_challenge(conn: Connection, row: SessionRow, challenge: str, kind: str) -> None:
    conn.execute(
        update(sessions)
        .where(sessions.c.tenant_id == row.tenant_id, sessions.c.session_id == row.session_id)
        .values(challenge=challenge, challenge_kind=kind)
    )


def take_challenge(conn: Connection, row: SessionRow, kind: str) -> str | None:
    """The stored challenge of that kind, cleared so that it answers one response only."""
    result = conn.execute(
        update(sessions)
        .where(
            sessions.c.tenant_id == row.tenant_id,
            sessions.c.session_id == row.session_id,
            sessions.c.challenge_kind == kind,
            sessions.c.challenge.is_not(None),
        )
        .values(challenge=None, challenge_kind=None)
    )
    return row.challenge if result.rowcount == 1 and row.challenge_kind == kind else None


def touch(conn: Connection, row: SessionRow, now: datetime) -> None:
    conn.execute(
        update(sessions)
        .where(
            sessions.c.tenant_id == row.tenant_id,
            sessions.c.session_id == row.session_id,
            sessions.c.last_seen_at < isoformat(now),
        )
        .values(last_seen_at=isoformat(now))
    )


def needs_touch(row: SessionRow, now: datetime) -> bool:
    return datetime.fromisoformat(row.last_seen_at) + TOUCH_EVERY <= now


def end(conn: Connection, tenant_id: str, session_id: str, now: datetime, reason: str) -> bool:
    result = conn.execute(
        update(sessions)
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.session_id == session_id,
            sessions.c.ended_at.is_(None),
        )
        .values(ended_at=isoformat(now), ended_reason=reason)
    )
    return result.rowcount == 1


def end_all(conn: Connection, tenant_id: str, user_id: str, now: datetime, reason: str) -> int:
    """End every live session of one user at once (sign out everywhere, disable, resets)."""
    result = conn.execute(
        update(sessions)
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.user_id == user_id,
            sessions.c.ended_at.is_(None),
        )
        .values(ended_at=isoformat(now), ended_reason=reason)
    )
    return int(result.rowcount)
