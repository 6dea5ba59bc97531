"""The "gate off" baseline: the same app with the gate replaced by a bench-only bypass.

BENCHMARK ONLY. This lives in bench/ and never in src/: there is no setting that turns the
gate off. The bypass keeps token authentication (the bypass is about the gate alone) and calls
the record store directly with a tenant-wide scope: no decision, no minimum necessary, no audit
entry, no wait on the group commit for reads; a create commits in its own transaction on the
runtime's writer engine.

Run (the bench does this, pinned to one core):
    python bench/gate_bypass.py --port 8001
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from carevault.app import create_app
from carevault.clock import isoformat
from carevault.errors import Gone, NotFound
from carevault.identity.models import Actor
from carevault.logging_setup import configure
from carevault.privacy.gate import SearchResult
from carevault.privacy.paging import PageState, open_page, seal_page
from carevault.records import validation
from carevault.records.store import RecordStore, Scope, Version
from carevault.runtime import Runtime
from carevault.settings import Settings
from carevault.web.fhir_api import deps


class BypassGate:
    """Quacks like carevault.privacy.gate.Gate for read, search and create; does only storage."""

    def __init__(self, runtime: Runtime, actor: Actor, write_lock: threading.Lock | None) -> None:
        self._rt = runtime
        self._store: RecordStore = runtime.gate_services.store
        self._actor = actor
        self._scope = Scope(actor.tenant_id)  # tenant-wide: no compartment filter
        self._write_lock = write_lock

    def read(self, rtype: str, rid: str) -> Version:
        with self._rt.reader.connect() as conn:
            found = self._store.read(conn, self._scope, rtype, rid)
            conn.rollback()
        if found is None:
            raise NotFound(f"{rtype}/{rid} is not known")
        if found.deleted:
            raise Gone(f"{rtype}/{rid} was deleted")
        return found

    def search(
        self,
        rtype: str,
        params: Sequence[tuple[str, str]],
        *,
        page: str | None = None,
        lenient: bool = False,
    ) -> SearchResult:
        # Paging tokens are part of answering a search, not of the policy: keep them.
        vault, tenant, user = self._rt.vault, self._actor.tenant_id, self._actor.user_id
        after = None
        if page is not None:
            state = open_page(vault, tenant, user, page, self._rt.clock.now())
            params, after = state.params, state.after or None
        services = self._rt.gate_services
        with self._rt.reader.connect() as conn:
            found = self._store.search(
                conn,
                self._scope,
                rtype,
                params,
                after=after,
                default_count=services.default_count,
                max_count=services.max_count,
                lenient=lenient,
            )
            conn.rollback()
        next_page = None
        if found.next_after is not None:
            state = PageState(rtype, tuple(params), found.next_after)
            next_page = seal_page(vault, tenant, user, state, self._rt.clock.now())
        return SearchResult(found.versions, found.total, next_page, found.ignored)

    def create(self, rtype: str, body: Any) -> Version:
        resource = validation.validate(rtype, body)
        with self._writing(), self._rt.writer.begin() as conn:
            now = isoformat(self._rt.clock.now())
            return self._store.create(conn, self._scope, rtype, resource, now)

    def audit_refusal(self, *_args: Any, **_kwargs: Any) -> None:
        """The routes audit a refusal found before the gate (bad input) through it: not here."""

    @contextmanager
    def _writing(self) -> Iterator[None]:
        # SQLite has one writer: queue in-process rather than in SQLite's sleeping busy handler.
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            yield


def bypass_app(runtime: Runtime) -> FastAPI:
    """carevault.app.create_app(runtime) with the gate dependency replaced by BypassGate."""
    app = create_app(runtime, close_runtime=True)
    lock = threading.Lock() if runtime.writer.dialect.name == "sqlite" else None

    async def bypass_gate(request: Request) -> deps.GateCall:
        call = await deps.gate(request)  # the same token authentication, in the same hop

        def open_bypass(actor: Actor, _info: object) -> BypassGate:
            return BypassGate(runtime, actor, lock)

        return dataclasses.replace(call, open_gate=open_bypass)

    app.dependency_overrides[deps.gate] = bypass_gate
    return app


def create_bypass_app() -> FastAPI:
    """ASGI app factory (uvicorn --factory), configured from CAREVAULT_* like `carevault serve`."""
    settings = Settings()
    configure(settings.log_dir)
    return bypass_app(Runtime(settings))


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the FHIR API with the gate bypassed.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The same uvicorn options as carevault.server.run, so only the gate differs.
    uvicorn.run(
        create_bypass_app(),
        host=args.host,
        port=args.port,
        access_log=False,
        log_config=None,
        http="httptools",
        loop="uvloop",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
