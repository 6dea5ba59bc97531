"""The audit hash chain on its own (in-memory SQLite, a random key): every kind of tampering
an attacker with write access to the database, but not to the key store, could try is
detected, and verification names the FIRST entry touched."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine

import carevault.privacy.schema  # noqa: F401  (registers every table on the metadata)
from carevault.audit import chain
from carevault.audit.models import Action, AuditRecord, Outcome, audit_entries, audit_heads
from carevault.clock import isoformat
from carevault.database import metadata

TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ACTIONS = list(Action)
OUTCOMES = list(Outcome)


def make_record(i: int) -> AuditRecord:
    """A varied, PHI-free entry; i makes each one distinct."""
    return AuditRecord(
        recorded_at=isoformat(START + timedelta(seconds=i)),
        actor_id=f"user-{i % 3}",
        actor_role=("practitioner", "staff", "patient")[i % 3],
        action=ACTIONS[i % len(ACTIONS)],
        outcome=OUTCOMES[i % len(OUTCOMES)],
        status=(200, 201, 404, 403)[i % 4],
        purpose=("TREAT", "HOPERAT", None)[i % 3],
        resource_type="Patient",
        resource_ids=(f"res-{i}",),
        patient_ids=tuple(f"pat-{j}" for j in range(i % 4)),
        request_id=f"req-{i}",
        source_ip="127.0.0.1" if i % 2 else None,
        user_agent="pytest" if i % 2 else None,
        detail=f"entry {i}" if i % 5 else None,
    )


def new_engine() -> Engine:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    return engine


def build_chain(engine: Engine, key: bytes, n: int, tenant: str = TENANT) -> None:
    """n entries, appended in a few separate transactions (as the committer would)."""
    with engine.begin() as conn:
        chain.start_chain(conn, key, tenant)
    done = 0
    while done < n:
        step = min(3, n - done)
        with engine.begin() as conn:
            last = chain.append(conn, key, tenant, [make_record(done + i) for i in range(step)])
        done += step
        assert last == done


def verify(engine: Engine, key: bytes, tenant: str = TENANT, **kw: Any) -> chain.Verification:
    with engine.connect() as conn:
        return chain.verify(conn, key, tenant, **kw)


def entry(conn: Connection, seq: int, tenant: str = TENANT) -> dict[str, Any]:
    row = conn.execute(
        sa.select(audit_entries).where(
            audit_entries.c.tenant_id == tenant, audit_entries.c.seq == seq
        )
    ).mappings()
    return dict(row.one())


def set_fields(conn: Connection, at: int, values: dict[str, Any], tenant: str = TENANT) -> None:
    """Overwrite columns of entry `at` (values may include seq or tenant_id themselves)."""
    result = conn.execute(
        sa.update(audit_entries)
        .where(audit_entries.c.tenant_id == tenant, audit_entries.c.seq == at)
        .values(values)
    )
    assert result.rowcount == 1


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = new_engine()
    yield engine
    engine.dispose()


N = 12


@pytest.fixture
def chained(engine: Engine, key: bytes) -> Engine:
    build_chain(engine, key, N)
    result = verify(engine, key)
    assert result.ok, result
    assert result.verified == N
    return engine


# -- a sound chain ------------------------------------------------------------------------------


def test_an_empty_chain_verifies_with_zero_entries(engine: Engine, key: bytes) -> None:
    with engine.begin() as conn:
        chain.start_chain(conn, key, TENANT)
    result = verify(engine, key)
    assert (result.ok, result.verified, result.first_bad_seq) == (True, 0, None)


def test_append_numbers_entries_and_links_them(chained: Engine, key: bytes) -> None:
    with chained.connect() as conn:
        rows = [entry(conn, seq) for seq in range(1, N + 1)]
        head = conn.execute(sa.select(audit_heads)).mappings().one()
    assert rows[0]["prev_hash"] == chain.GENESIS
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["entry_hash"]
    assert (head["seq"], head["entry_hash"]) == (N, rows[-1]["entry_hash"])
    # Patient ids are stored sorted and de-duplicated, so the hash does not depend on order.
    assert rows[3]["patient_ids"] == '["pat-0","pat-1","pat-2"]'


def test_appending_nothing_changes_nothing(chained: Engine, key: bytes) -> None:
    with chained.begin() as conn:
        assert chain.append(conn, key, TENANT, []) == N
    assert verify(chained, key).verified == N


def test_appending_to_a_chain_that_was_never_started_fails(engine: Engine, key: bytes) -> None:
    with engine.begin() as conn, pytest.raises(LookupError):
        chain.append(conn, key, TENANT, [make_record(0)])


def test_chains_of_two_tenants_are_independent(chained: Engine, key: bytes) -> None:
    other_key = os.urandom(32)
    build_chain(chained, other_key, 5, OTHER_TENANT)
    with chained.begin() as conn:
        set_fields(conn, 2, {"outcome": "success"}, OTHER_TENANT)
        set_fields(conn, 2, {"actor_id": "someone-else"}, OTHER_TENANT)
    assert verify(chained, key).ok
    assert verify(chained, other_key, OTHER_TENANT).first_bad_seq == 2


def test_the_wrong_key_fails_at_the_first_entry(chained: Engine) -> None:
    result = verify(chained, os.urandom(32))
    assert (result.ok, result.first_bad_seq, result.verified) == (False, 1, 0)


# -- each kind of tampering ---------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5, N])
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("outcome", "success"),
        ("outcome", "denied"),
        ("patient_ids", "[]"),
        ("patient_ids", '["pat-0","pat-1","pat-2","pat-9"]'),
        ("actor_id", "nobody"),
        ("recorded_at", "2020-01-01T00:00:00.000000Z"),
        ("request_id", None),
    ],
)
def test_an_edited_field_is_named(
    chained: Engine, key: bytes, k: int, column: str, value: Any
) -> None:
    with chained.begin() as conn:
        if entry(conn, k)[column] == value:
            value = f"{value}x"  # make sure it is an edit
        set_fields(conn, k, {column: value})
    result = verify(chained, key)
    assert not result.ok
    assert result.first_bad_seq == k
    assert result.verified == k - 1
    assert f"entry {k}" in (result.problem or "")


@pytest.mark.parametrize("k", [1, 6, N - 1])
def test_a_deleted_entry_is_named(chained: Engine, key: bytes, k: int) -> None:
    with chained.begin() as conn:
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.seq == k))
    result = verify(chained, key)
    assert (result.ok, result.first_bad_seq) == (False, k)
    assert "missing" in (result.problem or "")


def test_a_deleted_entry_renumbered_to_close_the_gap_is_named(chained: Engine, key: bytes) -> None:
    """Deleting entry 4 and shifting the later entries down leaves no gap, but breaks the links."""
    with chained.begin() as conn:
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.seq == 4))
        for seq in range(5, N + 1):
            set_fields(conn, seq, {"seq": seq - 1})
        conn.execute(sa.update(audit_heads).values(seq=N - 1))
    result = verify(chained, key)
    assert (result.ok, result.first_bad_seq) == (False, 4)


@pytest.mark.parametrize("k", [1, 5, N - 1])
def test_two_swapped_entries_are_named(chained: Engine, key: bytes, k: int) -> None:
    """Reordering: entries k and k+1 trade places (every column but their position)."""
    with chained.begin() as conn:
        first, second = entry(conn, k), entry(conn, k + 1)
        moved = [c.name for c in audit_entries.columns if c.name not in ("tenant_id", "seq")]
        set_fields(conn, k, {c: second[c] for c in moved})
        set_fields(conn, k + 1, {c: first[c] for c in moved})
    result = verify(chained, key)
    assert (result.ok, result.first_bad_seq) == (False, k)
    assert "altered or moved" in (result.problem or "")


@pytest.mark.parametrize("kept", [0, 1, N - 3, N - 1])
def test_a_truncated_chain_is_detected_by_its_head(chained: Engine, key: bytes, kept: int) -> None:
    with chained.begin() as conn:
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.seq > kept))
    result = verify(chained, key)
    assert (result.ok, result.verified, result.first_bad_seq) == (False, kept, kept + 1)
    assert f"after {kept} were removed" in (result.problem or "")


def test_a_forged_entry_hashed_with_a_wrong_key_is_named(chained: Engine, key: bytes) -> None:
    """The forger rewrites entry 5 and every later link consistently, but without the key."""
    wrong = os.urandom(32)
    k = 5
    with chained.begin() as conn:
        prev = entry(conn, k)["prev_hash"]
        for seq in range(k, N + 1):
            row = entry(conn, seq)
            if seq == k:
                row["outcome"] = "success" if row["outcome"] != "success" else "denied"
            row["prev_hash"] = prev
            row["entry_hash"] = prev = chain.entry_hash(wrong, prev, row)
            set_fields(conn, seq, row)
        conn.execute(sa.update(audit_heads).values(entry_hash=prev))
    result = verify(chained, key)
    assert (result.ok, result.first_bad_seq) == (False, k)


def test_a_truncation_with_a_rewritten_head_is_detected(chained: Engine, key: bytes) -> None:
    """Cutting the tail and pointing the head at the new last entry needs the key for its MAC."""
    with chained.begin() as conn:
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.seq > 8))
        last = entry(conn, 8)["entry_hash"]
        conn.execute(sa.update(audit_heads).values(seq=8, entry_hash=last))
    result = verify(chained, key)
    assert not result.ok
    assert "head" in (result.problem or "")


@pytest.mark.parametrize(
    "values",
    [
        {"seq": N + 1},
        {"seq": N - 1},
        {"entry_hash": "f" * 64},
        {"head_mac": "0" * 64},
    ],
)
def test_an_altered_head_is_detected(chained: Engine, key: bytes, values: dict[str, Any]) -> None:
    with chained.begin() as conn:
        conn.execute(sa.update(audit_heads).values(**values))
    result = verify(chained, key)
    assert not result.ok
    assert result.verified == N  # every entry was fine; the head was not
    assert "head record was altered" in (result.problem or "")


def test_a_deleted_head_is_detected(chained: Engine, key: bytes) -> None:
    with chained.begin() as conn:
        conn.execute(sa.delete(audit_heads))
    result = verify(chained, key)
    assert not result.ok
    assert "head record is missing" in (result.problem or "")


# -- the property: any single-field edit is named exactly ---------------------------------------

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
EDITABLE = [c.name for c in audit_entries.columns]
_KEY = os.urandom(32)


def _new_value(column: str, old: Any, n: int, data: st.DataObject) -> Any:
    if column == "seq":
        # A position no other entry holds (a collision would be refused by the primary key).
        return data.draw(st.integers(min_value=n + 1, max_value=10**9), label="seq")
    if column == "status":
        return data.draw(st.none() | st.integers(0, 999), label="status")
    return data.draw(st.none() | _TEXT, label=column) if old is None else data.draw(_TEXT)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=25),
    batch=st.integers(min_value=1, max_value=8),
    column=st.sampled_from(EDITABLE),
    data=st.data(),
)
def test_any_single_field_edit_is_named_exactly(
    n: int, batch: int, column: str, data: st.DataObject
) -> None:
    engine = new_engine()
    try:
        build_chain(engine, _KEY, n)
        k = data.draw(st.integers(min_value=1, max_value=n), label="k")
        with engine.begin() as conn:
            old = entry(conn, k)[column]
            new = _new_value(column, old, n, data)
            assume(new != old)  # not an edit: nothing to detect
            set_fields(conn, k, {column: new})
        result = verify(engine, _KEY, batch=batch)
        assert not result.ok
        assert result.first_bad_seq == k, result
        assert result.verified == k - 1
    finally:
        engine.dispose()
