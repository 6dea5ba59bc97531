"""Global Privacy Control: a signed-in request carrying `Sec-GPC: 1` is recorded as the
person's opt-out of the sale and sharing of their personal information, where the policy
says so (`communications.global_privacy_control: true`); elsewhere the signal is ignored.

The record is an entry in the tenant's hash-chained audit trail (resource type
`PrivacyChoice`, the user's id, no other data), written once: the first signal records it,
later ones find it. The audit trail is the durable, tamper-evident place for it and needs no
table of its own; if an audit purge ever removes an entry that old, the browser's next
request (GPC rides on every one) records it again.

    choices = PrivacyChoices(reader, committer, audit, clock, lambda: policy)
    choices.record_gpc(actor)            -> True if recorded now, False if ignored or known
    choices.sale_and_sharing_opt_out(tenant_id, user_id) -> the time it was recorded, or None
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson
from sqlalchemy import Engine, select

from carevault.audit.models import Action, AuditRecord, audit_entries
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.identity.models import Actor
from carevault.policy import PrivacyPolicy

HEADER = "sec-gpc"
RESOURCE_TYPE = "PrivacyChoice"
OPT_OUT = "opted out of sale and sharing: Global Privacy Control signal (Sec-GPC: 1)"


def gpc_signal(headers: Mapping[str, str]) -> bool:
    """The GPC specification's one valid value is "1"; anything else is no signal."""
    return headers.get(HEADER, "").strip() == "1"


class PrivacyChoices:
    def __init__(
        self,
        reader: Engine,
        committer: GroupCommitter,
        audit: AuditRecorder,
        clock: Clock,
        policy: Callable[[], PrivacyPolicy],
    ) -> None:
        self._reader, self._committer, self._audit = reader, committer, audit
        self._clock, self._policy = clock, policy

    def honours_gpc(self) -> bool:
        return self._policy().document.communications.global_privacy_control

    def record_gpc(self, actor: Actor) -> bool:
        """Record the signal of a signed-in person as their opt-out of sale and sharing."""
        if not self.honours_gpc() or actor.kind == "system":
            return False
        if self.sale_and_sharing_opt_out(actor.tenant_id, actor.user_id) is not None:
            return False
        record = AuditRecord.by(
            actor,
            isoformat(self._clock.now()),
            Action.ADMIN,
            resource_type=RESOURCE_TYPE,
            resource_ids=(actor.user_id,),
            detail=OPT_OUT,
        )
        self._audit.commit(self._committer, actor.tenant_id, record)
        return True

    def sale_and_sharing_opt_out(self, tenant_id: str, user_id: str) -> str | None:
        """When the person's opt-out of sale and sharing was recorded; None if never."""
        a = audit_entries.c
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(a.recorded_at, a.resource_ids)
                .where(
                    a.tenant_id == tenant_id,
                    a.resource_type == RESOURCE_TYPE,
                    a.actor_id == user_id,
                    a.detail == OPT_OUT,
                )
                .order_by(a.seq)
            ).all()
            conn.rollback()
        for row in rows:
            if user_id in orjson.loads(row.resource_ids):
                return str(row.recorded_at)
        return None
