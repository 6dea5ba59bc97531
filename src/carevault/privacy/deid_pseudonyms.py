"""The de-identification pseudonym tables, sealed by the tenant (the Vault is reached here).

A project (a research study) has a random secret that keys the pseudonyms of its non-patient
resources, and one random re-identification code per patient: not derived from anything
about the patient (164.514(c)), stable across exports of the project, different across
projects. Rows are found by keyed hashes under a tenant sub-key; the patient-to-code link
and the secret are sealed under another, so a database copy cannot link a code to anyone.
Only system actors and the tenant's privacy officer reach these tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from carevault.clock import isoformat
from carevault.errors import Forbidden, Invalid, NotFound
from carevault.identity.models import Actor
from carevault.identity.permissions import Role
from carevault.privacy.deid_models import deid_projects, deid_pseudonyms
from carevault.privacy.services import GateServices

_SEAL = "deid-pseudonyms"
_INDEX = "deid-pseudonym-index"
CODE_BYTES = 16  # 128 random bits: 32 hex characters, a valid FHIR id


@dataclass(frozen=True)
class Project:
    tenant_id: str
    project_id: str
    name: str
    secret: bytes
    """Keys the project's pseudonyms of non-patient resources (never leaves the process)."""

    def pseudonym(self, rtype: str, rid: str) -> str:
        """A resource's id in this project: a keyed hash, unlinkable without the secret."""
        msg = f"{rtype}/{rid}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()[:32]

    def derived_key(self, label: str, code: str) -> bytes:
        """A per-patient key (surrogates, date shift) bound to the project and the code."""
        return hmac.new(self.secret, f"{label}\x00{code}".encode(), hashlib.sha256).digest()


def _allowed(actor: Actor) -> None:
    if actor.system_reason is None and actor.role is not Role.PRIVACY_OFFICER:
        raise Forbidden("only a system actor or the privacy officer reaches the pseudonym tables")


