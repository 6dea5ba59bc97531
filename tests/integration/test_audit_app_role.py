"""On PostgreSQL the application's role appends to the audit but never updates or deletes it,
and the application still runs under that role; the purge runs under the maintenance role."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.audit.purge import purge
from carevault.clock import ManualClock
from carevault.database import make_engine
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.cli_process import run_cli
from tests.conftest import START, Clinic


@pytest.mark.postgres
def test_app_role_is_append_only(
    backend: str,
    settings: Settings,
    runtime: Runtime,
    clinic: Clinic,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    if backend != "postgres":
        pytest.skip("database roles are PostgreSQL's")
    owner_url = settings.resolved_database_url
    role = f"cv_app_{os.getpid()}"
    conninfo = owner_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        env_settings = Settings(home=settings.home, database_url=owner_url)
        granted = run_cli(env_settings, "db", "grant-app-role", role)
        assert granted.returncode == 0, granted.stdout + granted.stderr
        app_url = owner_url.replace("://postgres@", f"://{role}@")
        app_conn = conninfo.replace("://postgres@", f"://{role}@")
        with psycopg.connect(app_conn, autocommit=True) as conn:
            rows = conn.execute("SELECT count(*) FROM audit_entries").fetchone()
            assert rows is not None
            assert rows[0] > 0
            for statement in (
                "UPDATE audit_entries SET detail = 'x'",
                "DELETE FROM audit_entries",
                "TRUNCATE audit_entries",
                "DELETE FROM audit_checkpoints",
                "DELETE FROM audit_purges",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)

        # The application runs under the app role: sign-in, reads, writes, audit all work.
        app_settings = Settings(
            home=settings.home, database_url=app_url, maintenance_database_url=owner_url
        )
        app_runtime = Runtime(app_settings, clock=clock)
        try:
            with TestClient(create_app(app_runtime), raise_server_exceptions=False) as client:
                north = clinic.north
                r = client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers())
                assert r.status_code == 200
                created = client.post(
                    "/fhir/Observation",
                    headers=north.headers(),
                    json={
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"text": "pulse"},
                        "subject": {"reference": f"Patient/{north.patient_id}"},
                    },
                )
                assert created.status_code == 201, created.text
                assert (
                    client.get(
                        "/audit/report", headers=north.headers("privacy-officer")
                    ).status_code
                    == 200
                )
            assert app_runtime.audit_verification(north.tenant_id).ok

            # The purge needs the maintenance role; under the app role it cannot delete.
            clock.advance(timedelta(days=365 * 7))
            app_engine = make_engine(app_url, writer=True, pool_size=1)
            try:
                with pytest.raises(sa.exc.ProgrammingError):
                    purge(
                        app_engine,
                        app_runtime.vault,
                        clock,
                        north.tenant_id,
                        START + timedelta(days=1),
                        tmp_path / "a",
                    )
            finally:
                app_engine.dispose()
            owner = make_engine(app_settings.resolved_maintenance_url, writer=True, pool_size=1)
            try:
                done = purge(
                    owner,
                    app_runtime.vault,
                    clock,
                    north.tenant_id,
                    START + timedelta(days=1),
                    tmp_path / "b",
                )
            finally:
                owner.dispose()
            assert done.removed > 0
            assert app_runtime.audit_verification(north.tenant_id).ok
        finally:
            app_runtime.close()
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            db = owner_url.rsplit("/", 1)[1]
            conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            conn.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
            conn.execute(f'REVOKE ALL ON DATABASE "{db}" FROM {role}')
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_grant_app_role_refuses_sqlite_and_bad_names(settings: Settings, runtime: Runtime) -> None:
    if settings.database_url:
        bad = run_cli(settings, "db", "grant-app-role", "Robert'); DROP")
        assert bad.returncode == 2
        return
    refused = run_cli(settings, "db", "grant-app-role", "cv_app")
    assert refused.returncode == 2
    assert "PostgreSQL" in refused.stderr
