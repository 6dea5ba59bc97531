"""Directions to delete, for each service provider a verified deletion reaches (Cal. Civ.
Code 1798.105(c); ihr.health: "we will delete (and direct our service providers to
delete)"). Who receives what comes from the policy's recipients, never from a list here:
each recipient that the policy says receives one of the deleted categories is directed, for
those categories. A direction is an outbox row: an adapter for that provider (an API call,
a ticket, a letter) takes the pending ones, sends them and marks them sent, then confirmed.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.errors import NotFound
from carevault.policy import PrivacyPolicy
from carevault.policy.schema import CategoryKind
from carevault.rights.models import rights_provider_directions

PENDING, SENT, CONFIRMED = "pending", "sent", "confirmed"


def plan(policy: PrivacyPolicy, categories: list[str]) -> list[dict[str, Any]]:
    """(recipient, what it must delete, why we direct it) for each recipient of the data."""
    doc = policy.document
    personal = {
        c
        for c in categories
        if c in doc.categories and doc.categories[c].kind is CategoryKind.PERSONAL
    }
    found = []
    for key, recipient in sorted(doc.recipients.items()):
        theirs = sorted(personal & set(recipient.shares))
        if theirs:
            found.append(
                {
                    "recipient": key,
                    "description": recipient.description,
                    "categories": theirs,
                    "bound_by": list(recipient.requires),
                }
            )
    return found


def record(
    conn: Connection, request_id: str, subject_ref: str, planned: list[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Write one pending direction per recipient (the request's own transaction)."""
    made = []
    for item in planned:
        direction_id = str(uuid.uuid4())
        conn.execute(
            insert(rights_provider_directions).values(
                tenant_id=VENDOR_CHAIN,
                direction_id=direction_id,
                request_id=request_id,
                recipient=item["recipient"],
                categories=orjson.dumps(item["categories"]).decode(),
                subject_ref=subject_ref,
                directed_at=now,
                state=PENDING,
            )
        )
        made.append({"direction_id": direction_id, **item, "directed_at": now, "state": PENDING})
    return made


def pending(conn: Connection, recipient: str | None = None) -> list[dict[str, Any]]:
    """What an adapter has to send, oldest first."""
    d = rights_provider_directions.c
    query = select(rights_provider_directions).where(
        d.tenant_id == VENDOR_CHAIN, d.state == PENDING
    )
    if recipient is not None:
        query = query.where(d.recipient == recipient)
    rows = conn.execute(query.order_by(d.directed_at, d.direction_id)).all()
    return [_view(r) for r in rows]


def of_request(conn: Connection, request_id: str) -> list[dict[str, Any]]:
    d = rights_provider_directions.c
    rows = conn.execute(
        select(rights_provider_directions)
        .where(d.tenant_id == VENDOR_CHAIN, d.request_id == request_id)
        .order_by(d.recipient)
    ).all()
    return [_view(r) for r in rows]


def mark(conn: Connection, direction_id: str, state: str, now: str) -> None:
    """An adapter's report: sent (handed to the provider) or confirmed (the provider deleted)."""
    d = rights_provider_directions.c
    values = {"state": state, "sent_at" if state == SENT else "confirmed_at": now}
    done = conn.execute(
        update(rights_provider_directions)
        .where(d.tenant_id == VENDOR_CHAIN, d.direction_id == direction_id)
        .values(**values)
    ).rowcount
    if not done:
        raise NotFound("no such deletion direction")


def _view(row: Any) -> dict[str, Any]:
    return {
        "direction_id": row.direction_id,
        "request_id": row.request_id,
        "recipient": row.recipient,
        "categories": orjson.loads(row.categories),
        "subject_ref": row.subject_ref,
        "directed_at": row.directed_at,
        "state": row.state,
        "sent_at": row.sent_at,
        "confirmed_at": row.confirmed_at,
    }
