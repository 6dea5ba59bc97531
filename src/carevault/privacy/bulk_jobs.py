"""Export jobs: kick-off, one worker thread, status, download, cancel, expiry.

FHIR Bulk Data `$export` is the first kind: it runs as the actor who asked, through
`Gate.export`: the same permissions, compartments, minimum necessary and per-patient
audit as any read. Any other kind of job (a de-identified research extract) hands
`start` a producer that writes its files through `JobFiles`. A job's files are
sealed at rest (sealed_files.py) under `$CAREVAULT_HOME/exports/<job>/`, opened only
while a download streams, deleted once each is downloaded whole, and in any case when
the job expires (an hour after it ends, by the injected clock; purged when a job is
started or polled in that tenant). Only the user who started a job sees it: to anyone
else it does not exist (404).

The worker lives in this process: a job queued or running in a process that stopped is
failed when that process closes, and is purged when it expires like any other.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Row, delete, insert, select, update

from carevault.audit.models import RequestInfo
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Invalid, NotFound
from carevault.identity.models import Actor
from carevault.privacy.export_models import export_jobs
from carevault.privacy.exporter import ExportStream
from carevault.privacy.gate import Gate
from carevault.privacy.sealed_files import BrokenFile, JobSealing, SealedWriter
from carevault.privacy.services import GateServices

log = logging.getLogger("carevault.export")

JOB_TTL = timedelta(hours=1)
"""How long a finished job's files and status are kept."""
JOB_DEADLINE = timedelta(hours=24)
"""A job not finished by then (its process stopped) is purged like an expired one."""
EXPORTS_DIR = "exports"

QUEUED, RUNNING, COMPLETED, FAILED = "queued", "running", "completed", "failed"
LEVELS = ("system", "patient", "group")


class ExportFailed(CareVaultError):
    """The job could not finish (its status answers this; nothing else is said)."""

    status, code = 500, "exception"


class JobFailed(CareVaultError):
    """A producer's refusal to finish for a reason it can name; the files it lists in `kept`
    (a report of why) stay downloadable, the rest are removed."""

    status, code = 422, "processing"

    def __init__(self, message: str, kept: tuple[OutputFile, ...] = ()) -> None:
        super().__init__(message)
        self.kept = kept


@dataclass(frozen=True)
class KickOff:
    """A validated kick-off request."""

    level: str
    """system, patient or group."""
    request_url: str
    """The kick-off URL, echoed in the manifest (ids and parameter names only)."""
    types: tuple[str, ...] | None = None
    since: str | None = None
    group_id: str | None = None


@dataclass(frozen=True)
class OutputFile:
    resource_type: str
    name: str
    count: int
    sha256: str | None = None
    """The plaintext's digest, when the producer knows it (a recipient checks the file)."""


@dataclass(frozen=True)
class JobView:
    job_id: str
    level: str
    state: str
    transaction_time: str
    request_url: str
    progress: int
    output: tuple[OutputFile, ...]
    error: str | None


@dataclass
class _Task:
    job_id: str
    actor: Actor
    produce: Producer
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: bool = False


class _Stopped(Exception):
    """The runtime is closing: the running job is failed rather than left half-written."""


class _Cancelled(Exception):
    """The requester cancelled the job (or it expired) while it ran."""


class JobFiles:
    """What a producer is handed: the job's folder (0700), sealed files in it, progress,
    and `check`, which stops the producer when the job is cancelled or the server stops."""

    def __init__(self, exports: BulkExports, task: _Task, folder: Path) -> None:
        self._exports = exports
        self._task = task
        self.folder = folder

    @property
    def job_id(self) -> str:
        """Its sealed files are labelled with it (sealed_files.JobSealing)."""
        return self._task.job_id

    def sealed(self, name: str) -> SealedWriter:
        """A new sealed file of the job, named as its download will be."""
        sealing = JobSealing(self._exports._s.vault, self._task.actor.tenant_id, self.job_id)
        return sealing.writer(self.folder / name, name)

    def progress(self, done: int) -> None:
        """Record how far the job is (resources or patients), then `check`."""
        self._exports._update(self._task, progress=done)
        self.check()

    def check(self) -> None:
        if self._task.cancelled.is_set():
            raise _Cancelled
        if self._exports._stop.is_set():
            raise _Stopped


