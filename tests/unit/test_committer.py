"""Group commit: many callers, few transactions; one failure rolls back only itself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, event, insert, select

from carevault.committer import CommitFailed, GroupCommitter
from carevault.database import make_engine

meta = MetaData()
items = Table("items", meta, Column("n", Integer, primary_key=True))


def _all_at_once(count: int, call: Callable[[int], object]) -> None:
    """Run call(0..count-1) from as many threads, released together so they queue at once."""
    start = threading.Barrier(count)

    def one(n: int) -> None:
        start.wait()
        call(n)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}", writer=True, pool_size=2)
    meta.create_all(engine)
    yield engine
    engine.dispose()


def test_concurrent_work_is_committed_in_fewer_transactions(engine: Any) -> None:
    commits = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    committer = GroupCommitter(engine)
    _all_at_once(40, lambda n: committer.submit(lambda c: c.execute(insert(items).values(n=n))))
    committer.close()
    with engine.connect() as conn:
        assert sorted(conn.execute(select(items.c.n)).scalars()) == list(range(40))
    assert 1 <= len(commits) < 40


def test_a_failing_job_rolls_back_only_itself(engine: Any) -> None:
    committer = GroupCommitter(engine)

    def bad(conn: Connection) -> None:
        conn.execute(insert(items).values(n=2))
        raise ValueError("refused")

    committer.submit(lambda conn: conn.execute(insert(items).values(n=1)))
    with pytest.raises(ValueError, match="refused"):
        committer.submit(bad)
    committer.submit(lambda conn: conn.execute(insert(items).values(n=3)))
    committer.close()
    with engine.connect() as conn:
        assert sorted(conn.execute(select(items.c.n)).scalars()) == [1, 3]


def test_results_come_back_to_the_caller(engine: Any) -> None:
    committer = GroupCommitter(engine)
    assert committer.submit(lambda conn: 42) == 42
    committer.close()


def test_merged_items_of_a_group_are_flushed_in_one_call(engine: Any) -> None:
    calls: list[tuple[str, list[int]]] = []

    def flush(conn: Connection, group: object, batch: list[int]) -> None:
        calls.append((str(group), sorted(batch)))
        conn.execute(insert(items), [{"n": n} for n in batch])

    committer = GroupCommitter(engine)
    _all_at_once(30, lambda n: committer.submit_merged(flush, "chain-a", n))
    committer.close()
    with engine.connect() as conn:
        assert sorted(conn.execute(select(items.c.n)).scalars()) == list(range(30))
    assert sorted(n for _, batch in calls for n in batch) == list(range(30))
    assert len(calls) < 30  # merged, not one call per item


def test_a_change_and_its_merged_item_commit_together(engine: Any) -> None:
    flushed: list[int] = []

    def flush(conn: Connection, group: object, batch: list[int]) -> None:
        flushed.extend(batch)

    def change(conn: Connection) -> tuple[str, int]:
        conn.execute(insert(items).values(n=5))
        return "done", 5

    committer = GroupCommitter(engine)
    assert committer.submit_then_merge(change, flush, "chain-a") == "done"
    committer.close()
    assert flushed == [5]


def test_a_failing_flush_rolls_back_the_changes_it_would_have_recorded(engine: Any) -> None:
    def bad(conn: Connection, group: object, batch: list[int]) -> None:
        raise ValueError("chain locked")

    def change(conn: Connection) -> tuple[str, int]:
        conn.execute(insert(items).values(n=9))
        return "done", 9

    committer = GroupCommitter(engine)
    with pytest.raises(CommitFailed):
        committer.submit_then_merge(change, bad, "chain-a")
    with pytest.raises(CommitFailed):
        committer.submit_merged(bad, "chain-a", 1)
    committer.submit(lambda conn: conn.execute(insert(items).values(n=7)))
    committer.close()
    with engine.connect() as conn:
        assert list(conn.execute(select(items.c.n)).scalars()) == [7]


def test_a_failed_change_hands_over_no_item(engine: Any) -> None:
    flushed: list[int] = []

    def flush(conn: Connection, group: object, batch: list[int]) -> None:
        flushed.extend(batch)

    def change(conn: Connection) -> tuple[str, int]:
        raise ValueError("invalid")

    committer = GroupCommitter(engine)
    with pytest.raises(ValueError, match="invalid"):
        committer.submit_then_merge(change, flush, "chain-a")
    committer.close()
    assert flushed == []
