"""The `carevault` command."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from carevault.audit.checkpoints import BadCheckpoint
from carevault.audit.commands import load_exported
from carevault.audit.commands import register as register_audit_commands
from carevault.deid.commands import register as register_deid_commands
from carevault.errors import CareVaultError
from carevault.identity.account_base import Client
from carevault.identity.models import TenantKind, system_actor
from carevault.identity.permissions import Purpose, Role
from carevault.messaging.models import MessageState
from carevault.policy.commands import register as register_policy_commands
from carevault.privacy.access_commands import register as register_access_commands
from carevault.privacy.disclosure.commands import register as register_disclosure_commands
from carevault.privacy.importer import OnError
from carevault.retention.commands import register as register_retention_commands
from carevault.rights.commands import register as register_rights_commands
from carevault.runtime import NotInitialized, Runtime, initialize
from carevault.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="CareVault: health records where every privacy promise is code.",
)
tenant_app = typer.Typer(no_args_is_help=True, help="Tenants: practices, labs, imaging centres.")
user_app = typer.Typer(no_args_is_help=True, help="Users of a tenant.")
token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for programs.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")
keys_app = typer.Typer(no_args_is_help=True, help="The master key and the key store.")
privacy_app = typer.Typer(no_args_is_help=True, help="Oversight: snooping alerts.")
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
db_app = typer.Typer(no_args_is_help=True, help="Database roles (PostgreSQL).")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(privacy_app, name="privacy")
notifications_app = typer.Typer(no_args_is_help=True, help="The notification outbox (email).")
app.add_typer(notifications_app, name="notifications")

err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@contextmanager
def opened() -> Iterator[Runtime]:
    try:
        runtime = Runtime(Settings())
    except NotInitialized as exc:
        raise fail(str(exc)) from None
    try:
        yield runtime
    except CareVaultError as exc:
        raise fail(exc.message) from None
    finally:
        runtime.close()


@app.command()
def init() -> None:
    """Create the data folder, key store and master key; migrate the database."""
    settings = Settings()
    report = initialize(settings)
    out = Console()
    out.print(f"data folder: {settings.home.resolve()}")
    out.print(f"key store:   {report.keystore_path.resolve()} (kept apart from the database)")
    if report.created_keys:
        out.print(
            "[bold yellow]A new master key was created.[/bold yellow] Every record is encrypted "
            "under it: if every copy of it is lost, the data is lost for good. Write an escrow "
            "copy now and keep it apart from the data: `carevault keys escrow --out FILE`."
        )
    else:
        out.print("the existing master key and key store were kept; migrations are up to date")


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[
        str, typer.Option(help="Short name used on the command line, e.g. 'riverside'")
    ],
    name: Annotated[str, typer.Option(help="Display name")],
    kind: Annotated[TenantKind, typer.Option(help="What kind of covered entity")] = (
        TenantKind.PRACTICE
    ),
) -> None:
    """Create a tenant (a covered entity) with its own keys and audit chain."""
    with opened() as rt:
        tenant = rt.identity.create_tenant(slug, name, kind)
        Console().print(
            f"tenant {tenant.slug} created ({tenant.kind.value}), id {tenant.tenant_id}"
        )


@tenant_app.command("list")
def tenant_list() -> None:
    """List the tenants."""
    with opened() as rt:
        for tenant in rt.identity.list_tenants():
            # plain tab-separated lines: scripts read this
            typer.echo(f"{tenant.slug}\t{tenant.kind.value}\t{tenant.name}")


@user_app.command("create")
def user_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    email: Annotated[str, typer.Option(help="Sign-in email")],
    role: Annotated[Role, typer.Option(help="Role")],
    password: Annotated[str | None, typer.Option(help="Password (prompted if --prompt)")] = None,
    prompt: Annotated[bool, typer.Option(help="Ask for the password")] = False,
    patient: Annotated[str | None, typer.Option(help="Patient id, for a patient user")] = None,
) -> None:
    """Create a user of a tenant."""
    if prompt and password is None:
        password = getpass.getpass("password: ")
    with opened() as rt:
        found = rt.identity.tenant_by_slug(tenant)
        user_id = rt.identity.create_user(found, email, role, password=password, patient_id=patient)
        Console().print(f"user {user_id} created with role {role.value}")


@user_app.command("set-password")
def user_set_password(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    email: Annotated[str, typer.Option(help="The user's sign-in email")],
) -> None:
    """Set a user's password (asked for, never an argument); ends the user's sessions."""
    password = getpass.getpass("new password: ")
    with opened() as rt:
        found = rt.identity.tenant_by_slug(tenant)
        user_id = rt.identity.user_id_by_email(found, email)
        actor = system_actor(found.tenant_id, "cli set-password")
        rt.accounts.admin.set_password(actor, user_id, password, Client())
        Console().print(f"password set for user {user_id}; their sessions ended")


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    user: Annotated[str, typer.Option(help="The user's email")],
    scope: Annotated[list[str] | None, typer.Option(help="SMART scope, repeatable")] = None,
    purpose: Annotated[Purpose | None, typer.Option(help="PurposeOfUse the token carries")] = None,
    expires: Annotated[str, typer.Option(help="Lifetime (90m, 12h, 30d) or ISO time")] = "30d",
) -> None:
    """Issue a bearer token; prints the token on stdout and nothing else."""
    with opened() as rt:
        found = rt.identity.tenant_by_slug(tenant)
        user_id = rt.identity.user_id_by_email(found, user)
        issued = rt.identity.create_token(
            found, user_id, scopes=tuple(scope or ()), purpose=purpose, expires=expires
        )
        sys.stdout.write(issued.token + "\n")
        err.print(f"token id {issued.token_id}, expires {issued.expires_at}")


@token_app.command("revoke")
def token_revoke(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    token_id: Annotated[str, typer.Option(help="The token's id (printed when it was created)")],
) -> None:
    """Revoke a token at once."""
    with opened() as rt:
        rt.identity.revoke_token(rt.identity.tenant_by_slug(tenant), token_id)
        Console().print("revoked")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
) -> None:
    """Serve the FHIR API."""
    from carevault.server import run

    settings = Settings()
    try:
        run(settings, host=host, port=port)
    except NotInitialized as exc:
        raise fail(str(exc)) from None


@app.command()
def demo(
    seed_only: Annotated[bool, typer.Option(help="Seed the demo clinic, then exit")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the generator")] = 7,
    patients: Annotated[int, typer.Option(help="Patients per tenant")] = 30,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
) -> None:
    """Create a synthetic demo clinic (two tenants), print its logins and tokens, then serve."""
    from carevault.demo.seed import print_logins, seed_demo

    settings = Settings()
    initialize(settings)
    with opened() as rt:
        logins = seed_demo(rt, seed=seed, patients_per_tenant=patients)
    print_logins(logins, Console(), base_url=f"http://{host}:{port}/fhir")
    if not seed_only:
        serve(host=host, port=port)


@app.command()
def export(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    out: Annotated[Path, typer.Option(help="New directory for the NDJSON files (created 0700)")],
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="Resource type, repeatable (default: all)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only resources changed after this instant")
    ] = None,
) -> None:
    """Export a tenant's current resources as NDJSON, one file per type, through the gate."""
    from carevault.transfer.export_command import export_tenant, print_summary

    with opened() as rt:
        summary = export_tenant(rt, tenant, out, types=type_, since=since)
    print_summary(summary, Console())


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: every chain)")] = None,
    checkpoint: Annotated[
        list[Path] | None, typer.Option(help="An exported checkpoint file to check, repeatable")
    ] = None,
) -> None:
    """Verify the audit chain(s) and signed checkpoints; exit 1 naming the first bad entry."""
    try:
        exported = load_exported(checkpoint or [])
    except BadCheckpoint as exc:
        raise fail(str(exc)) from None
    with opened() as rt:
        if tenant:
            chains = [(tenant, rt.identity.tenant_by_slug(tenant).tenant_id)]
        else:
            chains = [("vendor", "_vendor")] + [
                (t.slug, t.tenant_id) for t in rt.identity.list_tenants()
            ]
        bad = False
        for label, tenant_id in chains:
            with rt.reader.connect() as conn:
                result = rt.audit.verify(conn, tenant_id, exported)
            if result.ok:
                Console().print(f"{label}: {result.verified} entries verified")
            else:
                bad = True
                Console().print(
                    f"{label}: [red]BROKEN[/red] after {result.verified} good entries: "
                    f"{result.problem}"
                )
    if bad:
        raise typer.Exit(1)


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="NDJSON files, Bundle files, folders")],
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    on_error: Annotated[
        OnError, typer.Option(help="abort: write nothing if any item is refused; skip: the rest")
    ] = OnError.ABORT,
    keep_unresolved: Annotated[
        bool,
        typer.Option(
            "--keep-unresolved/--strict-references",
            help="Keep references to resources in neither the files nor the tenant (a partial "
            "export, counted in the summary), or refuse the items that carry them",
        ),
    ] = True,
) -> None:
    """Import FHIR resources under their own ids; exit 1 if any item was refused."""
    from carevault.transfer.import_command import run_import

    with opened() as rt:
        code = run_import(rt, paths, tenant, on_error, keep_unresolved, err)
    if code:
        raise typer.Exit(code)


