"""Key rotation: re-wrap keys, never re-encrypt data (see the hierarchy in keystore.py).

Crash safety: at every instant each data key row names a KEK version that exists, and
each tenant key and KEK opens with the master key file that is in place (or with the
pending wrapping that the next open rolls forward). An interrupted rotation is finished
or superseded by running it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from carevault.crypto.envelope import new_key, seal, unseal
from carevault.crypto.keystore import KeyStore, data_context, kek_context, tenant_context
from carevault.crypto.master import FileMasterKey

BATCH = 500


@dataclass(frozen=True)
class TenantRotation:
    tenant_id: str
    new_version: int
    rewrapped: int
    retired_versions: tuple[int, ...]


@dataclass(frozen=True)
class MasterRotation:
    old_fingerprint: str
    new_fingerprint: str
    rewrapped: int


def rotate_tenant(store: KeyStore, tenant_id: str, *, batch: int = BATCH) -> TenantRotation:
    """A new KEK version for the tenant; every data key re-wrapped under it, in batches."""
    with store.transaction() as db:
        current = store.current_kek_version(db, tenant_id)
        new_version = (current or 0) + 1
        store.add_kek(db, tenant_id, new_version)  # new data keys go under it from now on
    new_kek = store.kek(tenant_id, new_version)
    rewrapped = 0
    while True:
        with store.transaction() as db:
            rows = db.execute(
                "SELECT key_name, wrapped, kek_version FROM data_keys"
                " WHERE tenant_id = ? AND kek_version < ? LIMIT ?",
                (tenant_id, new_version, batch),
            ).fetchall()
            for name, wrapped, version in rows:
                key = unseal(
                    store.kek(tenant_id, version), wrapped, data_context(tenant_id, name, version)
                )
                db.execute(
                    "UPDATE data_keys SET wrapped = ?, kek_version = ?"
                    " WHERE tenant_id = ? AND key_name = ? AND kek_version = ?",
                    (
                        seal(new_kek, key, data_context(tenant_id, name, new_version)),
                        new_version,
                        tenant_id,
                        name,
                        version,
                    ),
                )
        rewrapped += len(rows)
        if len(rows) < batch:
            break
    with store.transaction() as db:
        # Only versions no row uses any more; a concurrent rotation's newer one stays.
        retired = [
            int(r[0])
            for r in db.execute(
                "SELECT version FROM tenant_keks k WHERE tenant_id = ? AND version < ?"
                " AND NOT EXISTS (SELECT 1 FROM data_keys d WHERE d.tenant_id = k.tenant_id"
                " AND d.kek_version = k.version)",
                (tenant_id, new_version),
            )
        ]
        db.executemany(
            "DELETE FROM tenant_keks WHERE tenant_id = ? AND version = ?",
            [(tenant_id, v) for v in retired],
        )
    store.checkpoint()  # the old wrappings leave the WAL too
    return TenantRotation(tenant_id, new_version, rewrapped, tuple(retired))


def rotate_master(store: KeyStore, master: FileMasterKey) -> MasterRotation:
    """A new master key file; every tenant key and KEK re-wrapped under it.

    1. the new key is written beside the old one (`master.key.new`, fsynced);
    2. one transaction stores the new wrapping of every row aside (`wrapped_next`);
    3. the rename of the new file over the old one is the commit point;
    4. one transaction moves `wrapped_next` into `wrapped` (also done at the next open if
       the process dies before it: `KeyStore.finish_master_rotation`).
    Escrow files of the old key open nothing afterwards: the operator must re-escrow.
    """
    if master.path is None:
        raise ValueError("this master key has no file to rotate")
    old_fingerprint = master.fingerprint
    key = new_key()
    staged = FileMasterKey(key)
    pending = master.path.with_name(master.path.name + ".new")
    _write_private(pending, key)
    count = 0
    with store.transaction() as db:
        for (tenant_id,) in db.execute("SELECT tenant_id FROM tenant_keys").fetchall():
            root = store.tenant_key(tenant_id)
            blob = staged.wrap(root, tenant_context(tenant_id))
            db.execute(
                "UPDATE tenant_keys SET wrapped_next = ? WHERE tenant_id = ?", (blob, tenant_id)
            )
            count += 1
        for tenant_id, version in db.execute(
            "SELECT tenant_id, version FROM tenant_keks"
        ).fetchall():
            blob = staged.wrap(store.kek(tenant_id, version), kek_context(tenant_id, version))
            db.execute(
                "UPDATE tenant_keks SET wrapped_next = ? WHERE tenant_id = ? AND version = ?",
                (blob, tenant_id, version),
            )
            count += 1
    os.replace(pending, master.path)  # the commit point
    _fsync_dir(master.path.parent)
    master.adopt(key)
    store.finish_master_rotation()
    store.forget_wrapped_keys()
    store.checkpoint()
    return MasterRotation(old_fingerprint, master.fingerprint, count)


def _write_private(path: Path, key: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
