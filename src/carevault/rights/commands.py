"""`carevault requests list --tenant S [--due-before DATE]`: the privacy officer's queue;
`carevault requests directions [--recipient R]` and `requests direction ID sent|confirmed`:
the deletion directions to service providers, for the adapter (or person) who carries them.

Registered by cli.py (`register(app, opened)`); `--tenant vendor` lists the vendor's own
(CCPA) cases. Read as a named system actor, audited like the API's queue.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from carevault.audit.models import RequestInfo
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.identity.models import system_actor
from carevault.identity.permissions import Purpose
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
            items = rights_for(rt).queue(actor, due_before, RequestInfo())
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

    @requests_app.command("directions")
    def list_directions(
        recipient: Annotated[
            str | None, typer.Option(help="Only this recipient of the policy (e.g. vendors)")
        ] = None,
    ) -> None:
        """Deletion directions still to be sent to service providers, oldest first."""
        with opened() as rt:
            actor = system_actor(VENDOR_CHAIN, "requests directions (command line)")
            found = rights_for(rt).pending_directions(actor, recipient, RequestInfo())
        console = Console()
        if not found:
            console.print("no deletion directions to send")
            return
        for d in found:
            console.print(
                f"{d['direction_id']}  {d['recipient']:<20} {','.join(d['categories']):<24} "
                f"directed {d['directed_at'][:10]}  request {d['request_id']}",
                highlight=False,
            )

    @requests_app.command("direction")
    def report_direction(
        direction_id: Annotated[str, typer.Argument(help="The direction's id")],
        state: Annotated[str, typer.Argument(help="sent | confirmed")],
    ) -> None:
        """Record that a direction was sent, or that the provider confirmed the deletion."""
        with opened() as rt:
            actor = system_actor(VENDOR_CHAIN, "requests direction (command line)")
            rights_for(rt).mark_direction(actor, direction_id, state, RequestInfo())
        Console().print(f"direction {direction_id}: {state}", highlight=False)
