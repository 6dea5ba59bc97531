"""The human-readable privacy notice, rendered from a policy with the package's Jinja2 templates.

`notice_view` turns the policy into plain sentences and lists (the rules' wording lives here,
once); the templates only lay them out, as Markdown or as autoescaped HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from carevault.policy.bases import Basis
from carevault.policy.model import PrivacyPolicy
from carevault.policy.schema import Notice, Policy, Retention, Right


class Format(StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"


TEMPLATES = {Format.MARKDOWN: "notice.md.j2", Format.HTML: "notice.html.j2"}

BASIS_LABELS: dict[Basis, str] = {
    Basis.AUTHORIZATION: "with your written authorization (express consent) naming the "
    "information, the recipient and the purpose",
    Basis.INDIVIDUAL: "to you, or to your verified representative",
    Basis.TREATMENT: "to another health care provider for your treatment",
    Basis.PAYMENT: "for payment (to a health plan or payer)",
    Basis.OPERATIONS: "for health care operations (quality review, auditing)",
    Basis.BUSINESS_ASSOCIATE: "to a service provider, only under a business associate agreement "
    "on file",
    Basis.REQUIRED_BY_LAW: "when the law or a court order requires it (only what the order names)",
    Basis.SUBPOENA: "in answer to a subpoena, with the assurances the law requires",
    Basis.LAW_ENFORCEMENT: "to law enforcement, to identify or locate a person (a fixed list of "
    "facts; never DNA, dental records or tissue typing)",
    Basis.HEALTH_OVERSIGHT: "to health oversight agencies and HHS investigations",
    Basis.PUBLIC_HEALTH: "to public health authorities (notifiable results)",
    Basis.ABUSE_NEGLECT: "to report abuse or neglect",
    Basis.SERIOUS_THREAT: "to prevent a serious threat to health or safety",
    Basis.DECEDENT: "to coroners, medical examiners and funeral directors",
    Basis.RESEARCH: "for research approved by an IRB or privacy board",
}

REQUIREMENT_LABELS = {
    "express-consent": "your express consent",
    "baa": "a business associate agreement",
    "confidentiality-agreement": "a confidentiality agreement",
    "binding-agreement": "a binding agreement to use and protect the data as this notice says",
}

RIGHT_TITLES = {
    "hipaa-access": "See and get a copy of your health information",
    "hipaa-amendment": "Ask us to correct your health information",
    "hipaa-accounting": "Get a list of those we shared your health information with",
    "ccpa-know": "Know what personal information we hold (California)",
    "ccpa-portability": "Get your personal information in a portable form (California)",
    "ccpa-delete": "Delete your personal information (California)",
    "ccpa-correct": "Correct your personal information (California)",
    "ccpa-opt-out": "Opt out of the sale or sharing of personal information (California)",
    "ca-shine-the-light": "Learn who received your information for their direct marketing "
    "(California)",
}

NOTICE_EVENTS = {
    "legally-compelled-disclosure": "A release of your information compelled by law (a court "
    "order, subpoena, warrant or government request)",
    "compelled-disclosure-report": "The order and the information released under it",
    "breach": "A security breach that may have exposed your information",
    "no-sale": "That we do not sell your personal information",
    "request-extension": "That we need more time to answer your request",
    "policy-change": "A material change to this notice",
}

WHEN = {Notice.BEFORE: "in advance", Notice.AFTER: "promptly afterwards"}
UNLESS_ORDER = ", unless the law or the order forbids it; then as soon as it no longer does"


AFTER = {
    "created": "after it is collected",
    "last-interaction": "after your last interaction with the service",
    "account-closed": "after your account is closed",
    "purpose-satisfied": "after the purpose it was collected for is satisfied",
}

EARLIER = {
    "purpose-satisfied": "when the purpose it was collected for is satisfied",
    "legal-deadline": "on any date of deletion the law requires",
}


CATEGORY_TITLES = {
    "phi": "Health information (PHI)",
    "account": "Account information",
    "usage": "Usage data",
    "deidentified": "De-identified information",
    "payment": "Payment information",
}


@dataclass(frozen=True)
class Item:
    title: str
    text: str
    details: tuple[str, ...] = ()

    @property
    def line(self) -> str:
        """The text and its details as one sentence run (a list item)."""
        return " ".join((self.text, *self.details)).strip()


def _days(n: int) -> str:
    if n and n % 365 == 0:
        years = n // 365
        return f"{years} year{'s' if years > 1 else ''} ({n} days)"
    return f"{n} day{'s' if n != 1 else ''}"


def _title(name: str) -> str:
    return name.replace("-", " ").capitalize()


def _category(name: str) -> str:
    return CATEGORY_TITLES.get(name, _title(name))


def _names(doc: Policy, ids: tuple[str, ...]) -> str:
    return ", ".join(_category(i) for i in ids if i in doc.categories) or "nothing"


def retention_text(rule: Retention) -> str:
    earlier = " or ".join(EARLIER[e] for e in rule.or_earlier)
    if rule.keep_days is None and earlier:
        schedule = f"Scheduled for deletion {earlier}"
        if rule.after != "created":
            schedule += f" ({AFTER[rule.after]})"
    elif rule.keep_days is None:
        schedule = "No fixed schedule: kept until the provider or you ask for its deletion"
        if rule.after == "account-closed":
            schedule = "Kept while your account is open; no fixed schedule after that"
    else:
        when = "" if rule.keep_days == 0 else f"{_days(rule.keep_days)} "
        schedule = f"Scheduled for deletion {when}{AFTER[rule.after]}"
        if earlier:
            schedule += f", or earlier: {earlier}"
    parts = [schedule + "."]
    if rule.phi_kept_until_provider_asks:
        parts.append(
            "When it is also protected health information, it is kept until the "
            "provider asks for its deletion."
        )
    if rule.on_contract_end == "remove":
        parts.append(
            "When the provider's contract ends it is removed"
            + (
                ", after the provider is offered an archived copy."
                if rule.archive_on_contract_end
                else "."
            )
        )
    if rule.description:
        parts.insert(0, rule.description)
    return " ".join(parts)


def right_item(name: str, right: Right, doc: Policy) -> Item:
    details: list[str] = []
    if right.self_service:
        details.append("At any time, yourself, in your account.")
    else:
        clock = f"Answered within {right.deadline_days} days"
        if right.extension_days:
            clock += (
                f"; if we need more time, at most {right.extension_days} more days, "
                "and we tell you so within the first period"
            )
        details.append(clock + ".")
    if right.max_per_12_months is not None:
        details.append(
            f"At most {right.max_per_12_months} request"
            f"{'s' if right.max_per_12_months > 1 else ''} in any 12 months."
        )
    if right.handled_by == "tenant":
        details.append("Your provider decides on the request; we carry it out for the provider.")
    if right.verify_identity:
        details.append("We verify your identity (or your agent's authority) first.")
    if right.authorized_agent:
        details.append(
            "An authorized agent with your written permission or power of attorney may ask for you."
        )
    if right.needs_account is False:
        details.append("You do not need an account to ask.")
    if right.denial_in_writing:
        details.append("If we deny the request, we explain why in writing.")
    if right.fee == "cost-based":
        details.append("Cost: at most what it costs us to retrieve, prepare and send it.")
    elif right.fee == "none":
        details.append("Free of charge.")
    if right.categories:
        details.append(f"Covers: {_names(doc, right.categories)}.")
    if right.how:
        details.insert(0, f"How: {right.how}")
    text = right.description or ""
    return Item(RIGHT_TITLES.get(name, _title(name)), text, tuple(details))


@dataclass(frozen=True)
class Posting:
    """When the version rendered was posted and took (or takes) effect; and a newer version
    already posted that is not in effect yet, if any (versions.py)."""

    version: int
    posted_at: datetime | None
    effective_at: datetime | None
    next_version: int | None = None
    next_posted_at: datetime | None = None
    next_effective_at: datetime | None = None


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def dates_line(doc: Policy, posting: Posting | None = None) -> str:
    """The notice's dates: the file's own, or those of the posted version it is."""
    if posting is None or posting.posted_at is None or posting.effective_at is None:
        parts = ["Effective " + doc.effective.isoformat() + "."] if doc.effective else []
    else:
        parts = [
            f"Version {posting.version}, posted {_instant(posting.posted_at)}; in effect from "
            f"{_instant(posting.effective_at)}."
        ]
    if doc.updated:
        parts.append("Last updated " + doc.updated.isoformat() + ".")
    if posting is not None and posting.next_posted_at and posting.next_effective_at:
        parts.append(
            f"A new version ({posting.next_version}) was posted {_instant(posting.next_posted_at)}"
            f" and takes effect {_instant(posting.next_effective_at)}; until then this one applies."
        )
    return " ".join(parts)


def notice_view(policy: PrivacyPolicy, posting: Posting | None = None) -> dict[str, Any]:
    """Everything the templates print, as sentences and lists."""
    doc = policy.document
    bases = doc.disclosure.bases
    allowed: list[Item] = []
    for basis in Basis:
        rule = policy.basis(basis)
        if not rule.allowed:
            continue
        details: list[str] = []
        if rule.minimum_necessary is not None:
            profile = doc.minimum_necessary[rule.minimum_necessary]
            details.append(f"Only the minimum necessary: {profile.description}")
        if rule.requires_order:
            details.append("Only for an investigation on file, and only what it names.")
        if rule.notice is Notice.BEFORE:
            details.append(f"You are told in advance{UNLESS_ORDER}.")
        elif rule.notice is Notice.AFTER:
            details.append("You are told promptly afterwards.")
        label = BASIS_LABELS[basis]
        allowed.append(Item(basis.value, label[0].upper() + label[1:] + ".", tuple(details)))
    refused = [BASIS_LABELS[b] for b in Basis if b in bases and not bases[b].allowed]
    refused += [BASIS_LABELS[b] for b in Basis if b not in bases]
    recipients = [
        Item(
            _title(rid),
            r.description,
            (f"Receives: {_names(doc, r.shares)}.",)
            + (
                (f"Only with {' and '.join(REQUIREMENT_LABELS[q] for q in r.requires)} on file.",)
                if r.requires
                else ()
            ),
        )
        for rid, r in doc.recipients.items()
    ]
    return {
        "doc": doc,
        "title": f"{doc.name} privacy notice",
        "dates": dates_line(doc, posting),
        "categories": [
            Item(
                _category(cid),
                c.description,
                _category_details(c.kind.value, c.sensitive, c.never_sold, c.stored),
            )
            for cid, c in doc.categories.items()
        ],
        "purposes": [
            Item(
                _title(pid),
                p.description,
                (f"Uses: {_names(doc, p.categories)}.",)
                + (("Only with your consent.",) if p.consent else ()),
            )
            for pid, p in doc.purposes.items()
        ],
        "recipients": recipients,
        "never_shared": [_category(c) for c in doc.never_shared],
        "express_consent": doc.disclosure.third_parties.express_consent,
        "reauthenticate": doc.disclosure.third_parties.reauthenticate,
        "minimum_necessary_always": doc.disclosure.third_parties.minimum_necessary,
        "allowed": allowed,
        "refused": refused,
        "retention": [Item(_category(c), retention_text(r)) for c, r in doc.retention.items()],
        "rights": [right_item(n, r, doc) for n, r in doc.rights.items()],
        "notices": [
            Item(
                NOTICE_EVENTS.get(e, _title(e)),
                WHEN[w] + (UNLESS_ORDER if e == "legally-compelled-disclosure" else ""),
            )
            for e, w in doc.notices.items()
            if w is not Notice.NONE
        ],
        "deidentified_purposes": [doc.purposes[p].description for p in doc.deidentified.purposes],
    }


def _category_details(
    kind: str, sensitive: bool, never_sold: bool, stored: bool
) -> tuple[str, ...]:
    details = {
        "phi": "Protected health information: governed by HIPAA and your provider's agreement "
        "with us.",
        "personal": "Personal information: governed by this notice and state law.",
        "deidentified": "De-identified: identifies no one.",
    }[kind]
    extra = (
        (("Sensitive: requests about it need stronger verification.",) if sensitive else ())
        + (("Never sold, leased or traded.",) if never_sold else ())
        + (("Never stored by us: passed directly to the processor.",) if not stored else ())
    )
    return (details, *extra)


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("carevault.policy", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_notice(
    policy: PrivacyPolicy, fmt: Format = Format.MARKDOWN, posting: Posting | None = None
) -> str:
    """The privacy notice as Markdown or as a whole HTML page (every value escaped)."""
    template = _environment().get_template(TEMPLATES[fmt])
    text = template.render(**notice_view(policy, posting))
    return re.sub(r"\n{3,}", "\n\n", text) if fmt is Format.MARKDOWN else text
