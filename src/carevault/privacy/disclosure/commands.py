"""`carevault disclosures …`: release the patients' held notices whose gag has ended."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import typer

from carevault.runtime import Runtime

Opened = Callable[[], AbstractContextManager[Runtime]]


def register(app: typer.Typer, opened: Opened) -> None:
    disclosures = typer.Typer(no_args_is_help=True, help="Disclosures: held patient notices.")
    app.add_typer(disclosures, name="disclosures")

    @disclosures.command("release-notices")
    def release_notices() -> None:
        """Send every held disclosure notice whose gag has ended (audited per tenant)."""
        with opened() as rt:
            report = rt.disclosures.release_due_notices()
        typer.echo(f"{report.notices} held notices released in {report.tenants} tenants")
