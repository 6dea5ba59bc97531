"""Posting a new version of the privacy policy, and listing the versions, audited.

A posting is checked exactly as `carevault policy check` checks a file (one error lists every
problem; nothing is stored). It is stored with the instant it was posted and the instant it
takes effect: posted + `changes.effective_after_days` of the version in effect at posting
(never before a version posted earlier: versions take effect in the order they were posted).
In the same transaction as the version and its audit entry, each tenant (a covered entity
party to a business associate agreement with us) is notified through the outbox, when the
policy in effect promises it (`changes.notify: [tenants]`), with the date it takes effect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, insert, select

from carevault.audit.models import Action, AuditRecord, Outcome, RequestInfo
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.errors import CareVaultError, Conflict, Forbidden, NotFound, TooLarge
from carevault.identity.models import Actor, users
from carevault.identity.permissions import Role
from carevault.messaging.models import RecipientKind
from carevault.messaging.outbox import enqueue
from carevault.policy.loader import parse_policy
from carevault.policy.model import PrivacyPolicy
from carevault.policy.render import Format, Posting, render_notice
from carevault.policy.versions import PolicyTimeline, PolicyVersion, State, digest, policy_versions

MAX_SOURCE = 512 * 1024
POSTERS = frozenset({Role.VENDOR_OPERATOR})
"""The policy is the business associate's, for every tenant: its operators post it (or a
named system actor, the command line); no tenant's administrator may change another's."""
READERS = POSTERS | {Role.PRACTICE_ADMIN, Role.PRIVACY_OFFICER}
"""Who may list the versions: the vendor's operators and each tenant's administrators and
privacy officer (an auditor asking which policy was in effect when)."""
NOTIFIED_ROLES = (Role.PRACTICE_ADMIN, Role.PRIVACY_OFFICER)
TEMPLATE = "policy-change-posted"
POST_REFUSED = "privacy policy version posting refused"
RESOURCE = "PrivacyPolicyVersion"


@dataclass(frozen=True)
class VersionView:
    version: int
    name: str
    state: str
    posted_at: str | None
    effective_at: str | None
    posted_by: str
    sha256: str
    tenants_notified: int


def view(timeline: PolicyTimeline, version: PolicyVersion, now: datetime) -> VersionView:
    return VersionView(
        version=version.version,
        name=version.policy.name,
        state=timeline.state(version, now).value,
        posted_at=isoformat(version.posted_at) if version.posted_at else None,
        effective_at=isoformat(version.effective_at) if version.effective_at else None,
        posted_by=version.posted_by,
        sha256=version.sha256,
        tenants_notified=version.tenants_notified,
    )


class PolicyPosts:
    def __init__(
        self,
        timeline: PolicyTimeline,
        committer: GroupCommitter,
        audit: AuditRecorder,
        clock: Clock,
    ) -> None:
        self.timeline = timeline
        self._committer = committer
        self._audit = audit
        self._clock = clock

    # -- posting -----------------------------------------------------------------------

    def post(
        self, actor: Actor, text: str, source: str, who: RequestInfo | None = None
    ) -> PolicyVersion:
        """Check, store and announce a new version; a refusal stores nothing and is audited."""
        try:
            self.may_post(actor)
            if len(text.encode("utf-8")) > MAX_SOURCE:
                raise TooLarge(f"the policy file is larger than {MAX_SOURCE // 1024} KiB")
            new = parse_policy(text, source)  # PolicyError: every problem, nothing stored
            self.timeline.reload()
            latest = self.timeline.latest()
            if new.document == latest.policy.document:
                raise Conflict(f"{source}: the same policy as version {latest.version}")
            now = self._clock.now()
            in_effect = self.timeline.in_effect(now).policy.document.changes
            effective = now + timedelta(days=in_effect.effective_after_days)
            if latest.effective_at is not None:
                effective = max(effective, latest.effective_at)
            # the days the tenants are told: more than the policy's own if an earlier posting,
            # not yet in effect, holds this one back
            days = math.ceil((effective - now) / timedelta(days=1))
            notify = days if "tenants" in in_effect.notify else None

            def job(conn: Connection) -> tuple[PolicyVersion, AuditRecord]:
                posted = _store(conn, actor, new, text, now, effective, notify)
                detail = (
                    f"privacy policy version {posted.version} posted ({new.name}); takes effect "
                    f"{isoformat(effective)}; tenants notified: {posted.tenants_notified}"
                )
                ids = (str(posted.version), posted.sha256)
                return posted, replace(self._entry(actor, who, now, ids, detail), status=201)

            posted = self._audit.commit_with(self._committer, VENDOR_CHAIN, job)
        except CareVaultError as exc:
            self.refused(actor, who, exc, POST_REFUSED)
            raise
        self.timeline.reload()
        return posted

    @staticmethod
    def may_post(actor: Actor) -> None:
        if actor.role is not None and actor.role not in POSTERS:
            raise Forbidden("only the vendor's operators post a new privacy policy version")

    # -- reading -----------------------------------------------------------------------

    def listed(self, actor: Actor, who: RequestInfo | None = None) -> list[VersionView]:
        """Every version, oldest first, with its state now; the listing is audited."""
        if actor.role is not None and actor.role not in READERS:
            exc = Forbidden("your role does not allow this")
            self.refused(actor, who, exc, "privacy policy version listing refused")
            raise exc
        now = self._clock.now()
        found = [view(self.timeline, v, now) for v in self.timeline.versions()]
        ids = tuple(str(v.version) for v in found)
        record = self._entry(actor, who, now, ids, "privacy policy versions listed")
        self._audit.commit(self._committer, actor.tenant_id, replace(record, action=Action.SEARCH))
        return found

    def version(self, number: int) -> PolicyVersion:
        versions: Sequence[PolicyVersion] = self.timeline.versions()
        for found in versions:
            if found.version == number:
                return found
        raise NotFound(f"there is no privacy policy version {number}")

    def notice(self, number: int | None = None, fmt: Format = Format.MARKDOWN) -> str:
        """A version's notice (None: the one in effect now) with its posting dates, and the
        dates of a newer version already posted but not yet in effect."""
        now = self._clock.now()
        shown = self.timeline.in_effect(now) if number is None else self.version(number)
        pending = [
            v
            for v in self.timeline.versions()
            if v.version > shown.version and not v.in_effect_at(now)
        ]
        upcoming = pending[0] if pending else None
        posting = Posting(
            shown.version,
            shown.posted_at,
            shown.effective_at,
            upcoming.version if upcoming else None,
            upcoming.posted_at if upcoming else None,
            upcoming.effective_at if upcoming else None,
        )
        return render_notice(shown.policy, fmt, posting)

    # -- audit -------------------------------------------------------------------------

    def _entry(
        self,
        actor: Actor,
        who: RequestInfo | None,
        now: datetime,
        ids: tuple[str, ...],
        detail: str,
    ) -> AuditRecord:
        return AuditRecord.by(
            actor,
            isoformat(now),
            Action.ADMIN,
            resource_type=RESOURCE,
            resource_ids=ids,
            origin=who,
            detail=detail,
        )

    def refused(
        self, actor: Actor, who: RequestInfo | None, exc: CareVaultError, detail: str
    ) -> None:
        """A refusal, in the actor's own chain, in a transaction of its own (nothing else was
        written); the web face calls it for a body it cannot read."""
        outcome = Outcome.DENIED if exc.status in (401, 403) else Outcome.INVALID
        record = self._entry(actor, who, self._clock.now(), (), f"{detail}; {type(exc).__name__}")
        refused = replace(record, outcome=outcome, status=exc.status)
        chain = VENDOR_CHAIN if actor.role is None else actor.tenant_id
        self._audit.commit(self._committer, chain, refused)


def _store(
    conn: Connection,
    actor: Actor,
    new: PrivacyPolicy,
    text: str,
    now: datetime,
    effective: datetime,
    notify_days: int | None,
) -> PolicyVersion:
    """The next version number, the tenants told (notify_days: None, the policy promises no
    notice), and the row; in the caller's transaction."""
    last = conn.execute(select(func.max(policy_versions.c.version))).scalar()
    number = (last or 0) + 1
    notified = 0 if notify_days is None else _notify_tenants(conn, now, effective, notify_days)
    sha = digest(text)
    conn.execute(insert(policy_versions).values(
        version=number, name=new.name, sha256=sha, source=text, posted_at=isoformat(now),
        effective_at=isoformat(effective), posted_by=actor.user_id, tenants_notified=notified,
    ))  # fmt: skip
    return PolicyVersion(number, new, sha, now, effective, actor.user_id, notified, text)


def _notify_tenants(conn: Connection, now: datetime, effective: datetime, days: int) -> int:
    """One message per tenant and role (its account administrators, its privacy officer),
    queued with the version; returns how many tenants were told. A tenant whose contract
    ended has no active accounts left, so it is no longer party to an agreement to tell."""
    rows = conn.execute(
        select(users.c.tenant_id, users.c.role)
        .where(users.c.active.is_(True), users.c.role.in_([r.value for r in NOTIFIED_ROLES]))
        .distinct()
        .order_by(users.c.tenant_id, users.c.role)
    ).all()
    when = effective.date()
    params = {"days": days, "year": when.year, "month": when.month, "day": when.day}
    for row in rows:
        enqueue(
            conn, row.tenant_id, kind=RecipientKind.ROLE, recipient=row.role,
            template=TEMPLATE, params=params, now=isoformat(now),
        )  # fmt: skip
    return len({row.tenant_id for row in rows})


__all__ = ["PolicyPosts", "State", "VersionView", "view"]
