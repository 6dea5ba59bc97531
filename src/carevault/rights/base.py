"""What every rights operation shares: its audit entry, the refusal audit after a rollback,
and sealing (the requester's details under the tenant's "rights" sub-key; anything about a
patient's record under the patient's own data key, so that shredding the patient reaches it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection

from carevault.audit.models import Action, AuditRecord, Outcome, RequestInfo
from carevault.clock import isoformat
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import patient_key_name
from carevault.errors import CareVaultError
from carevault.identity.models import Actor
from carevault.privacy.gate_hooks import refusal_outcome
from carevault.privacy.services import GateServices

T = TypeVar("T")
RESOURCE = "RightsRequest"
SUBKEY = "rights"


class RightsBase:
    def __init__(self, services: GateServices) -> None:
        self._s = services

    def now(self) -> str:
        return isoformat(self._s.clock.now())

    def entry(self, actor: Actor | None, who: RequestInfo, **fields: Any) -> AuditRecord:
        values: dict[str, Any] = {
            "recorded_at": self.now(),
            "actor_id": actor.user_id if actor else "anonymous",
            "actor_role": actor.kind if actor else "visitor",
            "action": Action.ADMIN,
            "outcome": Outcome.SUCCESS,
            "status": 200,
            "purpose": actor.purpose.value if actor else None,
            "resource_type": RESOURCE,
            "request_id": who.request_id,
            "source_ip": who.source_ip,
            "user_agent": who.user_agent,
            **fields,
        }
        if actor is not None and actor.system_reason:  # a named system actor says why
            values["detail"] = f"{actor.system_reason}; {values.get('detail') or ''}".rstrip("; ")
        return AuditRecord(**values)

    def run(
        self,
        chain: str,
        actor: Actor | None,
        who: RequestInfo,
        refusal: dict[str, Any],
        check: Callable[[], None],
        job: Callable[[Connection], tuple[T, AuditRecord]],
    ) -> T:
        """`check` first (input, permission), then `job` and its audit entry in one writer
        transaction; any refusal is audited in a transaction of its own after the rollback."""
        try:
            check()
            return self._s.audit.commit_with(self._s.committer, chain, job)
        except CareVaultError as exc:
            self.refused(chain, actor, who, exc, refusal)
            raise

    def refused(
        self,
        chain: str,
        actor: Actor | None,
        who: RequestInfo,
        exc: CareVaultError,
        fields: dict[str, Any],
    ) -> None:
        fields = dict(fields)
        detail = f"{fields.pop('detail', 'rights request refused')}; {type(exc).__name__}"
        record = self.entry(
            actor,
            who,
            outcome=refusal_outcome(exc.status),
            status=exc.status,
            detail=detail,
            **fields,
        )
        self._s.audit.commit(self._s.committer, chain, record)

    # -- sealing ---------------------------------------------------------------------

    def seal_details(self, chain: str, request_id: str, details: dict[str, Any]) -> bytes:
        aad = f"{chain}|rights|{request_id}".encode()
        return self._s.vault.seal_for(chain, SUBKEY, orjson.dumps(details), aad)

    def open_details(self, chain: str, request_id: str, blob: bytes) -> dict[str, Any]:
        aad = f"{chain}|rights|{request_id}".encode()
        found = orjson.loads(self._s.vault.open_for(chain, SUBKEY, blob, aad))
        return found if isinstance(found, dict) else {}

    def seal_text(self, chain: str, patient_id: str | None, what: str, text: bytes) -> bytes:
        """Under the patient's key when it is about a record, else the chain's rights key."""
        aad = f"{chain}|rights|{what}".encode()
        if patient_id is not None and chain != VENDOR_CHAIN:
            return self._s.vault.seal_record(chain, patient_key_name(patient_id), text, aad)
        return self._s.vault.seal_for(chain, SUBKEY, text, aad)

    def open_text(self, chain: str, patient_id: str | None, what: str, blob: bytes) -> bytes | None:
        aad = f"{chain}|rights|{what}".encode()
        try:
            if patient_id is not None and chain != VENDOR_CHAIN:
                return self._s.vault.open_record(chain, patient_key_name(patient_id), blob, aad)
            return self._s.vault.open_for(chain, SUBKEY, blob, aad)
        except Exception:  # a shredded key: the text is gone, the case stays
            return None