@keys_app.command("escrow")
def keys_escrow(
    out: Annotated[Path, typer.Option(help="Where to write the escrow file (must not exist)")],
    passphrase_env: Annotated[
        str | None, typer.Option(help="Read the passphrase from this environment variable")
    ] = None,
) -> None:
    """Write the master key, sealed under a passphrase, to a file kept apart from the data."""
    if out.exists():
        raise fail(f"{out} exists; choose a new file")
    if passphrase_env:
        passphrase = os.environ.get(passphrase_env, "")
    else:
        passphrase = getpass.getpass("escrow passphrase: ")
        if getpass.getpass("again: ") != passphrase:
            raise fail("the passphrases differ")
    if len(passphrase) < 12:
        raise fail("use a passphrase of at least 12 characters")
    with opened() as rt:
        document = rt.escrow_master_key(passphrase)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(document)
    Console().print(f"master key escrowed to {out}; keep it and its passphrase apart from the data")


@keys_app.command("rotate")
def keys_rotate(
    tenant: Annotated[
        list[str] | None, typer.Option(help="Re-wrap this tenant's data keys (repeatable)")
    ] = None,
    master: Annotated[
        bool, typer.Option("--master", help="Re-wrap every tenant key under a new master key")
    ] = False,
) -> None:
    """Re-wrap keys under new wrapping keys; no data is re-encrypted, search and audit keep."""
    if not tenant and not master:
        raise fail("name --tenant SLUG and/or --master")
    out = Console()
    with opened() as rt:
        for slug in tenant or []:
            found = rt.identity.tenant_by_slug(slug)
            done = rt.keys.rotate_tenant(system_actor(found.tenant_id, "keys rotate"))
            out.print(
                f"{slug}: key-encryption key v{done.new_version}, "
                f"{done.rewrapped} data keys re-wrapped"
            )
        if master:
            moved = rt.keys.rotate_master("keys rotate --master")
            out.print(
                f"master key rotated ({moved.old_fingerprint} -> {moved.new_fingerprint}); "
                f"{moved.rewrapped} keys re-wrapped"
            )
            err.print(
                "[yellow]escrow files of the old master key open nothing now: run "
                "`carevault keys escrow --out NEW_FILE` and store it apart from the data[/yellow]"
            )


