"""`carevault requests list --tenant S [--due-before DATE]`: the privacy officer's queue.

Registered by cli.py (`register(app, opened)`); `--tenant vendor` lists the vendor's own
(CCPA) cases. Read as a named system actor, audited like the API's queue.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.identity.models import system_actor
from carevault.identity.permissions import Purpose
from carevault.privacy.break_glass import Who
from carevault.rights.wiring import rights_for

if TYPE_CHECKING:
    from carevault.runtime import Runtime

Opener = Callable[[], AbstractContextManager["Runtime"]]


def register(app: typer.Typer, opened: Opener) -> None:
    requests_app = typer.Typer(no_args_is_help=True, help="Privacy rights requests.")
    app.add_typer(requests_app, name="requests")

    @requests_app.command("list")
    def list_requests(
        tenant: Annotated[str, typer.Option(help="Tenant slug, or 'vendor' for CCPA cases")],
        due_before: Annotated[
            str | None, typer.Option(help="Only cases due on or before this date (YYYY-MM-DD)")
        ] = None,
    ) -> None:
        """Open requests, soonest due first; LATE when the deadline has passed."""
        with opened() as rt:
            tenant_id = (
                VENDOR_CHAIN if tenant == "vendor" else rt.identity.tenant_by_slug(tenant).tenant_id
            )
            actor = system_actor(tenant_id, "requests list (command line)", Purpose.HCOMPL)
            items = rights_for(rt).queue(actor, due_before, Who())
        console = Console()
        if not items:
            console.print("no open requests")
            return
        for item in items:
            state = "LATE" if item.late else f"{item.days_left}d left"
            extended = " extended" if item.extended else ""
            console.print(
                f"{item.request_id}  {item.right:<17} {item.status:<9} "
                f"received {item.received_at[:10]}  due {item.due_at[:10]}  {state}{extended}",
                highlight=False,
            )
