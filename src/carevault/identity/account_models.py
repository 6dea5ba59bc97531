"""Tables for sign-in: second factors, throttling, sessions and password resets.

Secrets are never stored in the clear: TOTP secrets and phone numbers are sealed with the
tenant's "accounts" sub-key, session and reset tokens are kept only as SHA-256 hashes.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
)

from carevault.database import metadata

_USER_FK = (["tenant_id", "user_id"], ["users.tenant_id", "users.user_id"])

account_factors = Table(
    "account_factors",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("user_id", String(36), primary_key=True),
    # The confirmed TOTP secret.
    Column("totp_sealed", LargeBinary, nullable=True),
    # A secret handed out at enrolment, confirmed by its first code.
    Column("totp_pending_sealed", LargeBinary, nullable=True),
    # The last time-step accepted: a code is usable once, and never an older one.
    Column("totp_last_step", Integer, nullable=True),
    Column("phone_sealed", LargeBinary, nullable=True),
    Column("last_sign_in_at", String(32), nullable=True),
    Column("updated_at", String(32), nullable=False),
    ForeignKeyConstraint(*_USER_FK),
)

webauthn_credentials = Table(
    "webauthn_credentials",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("credential_id", String(512), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("last_used_at", String(32), nullable=True),
    ForeignKeyConstraint(*_USER_FK),
    Index("ix_webauthn_credentials_user", "tenant_id", "user_id"),
)

sign_in_throttle = Table(
    "sign_in_throttle",
    metadata,
    # Keyed by the email's keyed hash, not the user: unknown emails are throttled alike,
    # so the answers never tell whether an account exists.
    Column("tenant_id", String(36), primary_key=True),
    Column("email_hash", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", String(32), nullable=False),
    Column("next_attempt_at", String(32), nullable=True),
    Column("locked_until", String(32), nullable=True),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)

sessions = Table(
    "sessions",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("session_id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("token_hash", String(64), nullable=False),
    # "mfa" (password given, second factor due), "enrol" (must enrol one), "active".
    Column("stage", String(16), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("last_seen_at", String(32), nullable=False),
    # The absolute limit.
    Column("expires_at", String(32), nullable=False),
    # Until when a sensitive change (email, phone, factors) needs no re-authentication.
    Column("fresh_until", String(32), nullable=True),
    Column("challenge", String(128), nullable=True),
    Column("challenge_kind", String(16), nullable=True),
    Column("ended_at", String(32), nullable=True),
    Column("ended_reason", String(32), nullable=True),
    ForeignKeyConstraint(*_USER_FK),
    Index("ix_sessions_token", "tenant_id", "token_hash", unique=True),
    Index("ix_sessions_user", "tenant_id", "user_id"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("reset_id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("used_at", String(32), nullable=True),
    Column("challenge", String(128), nullable=True),
    ForeignKeyConstraint(*_USER_FK),
    Index("ix_password_resets_token", "tenant_id", "token_hash", unique=True),
)
