"""Group commit: many requests' changes and audit entries, one durable commit.

Every answered request must have its audit entry committed first; a commit per
read would cost an fsync per read. One writer thread takes whatever work is
queued, runs each piece in its own savepoint (so one failure rolls back only
itself), commits once, then wakes every waiting request.

Appends that can be merged (audit entries of one chain) are handed over as items
and flushed together, one call per group per batch, after the other work.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")
log = logging.getLogger("carevault.commit")

Flush = Callable[[Connection, Hashable, list[Any]], None]
"""Writes every item queued for one group (say, one audit chain) in one go."""


class CommitFailed(Exception):
    """The batch this work was in could not be committed; nothing of it was kept."""


@dataclass
class _Job:
    work: Callable[[Connection], Any] | None = None
    merge: tuple[Flush, Hashable, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, engine: Engine, *, batch_max: int = 256) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="carevault-committer", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[Connection], T]) -> T:
        """Run work in the next group transaction; return once that transaction is durable."""
        job = self._wait(_Job(work=work))
        return job.result  # type: ignore[no-any-return]

    def submit_merged(self, flush: Flush, group: Hashable, item: Any) -> None:
        """Queue an item that flush writes together with the batch's other items of its group;
        return once it is durable."""
        self._wait(_Job(merge=(flush, group, item)))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _wait(self, job: _Job) -> _Job:
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._batch_max:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Job]) -> None:
        try:
            with self._engine.begin() as conn:
                for job in batch:
                    if job.work is not None:
                        self._in_savepoint(conn, [job], job.work)
                for (flush, group), jobs in _merge_groups(batch).items():
                    items = [job.merge[2] for job in jobs if job.merge is not None]
                    self._in_savepoint(conn, jobs, lambda c: flush(c, group, items))  # noqa: B023
        except Exception as exc:
            log.error(
                "group commit failed", extra={"batch": len(batch), "error": type(exc).__name__}
            )
            for job in batch:
                job.error = job.error or CommitFailed("the transaction could not be committed")
                job.result = None
        finally:
            for job in batch:
                job.done.set()

    @staticmethod
    def _in_savepoint(
        conn: Connection, jobs: list[_Job], work: Callable[[Connection], Any]
    ) -> None:
        savepoint = conn.begin_nested()
        try:
            result = work(conn)
            savepoint.commit()
        except Exception as exc:  # the work's own failure, handed back to its callers
            savepoint.rollback()
            for job in jobs:
                job.error = exc
            return
        for job in jobs:
            job.result = result


def _merge_groups(batch: list[_Job]) -> dict[tuple[Flush, Hashable], list[_Job]]:
    groups: dict[tuple[Flush, Hashable], list[_Job]] = {}
    for job in batch:
        if job.merge is not None:
            flush, group, _ = job.merge
            groups.setdefault((flush, group), []).append(job)
    return groups
