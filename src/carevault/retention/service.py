"""Deletion, three ways, each honest about what it does — the service rights/ and the faces call.

    ret = Retention.from_runtime(runtime)           # or runtime.retention, once wired
    ret.delete_patient(officer, patient_id, DeletionRequest(written_request="case-…",
                       verified_by="id-document", tenant_instruction=True))  -> Certificate
    ret.delete_own_submission(patient, "QuestionnaireResponse", rid)        -> Certificate
    ret.soft.hide_patient(officer, pid) / ret.soft.restore_patient(officer, pid)
    ret.inactivate_account(actor, user_id)                                  -> keep_until
    ret.holds.file(officer, patient_id | None, reason) / ret.holds.lift(officer, hold_id)

- *soft delete* (privacy/soft_delete.py): hidden from every screen and function, kept;
- *account inactivation*: the account stops (no sign-in, sessions ended, no messages) while its
  data is kept for the policy's `account` period, after which the retention job erases it (an
  account's purpose is satisfied by its closing: `purpose-satisfied` runs from it too);
- *permanent deletion* of a patient, on a verified written request and the tenant's own
  instruction, after legal holds and the PHI retention duty are checked: crypto-shredding
  (KeyCustody.shred_patient) reaches every copy, backups included; a signed certificate says
  what was destroyed, what was kept and why;
- a patient deleting what they submitted themselves (a QuestionnaireResponse or
  DocumentReference they authored) from their own account: that resource, every version.

Every refusal is audited after the rollback and names what to do; nothing is changed by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, delete, insert, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Conflict, Forbidden, Invalid, NotFound
from carevault.identity import sessions
from carevault.identity.models import Actor, system_actor, users
from carevault.identity.permissions import Role
from carevault.policy import PrivacyPolicy, load_profile
from carevault.privacy import offboarding
from carevault.privacy.gate import Gate
from carevault.privacy.services import GateServices
from carevault.privacy.shredding import KeyCustody
from carevault.privacy.soft_delete import SoftDeletes
from carevault.retention import certificates
from carevault.retention.categories import PURPOSE_ENDS
from carevault.retention.holds import LegalHolds, require_officer
from carevault.retention.models import (
    Certificate,
    CertificateKind,
    DeletionRequest,
    Item,
    account_inactivations,
)

if TYPE_CHECKING:
    from carevault.runtime import Runtime

_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
"""An id we may name in the audit trail (anything else could be text someone typed)."""
SELF_SUBMITTED = {
    "QuestionnaireResponse": ("author", "source"),
    "DocumentReference": ("author",),
}
"""Types a patient may delete from their own account when they are the author."""
AUDIT_KEPT = Item(
    "audit trail entries naming the patient (ids and codes, no content)",
    why="HIPAA documentation duty: kept six years (45 CFR 164.316(b)(2))",
)
SHRED_METHOD = (
    "crypto-shredding: the patient's data key was destroyed in the key store and the live "
    "rows and index entries removed; every database copy, backups included, holds only "
    "ciphertext that no key opens"
)


def policy_of(runtime: Runtime) -> PrivacyPolicy:
    """The deployment's policy: runtime.policy once it exists, else the default profile."""
    found = getattr(runtime, "policy", None)
    return found if isinstance(found, PrivacyPolicy) else load_profile("default")


def keep_until(policy: PrivacyPolicy, category: str, start: datetime) -> datetime | None:
    """When data whose clock starts at `start` may go; None: no date, kept until asked.

    `start` is the event that ends the data's use: an account's closing (inactivation) for
    `account`, the opt-out for `marketing-contacts`. `after: account-closed` runs from it, and
    so does `after: purpose-satisfied` for the categories in `PURPOSE_ENDS`: an account's
    purpose is satisfied when it is closed, marketing contacts' when the person asks to stop
    (Healthsoft, ihr.health: `account: {after: purpose-satisfied, keep_days: 0}`)."""
    rule = policy.retention.get(category)
    if rule is None or rule.keep_days is None:
        return None
    if rule.after == "account-closed" or (
        rule.after == "purpose-satisfied" and category in PURPOSE_ENDS
    ):
        return start + timedelta(days=rule.keep_days)
    return None  # created, last-interaction: resource clocks; other purposes: none we can read