class DeidPseudonyms:
    def __init__(self, services: GateServices) -> None:
        self._s = services

    def _hash(self, tenant_id: str, project_id: str, kind: str, value: str) -> str:
        key = self._s.vault.subkey(tenant_id, _INDEX)
        msg = f"{project_id}\x00{kind}\x00{value}".encode()
        return hmac.new(key, msg, hashlib.sha256).hexdigest()

    # -- projects ----------------------------------------------------------------

    def project(self, actor: Actor, name: str, *, create: bool = True) -> Project:
        """The named project of the actor's tenant, created (with a new secret) if asked."""
        _allowed(actor)
        if not name or len(name) > 128 or not name.isprintable():
            raise Invalid("a project name is 1 to 128 printable characters")
        tenant = actor.tenant_id
        found = self._read_project(tenant, name)
        if found is not None or not create:
            if found is None:
                raise NotFound("no de-identification project of that name")
            return found

        def insert(conn: Connection) -> None:
            project_id = str(uuid.uuid4())
            sealed = self._s.vault.seal_for(
                tenant, _SEAL, secrets.token_bytes(32), f"project:{project_id}".encode()
            )
            conn.execute(deid_projects.insert().values(
                tenant_id=tenant, project_id=project_id, name=name, sealed_secret=sealed,
                created_at=isoformat(self._s.clock.now()), created_by=actor.user_id,
            ))  # fmt: skip

        with contextlib.suppress(IntegrityError):  # a concurrent export made it: read theirs
            self._s.committer.submit(insert)
        made = self._read_project(tenant, name)
        assert made is not None
        return made

    def _read_project(self, tenant_id: str, name: str) -> Project | None:
        with self._s.reader.connect() as conn:
            row = conn.execute(
                select(deid_projects).where(
                    deid_projects.c.tenant_id == tenant_id, deid_projects.c.name == name
                )
            ).first()
            conn.rollback()
        if row is None:
            return None
        aad = f"project:{row.project_id}".encode()
        secret = self._s.vault.open_for(tenant_id, _SEAL, row.sealed_secret, aad)
        return Project(tenant_id, row.project_id, row.name, secret)

    # -- patient codes -----------------------------------------------------------

    def codes(
        self, actor: Actor, project: Project, patient_ids: Collection[str], *, create: bool = True
    ) -> dict[str, str]:
        """Each patient's re-identification code in the project; new ones drawn at random."""
        _allowed(actor)
        wanted = {self._hash(project.tenant_id, project.project_id, "patient", p): p
                  for p in patient_ids}  # fmt: skip
        found = self._read_codes(project, wanted)
        missing = [h for h in wanted if h not in found]
        if missing and create:
            self._insert_codes(project, {h: wanted[h] for h in missing})
            found = self._read_codes(project, wanted)
        return {wanted[h]: code for h, code in found.items()}

    def _read_codes(self, project: Project, wanted: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        hashes = list(wanted)
        with self._s.reader.connect() as conn:
            for i in range(0, len(hashes), 500):
                rows = conn.execute(
                    select(deid_pseudonyms.c.patient_hash, deid_pseudonyms.c.sealed).where(
                        deid_pseudonyms.c.tenant_id == project.tenant_id,
                        deid_pseudonyms.c.project_id == project.project_id,
                        deid_pseudonyms.c.patient_hash.in_(hashes[i : i + 500]),
                    )
                )
                for patient_hash, sealed in rows:
                    link = self._open(project, patient_hash, sealed)
                    if link["patient_id"] == wanted[patient_hash]:
                        out[patient_hash] = link["code"]
            conn.rollback()
        return out

    def _open(self, project: Project, patient_hash: str, sealed: bytes) -> dict[str, str]:
        aad = f"{project.project_id}:{patient_hash}".encode()
        opened = self._s.vault.open_for(project.tenant_id, _SEAL, sealed, aad)
        link: dict[str, str] = json.loads(opened)
        return link

    def _insert_codes(self, project: Project, new: dict[str, str]) -> None:
        now = isoformat(self._s.clock.now())
        rows = []
        for patient_hash, patient_id in new.items():
            code = secrets.token_hex(CODE_BYTES)  # random: nothing about the patient in it
            link = json.dumps({"patient_id": patient_id, "code": code}).encode()
            aad = f"{project.project_id}:{patient_hash}".encode()
            rows.append({
                "tenant_id": project.tenant_id, "project_id": project.project_id,
                "patient_hash": patient_hash, "created_at": now,
                "code_hash": self._hash(project.tenant_id, project.project_id, "code", code),
                "sealed": self._s.vault.seal_for(project.tenant_id, _SEAL, link, aad),
            })  # fmt: skip

        try:
            self._s.committer.submit(partial(_insert, rows))
        except IntegrityError:
            for row in rows:  # a concurrent export drew some: keep theirs, add the rest
                with contextlib.suppress(IntegrityError):
                    self._s.committer.submit(partial(_insert, [row]))

    def reidentify(self, actor: Actor, project: Project, code: str) -> str | None:
        """The patient id behind a code (the tenant's re-identification; audited by callers)."""
        _allowed(actor)
        code_hash = self._hash(project.tenant_id, project.project_id, "code", code)
        with self._s.reader.connect() as conn:
            row = conn.execute(
                select(deid_pseudonyms.c.patient_hash, deid_pseudonyms.c.sealed).where(
                    deid_pseudonyms.c.tenant_id == project.tenant_id,
                    deid_pseudonyms.c.project_id == project.project_id,
                    deid_pseudonyms.c.code_hash == code_hash,
                )
            ).first()
            conn.rollback()
        if row is None:
            return None
        return self._open(project, row.patient_hash, row.sealed)["patient_id"]


def _insert(rows: list[dict[str, Any]], conn: Connection) -> None:
    conn.execute(deid_pseudonyms.insert(), rows)