Producer = Callable[[JobFiles], tuple[OutputFile, ...]]
"""Writes a job's files (in the worker thread) and lists them."""


class BulkExports:
    def __init__(
        self,
        services: GateServices,
        home: Path,
        open_gate: Callable[[Actor, RequestInfo], Gate],
        *,
        ttl: timedelta = JOB_TTL,
    ) -> None:
        self._s = services
        self._root = home / EXPORTS_DIR
        self._open_gate = open_gate
        self._ttl = ttl
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="carevault-export", daemon=True)
        self._thread.start()

    # -- the requester's side ------------------------------------------------------

    def kick_off(self, gate: Gate, request: KickOff, info: RequestInfo) -> str:
        """Check the request as the actor (refusals raised and audited now), queue the job."""
        actor = gate.actor
        self.purge_expired(actor.tenant_id)
        patients = None
        if request.level == "group":
            if request.group_id is None:
                raise Invalid("a group export names its Group")
            patients = group_members(gate.read("Group", request.group_id).body)
        _stream(gate, request, patients)  # decides now: a refusal is the kick-off's answer

        def produce(files: JobFiles) -> tuple[OutputFile, ...]:
            stream = _stream(self._open_gate(actor, info), request, patients)
            return _write_ndjson(files, stream)

        return self.start(actor, request.level, request.request_url, produce)

    def start(self, actor: Actor, level: str, request_url: str, produce: Producer) -> str:
        """Queue a job of any kind (its request already checked); its id."""
        self.purge_expired(actor.tenant_id)
        job_id = uuid.uuid4().hex
        now = self._s.clock.now()
        row = {
            "tenant_id": actor.tenant_id, "job_id": job_id, "user_id": actor.user_id,
            "level": level, "state": QUEUED, "request_url": request_url,
            "transaction_time": isoformat(now), "progress": 0,
            # a backstop: a job whose process died is purged in the end (set anew when it ends)
            "expires_at": isoformat(now + JOB_DEADLINE),
        }  # fmt: skip
        self._write(lambda conn: conn.execute(insert(export_jobs), row))
        task = _Task(job_id, actor, produce)
        with self._lock:
            self._tasks[job_id] = task
        self._queue.put(task)
        return job_id

    def status(self, actor: Actor, job_id: str, levels: Collection[str] = LEVELS) -> JobView:
        """The job, if it is the actor's and one of `levels` (the kinds the caller serves)."""
        self.purge_expired(actor.tenant_id)
        return _view(self._row(actor, job_id, levels))

    def download(
        self, actor: Actor, job_id: str, name: str, levels: Collection[str] = LEVELS
    ) -> Iterator[bytes]:
        """The file's plaintext, chunk by chunk; the file is deleted once streamed whole."""
        self.purge_expired(actor.tenant_id)
        row = self._row(actor, job_id, levels)
        entry = next((o for o in _outputs(row) if o["name"] == name), None)
        path = self._folder(job_id) / name
        ended = row.state in (COMPLETED, FAILED)  # a failed job may keep its report
        if not ended or entry is None or entry["downloaded"] or not path.exists():
            raise NotFound("that export file is not (or no longer) available")
        chunks = JobSealing(self._s.vault, actor.tenant_id, job_id).chunks(path, name)
        try:
            first = next(chunks)  # opened now: a broken file is an error, not a cut stream
        except FileNotFoundError:  # fetched (or cancelled) a moment ago
            raise NotFound("that export file is not (or no longer) available") from None
        except BrokenFile:
            log.error("an export file failed authentication", extra={"job": job_id})
            raise ExportFailed(f"export file unreadable; quote job {job_id}") from None
        return self._stream_then_delete(actor.tenant_id, job_id, name, first, chunks)

    def cancel(self, actor: Actor, job_id: str, levels: Collection[str] = LEVELS) -> None:
        """Stop the job (if it runs) and remove it and its files."""
        self._row(actor, job_id, levels)
        self._write(lambda conn: conn.execute(delete(export_jobs).where(*_key(actor, job_id))))
        self._forget(job_id)

    def purge_expired(self, tenant_id: str) -> int:
        """Delete this tenant's expired jobs and their files; how many there were."""
        now = isoformat(self._s.clock.now())
        where = (
            export_jobs.c.tenant_id == tenant_id,
            export_jobs.c.expires_at.is_not(None),
            export_jobs.c.expires_at <= now,
        )
        with self._s.reader.connect() as conn:
            expired = [r.job_id for r in conn.execute(select(export_jobs.c.job_id).where(*where))]
            conn.rollback()
        if not expired:
            return 0
        self._write(lambda conn: conn.execute(delete(export_jobs).where(*where)))
        for job_id in expired:
            self._forget(job_id)
        return len(expired)

    def _forget(self, job_id: str) -> None:
        """Stop the job if it runs here, and remove its files (the worker does, if it runs)."""
        with self._lock:
            task = self._tasks.get(job_id)
            if task is not None:
                task.cancelled.set()
            remove_now = task is None or task.finished
            if remove_now:
                self._tasks.pop(job_id, None)
        if remove_now:
            self._remove_files(job_id)

    def wait(self, job_id: str, timeout: float) -> bool:
        """Block until the job has ended (tests, the CLI); False on timeout."""
        with self._lock:
            task = self._tasks.get(job_id)
        return True if task is None else task.done.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=30)

    # -- the worker ----------------------------------------------------------------

    def _run(self) -> None:
        while (task := self._queue.get()) is not None:
            try:
                self._execute(task)
            except Exception:  # never let one job take the worker down
                log.exception("the export worker failed", extra={"job": task.job_id})
            finally:
                task.done.set()

    def _execute(self, task: _Task) -> None:
        if task.cancelled.is_set():
            with self._lock:
                task.finished = True
                self._tasks.pop(task.job_id, None)
            return
        written: tuple[OutputFile, ...] | None = None
        kept: tuple[OutputFile, ...] = ()
        error: str | None = None
        try:
            self._update(task, state=RUNNING)
            folder = self._folder(task.job_id)
            self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700)
            written = task.produce(JobFiles(self, task, folder))
        except _Cancelled:
            pass
        except JobFailed as exc:
            error, kept = exc.message, exc.kept
        except CareVaultError as exc:
            error = exc.message
        except _Stopped:
            error = "the server stopped before the export finished"
        except Exception as exc:
            log.error("export job failed", extra={"job": task.job_id, "error": type(exc).__name__})
            error = "the export failed"
        if written is not None:
            self._finish(task, COMPLETED, written, None)
        elif not task.cancelled.is_set():
            if not kept:
                self._remove_files(task.job_id)
            self._finish(task, FAILED, kept, error)
        with self._lock:
            task.finished = True
            cancelled = task.cancelled.is_set()
        if cancelled:
            self._remove_files(task.job_id)
            with self._lock:
                self._tasks.pop(task.job_id, None)

    def _finish(
        self, task: _Task, state: str, output: tuple[OutputFile, ...], error: str | None
    ) -> None:
        now = self._s.clock.now()
        listed = [
            {"type": o.resource_type, "name": o.name, "count": o.count, "sha256": o.sha256,
             "downloaded": False}
            for o in output
        ]  # fmt: skip
        self._update(
            task,
            state=state,
            completed_at=isoformat(now),
            expires_at=isoformat(now + self._ttl),
            progress=sum(o.count for o in output),
            output=orjson.dumps(listed).decode(),
            error=error,
        )

    # -- downloads -----------------------------------------------------------------

    def _stream_then_delete(
        self, tenant_id: str, job_id: str, name: str, first: bytes, rest: Iterator[bytes]
    ) -> Iterator[bytes]:
        yield first
        try:
            yield from rest
        except BrokenFile:
            log.error("an export file failed authentication", extra={"job": job_id})
            raise
        # Streamed whole (a client that went away closes this generator before here).
        self._mark_downloaded(tenant_id, job_id, name)
        (self._folder(job_id) / name).unlink(missing_ok=True)

    def _mark_downloaded(self, tenant_id: str, job_id: str, name: str) -> None:
        key = (export_jobs.c.tenant_id == tenant_id, export_jobs.c.job_id == job_id)

        def work(conn: Connection) -> None:
            # Read and write in the writer's transaction: two downloads may end together.
            found = conn.execute(select(export_jobs.c.output).where(*key)).scalar_one_or_none()
            if found is None:
                return
            listed = orjson.loads(found)
            for entry in listed:
                if entry["name"] == name:
                    entry["downloaded"] = True
            conn.execute(
                update(export_jobs).where(*key).values(output=orjson.dumps(listed).decode())
            )

        self._write(work)

    # -- plumbing --------------------------------------------------------------------

    def _row(self, actor: Actor, job_id: str, levels: Collection[str]) -> Row[Any]:
        with self._s.reader.connect() as conn:
            row = conn.execute(select(export_jobs).where(*_key(actor, job_id))).one_or_none()
            conn.rollback()
        # Someone else's job (or a job of another kind) is answered like one that does not exist.
        if row is None or row.user_id != actor.user_id or row.level not in levels:
            raise NotFound("no such export job")
        return row

    def _update(self, task: _Task, **values: Any) -> None:
        where = _key(task.actor, task.job_id)
        self._write(lambda conn: conn.execute(update(export_jobs).where(*where).values(**values)))

    def _write(self, work: Callable[[Connection], Any]) -> None:
        self._s.committer.submit(work)

    def _folder(self, job_id: str) -> Path:
        return self._root / job_id

    def _remove_files(self, job_id: str) -> None:
        shutil.rmtree(self._folder(job_id), ignore_errors=True)


