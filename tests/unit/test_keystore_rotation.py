"""The key store alone: KEK rotation re-wraps data keys and keeps derived keys stable, an
interrupted rotation leaves every key readable, a shred reaches another process's cache and
leaves the wrapped key in neither the file nor its WAL, a master rotation is picked up by a
process that still holds the old key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from carevault.crypto import rotation
from carevault.crypto.keystore import KeyNotFound, KeyStore
from carevault.crypto.master import FileMasterKey


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    master = tmp_path / "keys" / "master.key"
    FileMasterKey.create(master)
    return tmp_path / "keys" / "keystore.db", master


def open_store(paths: tuple[Path, Path]) -> KeyStore:
    return KeyStore(paths[0], FileMasterKey.load(paths[1]))


def test_rotation_keeps_data_keys_and_root(paths: tuple[Path, Path]) -> None:
    store = open_store(paths)
    keys = {f"patient/{i}": store.data_key("t", f"patient/{i}", create=True) for i in range(7)}
    root = store.tenant_key("t")
    done = rotation.rotate_tenant(store, "t", batch=3)  # several batches
    assert (done.new_version, done.rewrapped, done.retired_versions) == (2, 7, (1,))
    store.close()
    fresh = open_store(paths)
    assert {n: fresh.data_key("t", n, create=False) for n in keys} == keys
    assert fresh.tenant_key("t") == root
    fresh.close()


def test_an_interrupted_rotation_leaves_every_key_readable(
    paths: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(paths)
    keys = {f"patient/{i}": store.data_key("t", f"patient/{i}", create=True) for i in range(5)}
    calls = 0
    real = rotation.seal

    def crash_after_first_batch(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise KeyboardInterrupt  # the process dies mid-batch
        return real(key, plaintext, aad)

    monkeypatch.setattr(rotation, "seal", crash_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        rotation.rotate_tenant(store, "t", batch=2)
    monkeypatch.setattr(rotation, "seal", real)
    store.close()
    fresh = open_store(paths)
    assert {n: fresh.data_key("t", n, create=False) for n in keys} == keys
    done = rotation.rotate_tenant(fresh, "t")  # running it again finishes the job
    assert done.retired_versions == (1, 2)
    assert {n: fresh.data_key("t", n, create=False) for n in keys} == keys
    fresh.close()


def test_a_shred_reaches_other_processes_and_leaves_no_trace(paths: tuple[Path, Path]) -> None:
    master = FileMasterKey.load(paths[1])
    server = KeyStore(paths[0], master, recheck_seconds=0)  # bounded by time otherwise
    operator = open_store(paths)
    server.data_key("t", "patient/a", create=True)
    server.data_key("t", "patient/b", create=True)
    with sqlite3.connect(paths[0]) as db:
        wrapped = db.execute("SELECT wrapped FROM data_keys WHERE key_name='patient/a'").fetchone()
    assert operator.destroy_data_key("t", "patient/a")
    with pytest.raises(KeyNotFound):  # the server's cache does not outlive the shred
        server.data_key("t", "patient/a", create=False)
    assert server.data_key("t", "patient/b", create=False)
    server.close()
    operator.close()
    for part in paths[0].parent.iterdir():
        if part.name.startswith("keystore.db"):
            assert wrapped[0] not in part.read_bytes(), part.name


def test_a_master_rotation_is_picked_up_by_a_running_process(paths: tuple[Path, Path]) -> None:
    running, operator = open_store(paths), open_store(paths)
    key = running.data_key("t", "patient/a", create=True)
    root = running.tenant_key("t")
    assert isinstance(operator.master, FileMasterKey)
    moved = rotation.rotate_master(operator, operator.master)
    assert moved.rewrapped == 2  # the tenant root key and KEK v1
    running.forget_wrapped_keys()
    running._data_cache.clear()  # as after a restart of its caches, still the old master
    assert running.data_key("t", "patient/a", create=False) == key
    assert running.tenant_key("t") == root
    running.close()
    operator.close()
    old = FileMasterKey.load(paths[1])
    assert old.fingerprint == moved.new_fingerprint
