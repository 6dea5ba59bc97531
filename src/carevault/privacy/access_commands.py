"""`carevault access …`: representatives, practitioner links and break-glass naming from the
command line. Recorded as the named system actor "cli", and audited like the HTTP routes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Annotated

import typer

from carevault.audit.models import RequestInfo
from carevault.identity.models import Actor, system_actor
from carevault.runtime import Runtime

Opened = Callable[[], AbstractContextManager[Runtime]]
_TENANT = Annotated[str, typer.Option(help="Tenant slug")]
_CLI = RequestInfo(request_id="cli")


def _actor(rt: Runtime, slug: str) -> Actor:
    return system_actor(rt.identity.tenant_by_slug(slug).tenant_id, "cli")


def register(app: typer.Typer, opened: Opened) -> None:
    @app.command("link-practitioner")
    def link_practitioner(
        tenant: _TENANT,
        user: Annotated[str, typer.Option(help="The workforce user's email")],
        practitioner: Annotated[
            str | None, typer.Option(help="Practitioner id; omit to unlink")
        ] = None,
    ) -> None:
        """Say which Practitioner resource a workforce user is (care-team rules)."""
        with opened() as rt:
            uid = rt.identity.user_id_by_email(rt.identity.tenant_by_slug(tenant), user)
            rt.representations.link_practitioner(_actor(rt, tenant), _CLI, uid, practitioner)
            typer.echo(f"user {uid} linked to Practitioner/{practitioner}" if practitioner
                       else f"user {uid} unlinked")  # fmt: skip

    @app.command("break-glass")
    def name_break_glass(
        tenant: _TENANT,
        user: Annotated[str, typer.Option(help="The practitioner's email")],
        allow: Annotated[bool, typer.Option("--allow/--deny", help="Name or un-name")] = True,
    ) -> None:
        """Name (or un-name) a practitioner as one who may break the glass."""
        with opened() as rt:
            uid = rt.identity.user_id_by_email(rt.identity.tenant_by_slug(tenant), user)
            rt.break_glass.name_user(_actor(rt, tenant), uid, allow, _CLI)
            typer.echo(f"user {uid} {'may' if allow else 'may not'} break the glass")

    @app.command("represent")
    def represent(
        tenant: _TENANT,
        representative: Annotated[str, typer.Option(help="The representative user's email")],
        patient: Annotated[str, typer.Option(help="Patient id")],
        kind: Annotated[str, typer.Option(help="parent, guardian, authorized-agent, …")],
        method: Annotated[str, typer.Option(help="How it was verified, e.g. court-order")],
        document_reference: Annotated[str | None, typer.Option(help="DocumentReference id")] = None,
        document_digest: Annotated[str | None, typer.Option(help="SHA-256 of the document")] = None,
        expires: Annotated[str | None, typer.Option(help="ISO date-time with timezone")] = None,
    ) -> None:
        """Record and verify a representation in one step (both audited)."""
        with opened() as rt:
            found = rt.identity.tenant_by_slug(tenant)
            rep = rt.identity.user_id_by_email(found, representative)
            actor = _actor(rt, tenant)
            made = rt.representations.record(
                actor, _CLI, representative_id=rep, patient_id=patient, kind=kind,
                document_ref=document_reference, document_digest=document_digest,
                expires_at=expires,
            )  # fmt: skip
            done = rt.representations.verify(actor, _CLI, made.representation_id, method)
            typer.echo(f"{done.representation_id}\tverified\tends {done.reach_ends_at or '-'}")

    @app.command("revoke-representation")
    def revoke(
        tenant: _TENANT,
        representation: Annotated[str, typer.Option(help="The representation id")],
    ) -> None:
        """End a representation at once."""
        with opened() as rt:
            rt.representations.revoke(_actor(rt, tenant), _CLI, representation)
            typer.echo("revoked")