def group_members(body: bytes | None) -> frozenset[str]:
    """The patients a Group names as members (local `Patient/<id>` references)."""
    group = orjson.loads(body or b"{}")
    found = set()
    for member in group.get("member") or []:
        entity = member.get("entity") if isinstance(member, dict) else None
        reference = entity.get("reference") if isinstance(entity, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            found.add(reference.removeprefix("Patient/"))
    return frozenset(found)


def _write_ndjson(files: JobFiles, stream: ExportStream) -> tuple[OutputFile, ...]:
    """Seal each type's NDJSON into its file."""
    writers: dict[str, SealedWriter] = {}
    counts: dict[str, int] = {}
    try:
        for batch in stream:
            files.check()
            rtype = batch.resource_type
            if rtype not in writers:
                writers[rtype] = files.sealed(f"{rtype}.ndjson")
            writers[rtype].write(b"\n".join(batch.bodies) + b"\n")
            counts[rtype] = counts.get(rtype, 0) + len(batch.bodies)
            files.progress(sum(counts.values()))
        for writer in writers.values():
            writer.close()
        writers.clear()
    finally:
        for writer in writers.values():
            writer.abort()
    return tuple(OutputFile(t, f"{t}.ndjson", n) for t, n in counts.items())


def _stream(gate: Gate, request: KickOff, patients: frozenset[str] | None) -> ExportStream:
    return gate.export(
        request.types,
        patients=patients,
        patient_level=request.level != "system",
        since=request.since,
    )


def _key(actor: Actor, job_id: str) -> tuple[Any, ...]:
    return (export_jobs.c.tenant_id == actor.tenant_id, export_jobs.c.job_id == job_id)


def _outputs(row: Row[Any]) -> list[dict[str, Any]]:
    return list(orjson.loads(row.output)) if row.output else []


def _view(row: Row[Any]) -> JobView:
    output = tuple(OutputFile(o["type"], o["name"], int(o["count"]), o.get("sha256"))
                   for o in _outputs(row))  # fmt: skip
    return JobView(
        row.job_id,
        row.level,
        row.state,
        row.transaction_time,
        row.request_url,
        int(row.progress),
        output,
        row.error,
    )
