"""`carevault audit checkpoint|public-key|purge` and `carevault db grant-app-role`.

Registered on the command line's sub-apps by cli.py; `opened` is its runtime opener.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from carevault.audit.checkpoints import BadCheckpoint, Checkpoint
from carevault.audit.db_roles import grant_app_role
from carevault.audit.purge import purge
from carevault.clock import isoformat
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.database import make_engine

if TYPE_CHECKING:
    from carevault.runtime import Runtime

Opener = Callable[[], AbstractContextManager["Runtime"]]


def _chains(rt: Runtime, tenant: str | None) -> list[tuple[str, str]]:
    if tenant:
        return [(tenant, rt.identity.tenant_by_slug(tenant).tenant_id)]
    return [("vendor", VENDOR_CHAIN)] + [(t.slug, t.tenant_id) for t in rt.identity.list_tenants()]


def load_exported(paths: list[Path]) -> tuple[Checkpoint, ...]:
    try:
        return tuple(Checkpoint.from_json(p.read_bytes()) for p in paths)
    except OSError as exc:
        raise BadCheckpoint(f"cannot read a checkpoint file: {exc.strerror}") from None


def register(audit_app: typer.Typer, db_app: typer.Typer, opened: Opener) -> None:
    @audit_app.command("checkpoint")
    def checkpoint(
        tenant: Annotated[
            str | None, typer.Option(help="Tenant slug (default: every chain)")
        ] = None,
        out: Annotated[
            Path | None, typer.Option(help="Also write it to this new file (keep it off-site)")
        ] = None,
    ) -> None:
        """Sign each chain's head now; with --out (one tenant), export the signed checkpoint."""
        if out is not None and tenant is None:
            raise typer.BadParameter("--out needs --tenant", param_hint="--out")
        with opened() as rt:
            signer = rt.audit.signer
            for label, tenant_id in _chains(rt, tenant):
                at = isoformat(rt.clock.now())
                point: Checkpoint = rt.committer.submit(
                    partial(signer.checkpoint_head, tenant_id=tenant_id, at=at)
                )
                Console().print(f"{label}: checkpoint at entry {point.seq} signed")
                if out is not None:
                    document = point.to_json(signer.public_key_hex(tenant_id))
                    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(document)
                    Console().print(f"exported to {out}")

    @audit_app.command("public-key")
    def public_key(tenant: Annotated[str, typer.Option(help="Tenant slug, or 'vendor'")]) -> None:
        """Print the chain's checkpoint-signing public key (PEM) for an outside auditor."""
        with opened() as rt:
            tenant_id = VENDOR_CHAIN if tenant == "vendor" else None
            tenant_id = tenant_id or rt.identity.tenant_by_slug(tenant).tenant_id
            typer.echo(rt.audit.signer.public_key_pem(tenant_id), nl=False)

    @audit_app.command("purge")
    def purge_command(
        before: Annotated[str, typer.Option(help="Remove entries recorded before this date")],
        tenant: Annotated[str, typer.Option(help="Tenant slug, or 'vendor'")],
        archive_dir: Annotated[
            Path | None, typer.Option(help="Where the sealed archive goes (default HOME/audit)")
        ] = None,
    ) -> None:
        """Archive and remove audit entries older than 6 years, re-anchoring the chain."""
        try:
            text = before if "T" in before else before + "T00:00:00+00:00"
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise typer.BadParameter(
                "use a date such as 2019-01-01", param_hint="--before"
            ) from None
        with opened() as rt:
            tenant_id = VENDOR_CHAIN if tenant == "vendor" else None
            tenant_id = tenant_id or rt.identity.tenant_by_slug(tenant).tenant_id
            engine = make_engine(rt.settings.resolved_maintenance_url, writer=True, pool_size=1)
            try:
                report = purge(engine, rt.vault, rt.clock, tenant_id, moment,
                               archive_dir or rt.settings.home / "audit-archive")  # fmt: skip
            finally:
                engine.dispose()
            if report.removed == 0:
                Console().print("nothing to purge")
            else:
                Console().print(
                    f"{report.removed} entries ({report.first_seq}-{report.last_seq}) archived "
                    f"to {report.archive} and removed; the chain is anchored at {report.last_seq}"
                )

    @db_app.command("grant-app-role")
    def grant(
        name: Annotated[str, typer.Argument(help="The application's PostgreSQL role")],
    ) -> None:
        """As the owner: let NAME use the database but never update or delete audit entries."""
        with opened() as rt:
            engine = make_engine(rt.settings.resolved_maintenance_url, writer=True, pool_size=1)
            try:
                with engine.begin() as conn:
                    grant_app_role(conn, name)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
            finally:
                engine.dispose()
            Console().print(f"{name}: append-only on the audit; rerun after each migration")
