"""The retention job: per-category schedules from the policy, legal holds, dry runs.

`RetentionJob(retention).run(tenant_id, dry_run=...)` takes "now" from the injected clock, so
a year is simulated by calling it with a moving clock; a scheduler (APScheduler, once it is
pinned) only triggers it. Each kept resource is classified (retention/categories.py) and
its category's rule read from the policy:

- `keep_days` after `created` (the first version), `last-interaction` (the newest write in
  the person's record) or, for accounts, `account-closed` (the inactivation);
  `purpose-satisfied` is the account's closing for `account` and the opt-out for
  `marketing-contacts` (retention/marketing.py: the preference row and the marketing sent,
  never the suppression hash); for anything else it has no clock CareVault can read, so it
  never falls due by itself;
- PHI is never deleted by the job: it is the tenant's, deleted only on its instruction
  (`Retention.delete_patient`); where the policy keeps biometric PHI until the provider asks,
  the report says so;
- a live legal hold (the patient's or the tenant's) keeps whatever it covers.

A real run deletes through privacy/ as the named system actor "retention job" (each deletion
audited in the same transaction) and issues one signed certificate listing what went and
what was kept and why. A dry run changes nothing and reports what the next run would delete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from carevault.audit.models import Action, AuditRecord
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Conflict, Invalid
from carevault.identity.erasure import erase_identity
from carevault.identity.models import Actor, system_actor
from carevault.privacy import offboarding
from carevault.retention import certificates, marketing
from carevault.retention.categories import ACCOUNT, MARKETING_CONTACTS, classify
from carevault.retention.models import CertificateKind, Item, account_inactivations
from carevault.retention.service import Retention

JOB_REASON = "retention job"


@dataclass(frozen=True)
class Due:
    category: str
    resource_type: str
    resource_id: str
    patient_id: str | None
    due_at: str


@dataclass(frozen=True)
class Kept:
    category: str
    resource_type: str
    resource_id: str
    patient_id: str | None
    why: str


@dataclass(frozen=True)
class RunReport:
    tenant_id: str
    at: str
    dry_run: bool
    due: list[Due] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    deleted: list[Due] = field(default_factory=list)
    certificate_id: str | None = None


class RetentionJob:
    def __init__(self, retention: Retention) -> None:
        self._r = retention
        self._s = retention.services

    def run(
        self, tenant_id: str, *, dry_run: bool = False, as_of: datetime | None = None
    ) -> RunReport:
        """Delete what is due now; a dry run may look ahead to `as_of` (never behind now).

        Only a dry run takes `as_of`: deleting ahead of the schedule would break the policy.
        """
        actor = system_actor(tenant_id, JOB_REASON)
        now = self._s.clock.now()
        if as_of is not None:
            if not dry_run:
                raise Invalid("a date to look ahead to is for a dry run only")
            if as_of < now:
                raise Invalid("a dry run looks ahead: the date must not be in the past")
            now = as_of
        due, kept = self.plan(tenant_id, now)
        if dry_run:
            self._audit(actor, f"retention dry run: {len(due)} would be deleted, nothing changed")
            return RunReport(tenant_id, isoformat(now), True, due, kept)
        deleted: list[Due] = []
        opted_out_by = marketing.cutoff(self._r.policy(), now)
        for item in due:
            try:
                if item.category == ACCOUNT.category:
                    self._erase_account(actor, item.resource_id)
                elif item.category == MARKETING_CONTACTS.category:
                    self._erase_marketing(actor, item.resource_id, opted_out_by)
                    kept.append(
                        Kept(
                            "marketing-suppression",
                            "SuppressionList",
                            item.resource_id,
                            None,
                            marketing.SUPPRESSION_KEPT,
                        )
                    )
                else:
                    # a hold filed since the plan was made still stops it
                    self._r.holds.check_free(tenant_id, item.patient_id)
                    offboarding.purge_resource(self._s, actor, item.resource_type, item.resource_id)
            except CareVaultError as exc:
                kept.append(
                    Kept(
                        item.category,
                        item.resource_type,
                        item.resource_id,
                        item.patient_id,
                        exc.message,
                    )
                )
                continue
            deleted.append(item)
        certificate_id = None
        if deleted:
            cert = certificates.issue(
                self._s,
                actor,
                CertificateKind.RETENTION_RUN,
                destroyed=[
                    Item(
                        f"{d.category} data past its retention period (due {d.due_at[:10]})",
                        d.resource_type,
                        d.resource_id,
                        d.patient_id,
                    )
                    for d in deleted
                ],
                kept=[
                    Item(
                        f"{k.category} data",
                        k.resource_type,
                        k.resource_id,
                        k.patient_id,
                        why=k.why,
                    )
                    for k in kept
                ],
                method=(
                    "removed with every version and index entry from the live database; "
                    "backup copies expire with the backup rotation"
                ),
                basis={"policy": self._r.policy().name, "run_at": isoformat(now)},
            )
            certificate_id = cert.certificate_id
        return RunReport(tenant_id, isoformat(now), False, due, kept, deleted, certificate_id)

    def plan(self, tenant_id: str, now: datetime) -> tuple[list[Due], list[Kept]]:
        """What is due now, and what is kept although a schedule applies (and why)."""
        policy = self._r.policy()
        facts = offboarding.inventory(self._s, tenant_id)
        last: dict[str, str] = {}
        for fact in facts:
            if fact.patient_id:
                last[fact.patient_id] = max(last.get(fact.patient_id, ""), fact.last_updated)
        with self._s.reader.connect() as conn:
            tenant_held, held = self._r.holds.held_patients(conn, tenant_id)
            accounts = self._accounts_due(conn, tenant_id, isoformat(now))
            contacts = marketing.due(conn, policy, tenant_id, now)
            conn.rollback()
        due: list[Due] = []
        kept: list[Kept] = []
        for fact in facts:
            kind = classify(fact.patient_id, fact.security)
            rule = policy.retention.get(kind.category)
            if rule is None or rule.keep_days is None:
                continue
            key = (kind.category, fact.resource_type, fact.resource_id, fact.patient_id)
            if kind.phi:
                why = (
                    "biometric PHI: kept until the provider asks"
                    if rule.phi_kept_until_provider_asks
                    else "PHI: deleted only on the tenant's instruction"
                )
                kept.append(Kept(*key, why))
                continue
            anchor = {
                "created": fact.created,
                "last-interaction": last.get(fact.patient_id or "", fact.last_updated),
            }.get(rule.after)
            if anchor is None:
                continue  # purpose-satisfied / account-closed: no clock for a resource
            due_at = datetime.fromisoformat(anchor) + timedelta(days=rule.keep_days)
            if due_at > now:
                continue
            if tenant_held or fact.patient_id in held:
                kept.append(Kept(*key, "legal hold"))
                continue
            due.append(Due(*key, isoformat(due_at)))
        for user_id, keep_until in accounts:
            if tenant_held:
                kept.append(Kept(ACCOUNT.category, "User", user_id, None, "legal hold"))
            else:
                due.append(Due(ACCOUNT.category, "User", user_id, None, keep_until))
        for user_id, opted_out_due in contacts:
            whose = (MARKETING_CONTACTS.category, marketing.RESOURCE_TYPE, user_id, None)
            if tenant_held:
                kept.append(Kept(*whose, "legal hold"))
            else:
                due.append(Due(*whose, opted_out_due))
        return due, kept

    # -- accounts --------------------------------------------------------------------

    @staticmethod
    def _accounts_due(conn: Connection, tenant_id: str, now: str) -> list[tuple[str, str]]:
        a = account_inactivations.c
        rows = conn.execute(
            select(a.user_id, a.keep_until)
            .where(
                a.tenant_id == tenant_id,
                a.erased.is_(False),
                a.keep_until.is_not(None),
                a.keep_until <= now,
            )
            .order_by(a.user_id)
        )
        return [(str(r.user_id), str(r.keep_until)) for r in rows]

    def _erase_account(self, actor: Actor, user_id: str) -> None:
        """The account's personal data go: its address, password and sign-in factors (phone,
        authenticator, passkeys) and its usage records (sessions, tokens, reset requests); the
        row stays (audit entries name its id)."""

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            a = account_inactivations.c
            erase_identity(conn, actor.tenant_id, user_id)
            conn.execute(
                update(account_inactivations)
                .where(a.tenant_id == actor.tenant_id, a.user_id == user_id)
                .values(erased=True)
            )
            return None, self._entry(
                actor, "account erased after its retention period", ("User", user_id)
            )

        self._s.audit.commit_with(self._s.committer, actor.tenant_id, job)

    def _erase_marketing(self, actor: Actor, user_id: str, opted_out_by: datetime | None) -> None:
        """The person's marketing contacts go; the suppression hash stays (marketing.py)."""
        if opted_out_by is None:  # the policy changed since the plan
            raise Conflict("the policy sets no retention period for marketing contacts now")
        cutoff = isoformat(opted_out_by)

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            gone = marketing.erase(conn, actor.tenant_id, user_id, cutoff)
            detail = (
                "marketing contact data deleted after the opt-out's retention period "
                f"(preference, {gone.messages} marketing messages); suppression kept"
            )
            return None, self._entry(actor, detail, (marketing.RESOURCE_TYPE, user_id))

        self._s.audit.commit_with(self._s.committer, actor.tenant_id, job)

    def _audit(self, actor: Actor, detail: str) -> None:
        self._s.audit.commit(self._s.committer, actor.tenant_id, self._entry(actor, detail))

    def _entry(
        self, actor: Actor, detail: str, target: tuple[str, str] | None = None
    ) -> AuditRecord:
        return AuditRecord.by(
            actor,
            isoformat(self._s.clock.now()),
            Action.ADMIN if target is None else Action.DELETE,
            resource_type=target[0] if target else "Retention",
            resource_ids=(target[1],) if target else (),
            detail=f"{JOB_REASON}; {detail}",
        )
