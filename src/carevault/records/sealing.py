"""One resource version as it is kept: stamped with its meta, sealed under its patient's key,
bound by the associated data to tenant, type, id and version. Every path that writes or
reads versions (single writes, bulk import, bulk export, history) goes through here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from carevault.crypto.vault import TENANT_SHARED_KEY, Vault, patient_key_name


@dataclass(frozen=True)
class Version:
    resource_type: str
    resource_id: str
    version_id: int
    last_updated: str
    deleted: bool
    patient_id: str | None
    body: bytes | None
    """The resource JSON (meta included), or None for a deletion."""


@dataclass(frozen=True)
class Sealed:
    plaintext: bytes
    key_name: str
    sealed: bytes


def key_name(patient_id: str | None) -> str:
    """A compartment resource's patient key, or the tenant's shared key."""
    return patient_key_name(patient_id) if patient_id else TENANT_SHARED_KEY


def aad(tenant_id: str, rtype: str, rid: str, vid: int) -> bytes:
    return f"{tenant_id}|{rtype}|{rid}|{vid}".encode()


def seal(
    vault: Vault,
    tenant_id: str,
    rtype: str,
    rid: str,
    version_id: int,
    patient_id: str | None,
    body: dict[str, Any],
    now: str,
) -> Sealed:
    """The body with its id and server meta (versionId, lastUpdated), as JSON and sealed."""
    meta = dict(body.get("meta") or {})
    meta.update(versionId=str(version_id), lastUpdated=now)
    plaintext = orjson.dumps({**body, "id": rid, "meta": meta})
    name = key_name(patient_id)
    return Sealed(
        plaintext,
        name,
        vault.seal_record(tenant_id, name, plaintext, aad(tenant_id, rtype, rid, version_id)),
    )


def open_version(vault: Vault, tenant_id: str, row: Any) -> Version:
    """A stored version row (resource_versions columns), decrypted."""
    body = None
    if row.sealed is not None:
        associated = aad(tenant_id, row.resource_type, row.resource_id, row.version_id)
        body = vault.open_record(tenant_id, row.key_name, row.sealed, associated)
    return Version(
        row.resource_type,
        row.resource_id,
        row.version_id,
        row.last_updated,
        bool(row.deleted),
        row.patient_id,
        body,
    )
