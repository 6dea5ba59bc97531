"""HIPAA amendment (45 CFR 164.526): what may be amended, the amendment itself, and who must
be told. Records are read and written through the gate as a named system actor (audited);
those who received the old version come from the accounting-of-disclosures ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection

from carevault.crypto.vault import Vault
from carevault.errors import CareVaultError, Invalid, Unprocessable
from carevault.identity.models import Actor, system_actor
from carevault.privacy.disclosure.ledger import read_entries
from carevault.privacy.gate import Gate

OWN_SOURCE = "urn:carevault:tenant:{tenant_id}"
"""meta.source of records the tenant created here; any other source is another organization."""


def _foreign(body: dict[str, Any], tenant_id: str) -> bool:
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    assert isinstance(meta, dict)
    source = meta.get("source")
    return (
        isinstance(source, str)
        and bool(source)
        and not source.startswith(OWN_SOURCE.format(tenant_id=tenant_id))
    )


def check_amendable(
    gate: Callable[[Actor], Gate], tenant_id: str, patient_id: str | None, refs: Sequence[str]
) -> None:
    """Each resource must be in the patient's record and created by this tenant."""
    if not refs:
        raise Invalid("resources: name the records (Type/id) the amendment is about")
    reader = gate(system_actor(tenant_id, "rights: amendment request intake"))
    for ref in refs:
        rtype, rid = ref.split("/", 1)
        try:
            found = reader.read(rtype, rid)
        except CareVaultError:
            raise Unprocessable(f"resources: {ref} is not part of your record") from None
        if found.patient_id != patient_id or found.body is None:
            raise Unprocessable(f"resources: {ref} is not part of your record")
        if _foreign(orjson.loads(found.body), tenant_id):
            raise Unprocessable(
                f"resources: {ref} was created by another organization (its meta.source says "
                "so); only its originator may amend it: ask them, and we will record their "
                "amendment when it arrives"
            )


def apply(
    gate: Callable[[Actor], Gate],
    tenant_id: str,
    patient_id: str,
    request_id: str,
    amended: object,
    asked: Sequence[str],
) -> tuple[str, ...]:
    """Write the amended resources (each one of those the request named) through the gate."""
    if not isinstance(amended, list) or not amended:
        raise Invalid("amended: give the amended resources (each one the request named)")
    bodies: list[tuple[str, str, dict[str, Any]]] = []
    for body in amended:
        ref = f"{body.get('resourceType')}/{body.get('id')}" if isinstance(body, dict) else ""
        if ref not in asked:
            raise Invalid("amended: each resource must be one the request named")
        assert isinstance(body, dict)
        bodies.append((str(body["resourceType"]), str(body["id"]), body))
    check_amendable(gate, tenant_id, patient_id, [f"{t}/{i}" for t, i, _ in bodies])
    writer = gate(system_actor(tenant_id, f"rights: amendment {request_id}"))
    for rtype, rid, body in bodies:
        writer.update(rtype, rid, body)
    return tuple(f"{t}/{i}" for t, i, _ in bodies)


def prior_recipients(
    conn: Connection, vault: Vault, tenant_id: str, patient_id: str, refs: Sequence[str]
) -> list[str]:
    """Recipients the ledger shows received any of these resources (164.526(c)(3))."""
    wanted = set(refs)
    found: dict[str, None] = {}
    for row in read_entries(conn, vault, tenant_id, patient_id):
        if row.entry is not None and wanted & set(row.entry.resource_refs):
            found[row.entry.recipient_ref] = None
    return list(found)
