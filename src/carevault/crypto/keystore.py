"""The key store: wrapped tenant keys and per-patient data keys, in a file of its own.

Tenant keys are wrapped by the master key, data keys by their tenant key. Keeping
this file apart from the database means a database copy (or backup) holds only
ciphertext, and destroying a data key here shreds every copy of that patient's data.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

from carevault.crypto.envelope import new_key, seal, unseal
from carevault.crypto.master import MasterKey

VENDOR_CHAIN = "_vendor"
"""The pseudo-tenant whose key protects vendor-level records (its audit chain, accounts)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenant_keys (
    tenant_id TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS data_keys (
    tenant_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (tenant_id, key_name)
);
"""


class KeyNotFound(Exception):
    """The key was never created, or it was destroyed (crypto-shredded)."""


class KeyStore:
    def __init__(self, path: Path, master: MasterKey, *, cache_size: int = 4096) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        # A destroyed key must not linger in free pages of this file.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        self._master = master
        self._lock = threading.Lock()
        self._tenant_cache: dict[str, bytes] = {}
        self._data_cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cache_size = cache_size

    def close(self) -> None:
        self._db.close()

    def tenant_key(self, tenant_id: str) -> bytes:
        """The tenant's key, created on first use."""
        with self._lock:
            if (cached := self._tenant_cache.get(tenant_id)) is not None:
                return cached
            context = b"tenant|" + tenant_id.encode()
            row = self._db.execute(
                "SELECT wrapped FROM tenant_keys WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
            if row is None:
                wrapped = self._master.wrap(new_key(), context)
                # OR IGNORE: another process may have created it first; then we read theirs.
                self._db.execute(
                    "INSERT OR IGNORE INTO tenant_keys (tenant_id, wrapped) VALUES (?, ?)",
                    (tenant_id, wrapped),
                )
                row = self._db.execute(
                    "SELECT wrapped FROM tenant_keys WHERE tenant_id = ?", (tenant_id,)
                ).fetchone()
            key = self._master.unwrap(row[0], context)
            self._tenant_cache[tenant_id] = key
            return key

    def data_key(self, tenant_id: str, key_name: str, *, create: bool) -> bytes:
        """A data key (one per patient, one shared per tenant); KeyNotFound once shredded."""
        cache_key = (tenant_id, key_name)
        with self._lock:
            if (cached := self._data_cache.get(cache_key)) is not None:
                self._data_cache.move_to_end(cache_key)
                return cached
        tenant_key = self.tenant_key(tenant_id)
        context = f"data|{tenant_id}|{key_name}".encode()
        with self._lock:
            row = self._db.execute(
                "SELECT wrapped FROM data_keys WHERE tenant_id = ? AND key_name = ?",
                (tenant_id, key_name),
            ).fetchone()
            if row is None:
                if not create:
                    raise KeyNotFound(key_name)
                self._db.execute(
                    "INSERT OR IGNORE INTO data_keys (tenant_id, key_name, wrapped) VALUES (?,?,?)",
                    (tenant_id, key_name, seal(tenant_key, new_key(), context)),
                )
                row = self._db.execute(
                    "SELECT wrapped FROM data_keys WHERE tenant_id = ? AND key_name = ?",
                    (tenant_id, key_name),
                ).fetchone()
            key = unseal(tenant_key, row[0], context)
            self._data_cache[cache_key] = key
            if len(self._data_cache) > self._cache_size:
                self._data_cache.popitem(last=False)
            return key

    def destroy_data_key(self, tenant_id: str, key_name: str) -> bool:
        """Crypto-shred: every ciphertext under this key, in every copy, becomes unreadable."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM data_keys WHERE tenant_id = ? AND key_name = ?", (tenant_id, key_name)
            )
            self._data_cache.pop((tenant_id, key_name), None)
            return cur.rowcount > 0
