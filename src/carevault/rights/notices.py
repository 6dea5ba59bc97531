"""The written notices a request earns, and the email that says one is waiting.

Emails leave our control, so they carry only "sign in to read it" and a link (the PHI guard
in messaging/ checks it); the notice itself (the extension's reason, a denial's basis and
the requester's rights) is kept sealed with the case and shown at that link.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, insert

from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.messaging.models import RecipientKind
from carevault.messaging.outbox import enqueue
from carevault.rights.models import DenialBasis, NoticeKind, Rulebook, rights_notices

REQUEST_LINK = "/rights/requests/{request_id}"
QUEUE_LINK = "/admin/rights/requests/{request_id}"


def fee_note(fee: str | None) -> str:
    """The fee a copy costs, from the policy's right (45 CFR 164.524(c)(4))."""
    if fee == "cost-based":
        return (
            "Fee: 0. The policy limits any fee to a reasonable, cost-based fee (164.524(c)(4)); "
            "this electronic copy costs nothing to produce, so nothing is charged."
        )
    return "Fee: none. No fee is charged for a copy of your record."


_TEMPLATES = {
    NoticeKind.RECEIVED: "rights-request-received",
    NoticeKind.EXTENDED: "rights-request-extended",
    NoticeKind.DECIDED: "rights-request-decided",
    NoticeKind.DENIED: "rights-request-decided",
    NoticeKind.FULFILLED: "rights-request-fulfilled",
}
_BASES = {
    DenialBasis.NOT_CREATED_HERE: "the information was not created by us (45 CFR 164.526(a)(2)(i))",
    DenialBasis.NOT_DESIGNATED_RECORD_SET: "the information is not part of the designated "
    "record set (164.526(a)(2)(ii), 164.524)",
    DenialBasis.NOT_AVAILABLE_FOR_INSPECTION: "the information would not be available for "
    "inspection under 164.524 (164.526(a)(2)(iii))",
    DenialBasis.ACCURATE_AND_COMPLETE: "the information is accurate and complete "
    "(164.526(a)(2)(iv))",
    DenialBasis.PSYCHOTHERAPY_NOTES: "psychotherapy notes are excluded from the right of "
    "access (164.524(a)(1)(i))",
    DenialBasis.LEGAL_PROCEEDING: "the information was compiled for a legal proceeding "
    "(164.524(a)(1)(ii))",
    DenialBasis.ENDANGERMENT: "a licensed professional judged that access is reasonably "
    "likely to endanger life or physical safety (164.524(a)(3)); you may ask for this to be "
    "reviewed by another licensed professional",
    DenialBasis.LEGAL_OBLIGATION: "the law requires us to keep this information (Cal. Civ. "
    "Code 1798.105(d))",
    DenialBasis.OTHER: "the reason given below",
}


def send(
    conn: Connection,
    chain: str,
    request_id: str,
    kind: NoticeKind,
    sealed_body: bytes,
    now: str,
    *,
    notify: tuple[str, str] | None,
    days: int | None = None,
    recipient_ref: str | None = None,
    notice_id: str | None = None,
    message_id: str | None = None,
) -> str:
    """Keep a written notice with the case and, if the requester has an account
    (`notify` = (tenant, user)), queue the email that tells them, in the same transaction
    (`message_id`: the email already queued to an address, `send_to_address`)."""
    template = _TEMPLATES.get(kind)
    if notify is not None and template is not None:
        params: dict[str, str | int] = {"link": REQUEST_LINK.format(request_id=request_id)}
        if days is not None:
            params["days"] = days
        message_id = enqueue(
            conn,
            notify[0],
            kind=RecipientKind.USER,
            recipient=notify[1],
            template=template,
            params=params,
            now=now,
        )
    notice_id = notice_id or str(uuid.uuid4())
    conn.execute(
        insert(rights_notices).values(
            tenant_id=chain,
            notice_id=notice_id,
            request_id=request_id,
            kind=kind.value,
            sent_at=now,
            message_id=message_id,
            recipient_ref=recipient_ref,
            body_sealed=sealed_body,
        )
    )
    return notice_id


def send_to_address(
    conn: Connection, address_id: str, link: str, now: str, *, days: int | None = None
) -> str:
    """The email to a requester with no account: to the kept (sealed) address, with the
    case's own reading link; what the notice says stays behind the link."""
    params: dict[str, str | int] = {"link": link}
    if days is not None:
        params["days"] = days
    return enqueue(
        conn,
        VENDOR_CHAIN,
        kind=RecipientKind.ADDRESS,
        recipient=address_id,
        template="rights-request-update",
        params=params,
        now=now,
    )


def send_check(conn: Connection, address_id: str, link: str, now: str) -> str:
    """The "is this address yours?" email, with the one-use token in its link."""
    return enqueue(
        conn,
        VENDOR_CHAIN,
        kind=RecipientKind.ADDRESS,
        recipient=address_id,
        template="rights-email-check",
        params={"link": link},
        now=now,
    )


def tell_officer(conn: Connection, tenant_id: str, request_id: str, now: str) -> None:
    enqueue(
        conn,
        tenant_id,
        kind=RecipientKind.ROLE,
        recipient="privacy-officer",
        template="rights-request-new",
        params={"link": QUEUE_LINK.format(request_id=request_id)},
        now=now,
    )


def received_text(right: str, explanation: str, received: str, due: str) -> str:
    return (
        f"We received your request ({right}) on {received[:10]}.\n{explanation}\n"
        f"You will have an answer by {due[:10]}."
    )


def extension_text(reason: str, days: int, due: str) -> str:
    return (
        f"We need up to {days} more days to answer your request. The reason: {reason}\n"
        f"You will have an answer by {due[:10]}. The law allows this extension once only."
    )


def denial_text(
    rulebook: Rulebook, right: str, basis: DenialBasis, reason: str, decider: str
) -> str:
    lines = [
        f"Your request ({right}) is denied, in whole or in part.",
        f"The basis: {_BASES[basis]}.",
        f"In {decider}'s words: {reason}",
    ]
    if rulebook is Rulebook.CCPA:
        lines.append(
            "You may complain to the California Privacy Protection Agency (cppa.ca.gov) or "
            "the California Attorney General. Exercising your rights never changes the price "
            "or the service you receive."
        )
        return "\n".join(lines)
    if right == "hipaa-amendment":
        lines += [
            "You may file a written statement disagreeing with this denial, and the basis "
            "for your disagreement (POST a statement to this request). We may write a "
            "rebuttal, and you will get a copy of it.",
            "If you file no statement, you may ask that your request and this denial be "
            "sent with any future disclosure of the information concerned.",
            "If you file one, your request, this denial, your statement and any rebuttal "
            "will be sent with every future disclosure of that information.",
        ]
    lines.append(
        f"You may complain to {decider}'s privacy officer, or to the Secretary of Health and "
        "Human Services (Office for Civil Rights, hhs.gov/ocr/complaints). You will not be "
        "retaliated against for complaining."
    )
    return "\n".join(lines)


def accepted_text(right: str) -> str:
    return f"Your request ({right}) is granted. We will let you know when it is complete."


def fulfilled_text(right: str, what: str) -> str:
    return f"Your request ({right}) is complete. {what}"


def recipient_text(refs: tuple[str, ...]) -> str:
    return (
        "The individual's record you received earlier was amended at their request. The "
        f"amended records: {', '.join(refs)}. Please update your copy."
    )