class Retention:
    def __init__(
        self,
        services: GateServices,
        keys: KeyCustody,
        gate: Callable[[Actor], Gate],
        policy: Callable[[], PrivacyPolicy],
    ) -> None:
        self.services = services
        self.keys = keys
        self.gate = gate
        self.policy = policy
        self.holds = LegalHolds(services)
        self.soft = SoftDeletes(services)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> Retention:
        return cls(runtime.gate_services, runtime.keys, runtime.gate, lambda: policy_of(runtime))

    def authorize_officer(self, actor: Actor, what: str) -> None:
        """For faces: the permission before the body, so a refusal is an audited 403."""
        try:
            require_officer(actor, what)
        except CareVaultError as exc:
            self._refuse(actor, "Retention", "", exc, f"{what}: refused")
            raise

    # -- permanent deletion of a patient -------------------------------------------------

    def delete_patient(
        self, actor: Actor, patient_id: str, request: DeletionRequest
    ) -> Certificate:
        """Crypto-shred one patient on a verified written request and the tenant's instruction."""
        try:
            require_officer(actor, "order a permanent deletion")
            if not request.written_request.strip() or not request.verified_by.strip():
                raise Invalid("permanent deletion needs a written request and how it was verified")
            if not request.tenant_instruction:
                raise Forbidden("PHI is deleted only on the tenant's instruction: record it first")
            facts = offboarding.inventory(self.services, actor.tenant_id, patient_id)
            if not facts:
                raise NotFound("no such patient, or already deleted")
            self.holds.check_free(actor.tenant_id, patient_id)
            self._check_phi_duty(facts)
        except CareVaultError as exc:
            self._refuse(actor, "Patient", patient_id, exc, "permanent deletion refused")
            raise
        system = system_actor(actor.tenant_id, "verified deletion request")
        report = self.keys.shred_patient(system, patient_id)
        self.soft.forget_patient(actor.tenant_id, patient_id)
        return certificates.issue(
            self.services,
            actor,
            CertificateKind.PATIENT,
            destroyed=[
                Item(
                    "the patient's record: every resource, every version, every copy",
                    "Patient",
                    patient_id,
                    patient_id,
                    report.resources_removed,
                )
            ],
            kept=[AUDIT_KEPT, Item("this certificate", why="proof of the deletion")],
            method=SHRED_METHOD + ("" if report.key_destroyed else " (the key was already gone)"),
            basis={
                "written_request": request.written_request,
                "verified_by": request.verified_by,
                "instructed_by": actor.user_id,
            },
        )

    def _check_phi_duty(self, facts: list[offboarding.ResourceFact]) -> None:
        """A PHI retention period in the policy is a duty: nothing goes before it ends."""
        rule = self.policy().retention.get("phi")
        if rule is None or rule.keep_days is None:
            return
        anchors = {
            "last-interaction": max(f.last_updated for f in facts),
            "created": min(f.created for f in facts),
        }
        anchor = anchors.get(rule.after)
        if anchor is None:  # account-closed, purpose-satisfied: not a PHI clock we can read
            return
        now = self.services.clock.now()
        until = datetime.fromisoformat(anchor) + timedelta(days=rule.keep_days)
        if until > now:
            raise Conflict(
                f"retention duty: the policy keeps PHI {rule.keep_days} days after "
                f"{rule.after}, until {isoformat(until)[:10]}; delete after that date"
            )

    # -- a patient's own submission ------------------------------------------------------

    def delete_own_submission(self, actor: Actor, rtype: str, rid: str) -> Certificate:
        """A patient removes a resource they authored, from their own account."""
        try:
            if actor.role is not Role.PATIENT or len(actor.patient_ids) != 1:
                raise Forbidden("only a patient may delete their own submissions this way")
            (patient_id,) = actor.patient_ids
            if rtype not in SELF_SUBMITTED:
                raise Forbidden(f"{rtype} is not something a patient submits; ask the practice")
            version = self.gate(actor).read(rtype, rid)  # their compartment only: else 404
            body: dict[str, Any] = orjson.loads(version.body or b"{}")
            if f"Patient/{patient_id}" not in _authors(body, SELF_SUBMITTED[rtype]):
                raise Forbidden(
                    "you can delete only what you submitted yourself; ask the practice to "
                    "correct or remove what it recorded"
                )
            self.holds.check_free(actor.tenant_id, patient_id)
        except CareVaultError as exc:
            self._refuse(actor, rtype, rid, exc, "deletion of own submission refused")
            raise
        system = system_actor(actor.tenant_id, "patient deleted own submission")
        offboarding.purge_resource(self.services, system, rtype, rid)
        return certificates.issue(
            self.services,
            actor,
            CertificateKind.SUBMISSION,
            destroyed=[
                Item("the submission, every version and index entry", rtype, rid, patient_id)
            ],
            kept=[
                Item(
                    "the rest of the record",
                    patient_id=patient_id,
                    why="the practice's PHI: kept as the practice decides",
                ),
                AUDIT_KEPT,
            ],
            method=(
                "removed from the live database with every version; backup copies hold "
                "it sealed under the patient's data key until those backups expire"
            ),
            basis={"requested_by": actor.user_id, "channel": "patient account"},
        )

    # -- account inactivation ------------------------------------------------------------

    def close_own_account(self, actor: Actor) -> str | None:
        """A patient or representative closes their own portal account. Workforce accounts
        are closed by the practice's administrator, who also reassigns their work."""
        if actor.role not in (Role.PATIENT, Role.REPRESENTATIVE):
            exc = Forbidden(
                "only a patient or representative closes their own account here; "
                "a workforce account is inactivated by the practice's administrator"
            )
            self._refuse(actor, "User", actor.user_id, exc, "account closing refused")
            raise exc
        return self.inactivate_account(actor, actor.user_id)

    def inactivate_account(
        self, actor: Actor, user_id: str, *, allow_self: bool = True
    ) -> str | None:
        """Stop an account (sign-in, sessions, messages) and keep its data for the policy's
        `account` period; returns the date it may be erased (None: no period set).

        `allow_self=False` (the administrators' route) refuses one's own account, so an
        officer cannot lock the tenant's administration out by a slip."""
        allowed = actor.role in (None, Role.PRIVACY_OFFICER, Role.PRACTICE_ADMIN)
        now = self.services.clock.now()
        until = keep_until(self.policy(), "account", now)
        kept = isoformat(until) if until is not None else None

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            found = conn.execute(
                update(users)
                .where(
                    users.c.tenant_id == actor.tenant_id,
                    users.c.user_id == user_id,
                    users.c.active.is_(True),
                )
                .values(active=False)
            ).rowcount
            if not found:
                raise NotFound("no active account with that id in this tenant")
            ended = sessions.end_all(conn, actor.tenant_id, user_id, now, "inactivated")
            # An administrator may have switched the account back on since an earlier
            # inactivation: this one starts the retention clock afresh.
            ai = account_inactivations.c
            conn.execute(
                delete(account_inactivations).where(
                    ai.tenant_id == actor.tenant_id, ai.user_id == user_id
                )
            )
            conn.execute(
                insert(account_inactivations).values(
                    tenant_id=actor.tenant_id,
                    user_id=user_id,
                    inactivated_at=isoformat(now),
                    inactivated_by=actor.user_id,
                    keep_until=kept,
                    erased=False,
                )
            )
            detail = (
                f"account inactivated, data kept until {kept or 'asked'}; {ended} sessions ended"
            )
            return None, self._record(actor, "User", user_id, detail)

        try:
            if not allowed and actor.user_id != user_id:
                raise Forbidden("only the account holder or an administrator may close it")
            if not allow_self and actor.user_id == user_id:
                raise Conflict(
                    "an administrator cannot inactivate their own account here; "
                    "ask another administrator, or close it at /patient/account/close"
                )
            self.services.audit.commit_with(self.services.committer, actor.tenant_id, job)
        except CareVaultError as exc:
            self._refuse(actor, "User", user_id, exc, "account inactivation refused")
            raise
        return kept

    # -- audit -------------------------------------------------------------------------

    def _record(
        self,
        actor: Actor,
        rtype: str,
        rid: str,
        detail: str,
        outcome: Outcome = Outcome.SUCCESS,
        status: int = 200,
    ) -> AuditRecord:
        patients = (rid,) if rtype == "Patient" and outcome is Outcome.SUCCESS else ()
        return AuditRecord.by(
            actor,
            isoformat(self.services.clock.now()),
            Action.DELETE if rtype != "User" else Action.ADMIN,
            outcome=outcome,
            status=status,
            resource_type=rtype,
            resource_ids=(rid,) if _ID.match(rid) else (),
            patient_ids=patients,
            detail=detail,
        )

    def _refuse(self, actor: Actor, rtype: str, rid: str, exc: CareVaultError, why: str) -> None:
        outcome = {403: Outcome.DENIED, 404: Outcome.NOT_FOUND}.get(exc.status, Outcome.INVALID)
        record = self._record(
            actor, rtype, rid, f"{why}: {type(exc).__name__}", outcome, exc.status
        )
        self.services.audit.commit(self.services.committer, actor.tenant_id, record)


def _authors(body: dict[str, Any], fields: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    for name in fields:
        value = body.get(name)
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                found.add(ref["reference"])
    return found
