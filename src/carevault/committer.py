"""Group commit: many requests' changes and audit entries, one durable commit.

Every answered request must have its audit entry committed first; a commit per
read would cost an fsync per read. One writer thread takes whatever work is
queued, runs each piece in its own savepoint (so one failure rolls back only
itself), commits once, then wakes every waiting request.

Appends that can be merged (audit entries of one chain) are handed over as items
and flushed together, one call per group per batch, after the other work. A change
can hand over its item too (its audit entry): it is flushed in the same transaction,
and if a flush fails the whole batch is rolled back, so no change and no answer ever
outlives its audit entry.
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
    then_merge: tuple[Flush, Hashable] | None = None
    """For work returning (result, item): where its item goes once the work succeeded."""
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

    def submit_then_merge(
        self, work: Callable[[Connection], tuple[T, Any]], flush: Flush, group: Hashable
    ) -> T:
        """Run work (returning its result and an item) in the next group transaction; its item
        is flushed with its group in that same transaction. Returns once durable."""
        job = self._wait(_Job(work=work, then_merge=(flush, group)))
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
                        self._in_savepoint(conn, job)
                for (flush, group), items in _merge_groups(batch).items():
                    flush(conn, group, items)  # a failure here fails the whole batch
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
    def _in_savepoint(conn: Connection, job: _Job) -> None:
        assert job.work is not None
        savepoint = conn.begin_nested()
        try:
            result = job.work(conn)
            savepoint.commit()
        except Exception as exc:  # the work's own failure, handed back to its caller
            savepoint.rollback()
            job.error = exc
            return
        if job.then_merge is not None:
            result, item = result
            job.merge = (*job.then_merge, item)
        job.result = result


def _merge_groups(batch: list[_Job]) -> dict[tuple[Flush, Hashable], list[Any]]:
    groups: dict[tuple[Flush, Hashable], list[Any]] = {}
    for job in batch:
        if job.merge is not None and job.error is None:
            flush, group, item = job.merge
            groups.setdefault((flush, group), []).append(item)
    return groups
