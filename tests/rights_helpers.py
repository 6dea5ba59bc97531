"""Helpers for the rights tests: a policy with the CCPA rights, the service wired to it,
actors from the fixture's tokens, and reads of the audit chain and the outbox."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from sqlalchemy import select

from carevault.audit.models import RequestInfo, audit_entries
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.identity.models import Actor
from carevault.messaging.models import notification_outbox
from carevault.policy import PrivacyPolicy, parse_policy, policies_dir
from carevault.rights.statements import RightsService
from carevault.rights.wiring import hooks_for
from carevault.runtime import Runtime
from tests.conftest import Site

WHO = RequestInfo("test-request")
CCPA = {"law": "ccpa", "deadline_days": 45, "extension_days": 45, "authorized_agent": True}


def rights_policy(**document: Any) -> PrivacyPolicy:
    """The default policy, plus the CCPA rights and a sensitive category of vendor data."""
    raw = yaml.safe_load((policies_dir() / "default.yaml").read_text(encoding="utf-8"))
    raw["categories"]["biometric"] = {
        "kind": "personal",
        "description": "Face geometry for sign-in.",
        "sensitive": True,
    }
    raw["rights"]["hipaa-access"]["fee"] = "cost-based"
    raw["rights"] |= {
        "ccpa-know": {**CCPA, "max_per_12_months": 2},
        "ccpa-access": {**CCPA, "max_per_12_months": 2},
        "ccpa-delete": dict(CCPA),
        "ccpa-correct": dict(CCPA),
    }
    raw |= document
    return parse_policy(yaml.safe_dump(raw), "rights-test")


def wire(rt: Runtime, policy: PrivacyPolicy | None = None, **kwargs: Any) -> RightsService:
    """The rights service on this runtime (the API and CLI use it), with a test policy."""
    chosen = policy or rights_policy()
    service = RightsService(rt.gate_services, rt.gate, lambda: chosen, **kwargs)
    service.hooks = hooks_for(rt)
    setattr(rt, "rights", service)  # noqa: B010 (the runtime builds none yet)
    return service


def actor(rt: Runtime, site: Site, role: str) -> Actor:
    return rt.identity.authenticate(site.tokens[role])


def rights_audit(rt: Runtime, chain: str) -> list[Any]:
    with rt.reader.connect() as conn:
        return list(
            conn.execute(
                select(audit_entries)
                .where(
                    audit_entries.c.tenant_id == chain,
                    audit_entries.c.resource_type == "RightsRequest",
                )
                .order_by(audit_entries.c.seq)
            ).all()
        )


def vendor_audit(rt: Runtime) -> list[Any]:
    return rights_audit(rt, VENDOR_CHAIN)


def outbox(rt: Runtime, tenant_id: str, template: str) -> list[dict[str, Any]]:
    with rt.reader.connect() as conn:
        rows = conn.execute(
            select(notification_outbox).where(
                notification_outbox.c.tenant_id == tenant_id,
                notification_outbox.c.template == template,
            )
        ).all()
    return [{"recipient": r.recipient, **orjson.loads(r.params)} for r in rows]


ACCESS = {"action": "access", "categories": ["phi"], "channel": "portal"}
