"""Helpers for the sign-in tests: users with known passwords, sign-in over real HTTP, TOTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.identity.models import TenantKind
from carevault.identity.permissions import Role
from carevault.identity.service import Tenant
from carevault.identity.totp import code_at
from carevault.messaging.models import notification_outbox
from carevault.runtime import Runtime

PASSWORD = "violet kestrel harbour 42"


def tenant(rt: Runtime, slug: str = "north") -> Tenant:
    return rt.identity.create_tenant(slug, f"{slug.title()} Clinic", TenantKind.PRACTICE)


def user(rt: Runtime, t: Tenant, role: Role, email: str | None = None) -> str:
    email = email or f"{role.value}@{t.slug}.example.org"
    return rt.identity.create_user(t, email, role, password=PASSWORD)


def sign_in(
    client: TestClient, slug: str, email: str, password: str = PASSWORD, **extra: Any
) -> Any:
    body = {"tenant": slug, "email": email, "password": password, "delivery": "bearer", **extra}
    return client.post("/auth/sign-in", json=body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def enrol_totp(client: TestClient, rt: Runtime, token: str) -> tuple[str, str]:
    """Enrol an authenticator app with the session; (secret, the token to use next)."""
    uri = client.post("/auth/totp/enrol", headers=bearer(token)).json()["otpauth_uri"]
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    answer = client.post(
        "/auth/totp/confirm", headers=bearer(token), json={"code": code_at(secret, rt.clock.now())}
    )
    assert answer.status_code == 200, answer.text
    return secret, answer.json().get("token", token)


def login_entries(rt: Runtime, tenant_id: str) -> list[Any]:
    with rt.reader.connect() as conn:
        return list(
            conn.execute(
                select(audit_entries)
                .where(audit_entries.c.tenant_id == tenant_id)
                .order_by(audit_entries.c.seq)
            ).all()
        )


def outbox(rt: Runtime, tenant_id: str, template: str) -> list[dict[str, Any]]:
    with rt.reader.connect() as conn:
        rows = conn.execute(
            select(notification_outbox)
            .where(
                notification_outbox.c.tenant_id == tenant_id,
                notification_outbox.c.template == template,
            )
            .order_by(notification_outbox.c.created_at)
        ).all()
    return [{"recipient": r.recipient, **orjson.loads(r.params)} for r in rows]