@keys_app.command("shred-patient")
def keys_shred_patient(
    patient_id: Annotated[str, typer.Argument(help="The Patient resource id")],
    tenant: Annotated[str, typer.Option(help="The tenant's slug")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Destroy one patient's data key: their data becomes unreadable in every copy and backup."""
    if not yes:
        typer.confirm(
            f"Destroy the data key of Patient/{patient_id} in {tenant}? This cannot be undone",
            abort=True,
        )
    with opened() as rt:
        found = rt.identity.tenant_by_slug(tenant)
        report = rt.keys.shred_patient(
            system_actor(found.tenant_id, "keys shred-patient"), patient_id
        )
    Console().print(
        f"Patient/{patient_id}: {report.resources_removed} resources removed, data key "
        f"{'destroyed' if report.key_destroyed else 'already gone'}"
    )
    if not report.wal_truncated:
        err.print(
            "[yellow]the key store WAL was busy; it is truncated at the next shred or "
            "restart[/yellow]"
        )


@privacy_app.command("scan")
def privacy_scan(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: every tenant)")] = None,
) -> None:
    """Scan new audit entries for snooping now; prints entries walked and alerts raised."""
    with opened() as rt:
        if tenant:
            found = rt.identity.tenant_by_slug(tenant)
            reports = [rt.oversight.sentinel.scan(found.tenant_id)]
        else:
            reports = rt.oversight.scan_all()
    for report in reports:
        # ids and counts only: plain tab-separated lines, scripts read this
        typer.echo(f"{report.tenant_id}\t{report.entries} entries\t{len(report.raised)} alerts")


@notifications_app.command("send")
def notifications_send() -> None:
    """Deliver the notifications that are due now; exit 1 if no SMTP server is configured."""
    with opened() as rt:
        report = rt.notifications.deliver_due(limit=10_000)
    if not report.configured:
        raise fail(f"no SMTP server is configured (CAREVAULT_SMTP_HOST); "
                   f"{report.pending} due messages stay pending", code=1)  # fmt: skip
    typer.echo(f"{report.messages} messages: {report.sent} sent, {report.temporary} to retry, "
               f"{report.permanent} refused")  # fmt: skip


@notifications_app.command("list")
def notifications_list(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    state: Annotated[MessageState | None, typer.Option(help="Only this state")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 200,
) -> None:
    """List a tenant's notifications: ids, templates, states; never an address."""
    with opened() as rt:
        found = rt.identity.tenant_by_slug(tenant)
        messages = rt.notifications.list_messages(found.tenant_id, state, limit)
    for m in messages:
        # plain tab-separated lines: scripts read this; a user recipient is a user id
        typer.echo(f"{m.created_at}\t{m.message_id}\t{m.template}\t{m.recipient_kind}:"
                   f"{m.recipient}\t{m.state}\t{m.attempts}\t{m.next_attempt_at}")  # fmt: skip


register_audit_commands(audit_app, db_app, opened)
access_app = typer.Typer(no_args_is_help=True, help="Representatives, care links, break-glass.")
app.add_typer(access_app, name="access")
register_access_commands(access_app, opened)
register_rights_commands(app, opened)  # carevault requests list
register_retention_commands(app, tenant_app, opened)  # retention run, tenant offboard
register_deid_commands(app, opened)
register_policy_commands(app, opened)  # check, render, post, versions
register_disclosure_commands(app, opened)


def main() -> None:
    os.umask(0o077)  # databases, key store, logs and escrow files: owner only
    app()
