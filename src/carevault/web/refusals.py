"""Auditing refusals that happen before anyone is known: no token, a bad token, a body too large."""

from __future__ import annotations

from carevault.audit.models import Action, AuditRecord, Outcome, RequestInfo
from carevault.clock import isoformat
from carevault.runtime import Runtime


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def audit_anonymous_refusal(
    runtime: Runtime,
    *,
    token: str | None,
    status: int,
    reason: str,
    method: str,
    path: str,
    info: RequestInfo,
) -> None:
    """Record the refusal in the chain of the tenant the token names, else the vendor chain."""
    record = AuditRecord(
        recorded_at=isoformat(runtime.clock.now()),
        actor_id="anonymous",
        actor_role="none",
        action=Action.LOGIN if status == 401 else Action.ADMIN,
        outcome=Outcome.DENIED if status == 401 else Outcome.INVALID,
        status=status,
        request_id=info.request_id,
        source_ip=info.source_ip,
        user_agent=info.user_agent,
        detail=f"{reason}; {method} {path}",  # the path holds ids only; never the query
    )
    runtime.identity.audit_refusal(runtime.identity.tenant_of_token(token), record)
