"""The key store: wrapped tenant keys and per-patient data keys, in a file of its own.

The hierarchy, so that rotation never touches the data or the derived sub-keys:

    master key ──wraps──► tenant root key   (derives the search-hash, audit and paging
               │                             sub-keys: never rotated, they must stay stable)
               └─wraps──► tenant key-encryption key, version n ──wraps──► patient data keys

`carevault keys rotate` (crypto/rotation.py) re-wraps data keys under a new KEK version,
or tenant keys and KEKs under a new master key; data rows are never re-encrypted. Version 0
is the tenant root key itself: how stores made before versioned KEKs wrapped their data keys.

Keeping this file apart from the database means a database copy (or backup) holds only
ciphertext, and destroying a data key here shreds every copy of that patient's data.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from carevault.crypto.envelope import DecryptionError, new_key, seal, unseal
from carevault.crypto.master import MasterKey
from carevault.errors import Gone

VENDOR_CHAIN = "_vendor"
"""The pseudo-tenant whose key protects vendor-level records (its audit chain, accounts)."""

LEGACY_KEK = 0
"""Data keys wrapped directly by the tenant root key (stores made before versioned KEKs)."""

RECHECK_SECONDS = 0.1
"""How long a key destroyed by another process may still open data from this one's cache."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenant_keys (
    tenant_id TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL,
    wrapped_next BLOB
);
CREATE TABLE IF NOT EXISTS tenant_keks (
    tenant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    wrapped_next BLOB,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant_id, version)
);
CREATE TABLE IF NOT EXISTS data_keys (
    tenant_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    kek_version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, key_name)
);
"""
# Stores written before KEK versions and master rotation: add the columns in place.
_UPGRADES = (
    ("tenant_keys", "wrapped_next", "ALTER TABLE tenant_keys ADD COLUMN wrapped_next BLOB"),
    (
        "data_keys",
        "kek_version",
        "ALTER TABLE data_keys ADD COLUMN kek_version INTEGER NOT NULL DEFAULT 0",
    ),
)


class KeyNotFound(Gone):
    """The key was never created, or it was destroyed (crypto-shredded): the data is gone."""

    def __init__(self, key_name: str) -> None:
        # The key name holds a patient id; the message a caller sees does not.
        super().__init__("this record was erased: its encryption key no longer exists")
        self.key_name = key_name


def tenant_context(tenant_id: str) -> bytes:
    return b"tenant|" + tenant_id.encode()


def kek_context(tenant_id: str, version: int) -> bytes:
    return f"kek|{tenant_id}|{version}".encode()


def data_context(tenant_id: str, key_name: str, version: int) -> bytes:
    legacy = f"data|{tenant_id}|{key_name}"
    return (legacy if version == LEGACY_KEK else f"{legacy}|kek{version}").encode()


class KeyStore:
    def __init__(
        self,
        path: Path,
        master: MasterKey,
        *,
        cache_size: int = 4096,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        # A destroyed key must not linger in free pages of this file.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        for table, column, statement in _UPGRADES:
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                self._db.execute(statement)
        self.master = master
        self._lock = threading.RLock()
        self._tenant_cache: dict[str, bytes] = {}
        self._kek_cache: dict[tuple[str, int], bytes] = {}
        self._data_cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cache_size = cache_size
        self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]
        self._recheck = recheck_seconds
        self._checked_at = time.monotonic()
        self.finish_master_rotation()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the key store (BEGIN IMMEDIATE), for rotation and shredding."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the file and truncate it, so no old page lingers in the WAL.
        Returns SQLite's (busy, wal frames, checkpointed frames); busy=1 if a reader held on."""
        with self._lock:
            row = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    # -- keys ------------------------------------------------------------------

    def tenant_key(self, tenant_id: str) -> bytes:
        """The tenant's root key, created on first use."""
        with self._lock:
            if (cached := self._tenant_cache.get(tenant_id)) is not None:
                return cached
            context = tenant_context(tenant_id)
            select = "SELECT wrapped, wrapped_next FROM tenant_keys WHERE tenant_id = ?"
            if self._db.execute(select, (tenant_id,)).fetchone() is None:
                wrapped = self.master.wrap(new_key(), context)
                # OR IGNORE: another process may have created it first; then we read theirs.
                self._db.execute(
                    "INSERT OR IGNORE INTO tenant_keys (tenant_id, wrapped) VALUES (?, ?)",
                    (tenant_id, wrapped),
                )
            key = self._open_wrapped(select, (tenant_id,), context)
            self._tenant_cache[tenant_id] = key
            return key

    def data_key(self, tenant_id: str, key_name: str, *, create: bool) -> bytes:
        """A data key (one per patient, one shared per tenant); KeyNotFound once shredded."""
        cache_key = (tenant_id, key_name)
        with self._lock:
            self._notice_other_writers()
            if (cached := self._data_cache.get(cache_key)) is not None:
                self._data_cache.move_to_end(cache_key)
                return cached
            row = self._data_row(tenant_id, key_name)
            if row is None:
                if not create:
                    raise KeyNotFound(key_name)
                row = self._create_data_key(tenant_id, key_name)
            wrapped, version = row
            key = unseal(
                self._kek(tenant_id, version), wrapped, data_context(tenant_id, key_name, version)
            )
            self._data_cache[cache_key] = key
            if len(self._data_cache) > self._cache_size:
                self._data_cache.popitem(last=False)
            return key

    def has_data_key(self, tenant_id: str, key_name: str) -> bool:
        with self._lock:
            return self._data_row(tenant_id, key_name) is not None

    def destroy_data_key(self, tenant_id: str, key_name: str) -> bool:
        """Crypto-shred: every ciphertext under this key, in every copy, becomes unreadable.
        secure_delete zeroes the row in its page; the checkpoint then truncates the WAL, so
        the wrapped key is left neither in free pages nor in old WAL frames."""
        with self.transaction() as db:
            cur = db.execute(
                "DELETE FROM data_keys WHERE tenant_id = ? AND key_name = ?", (tenant_id, key_name)
            )
            self._data_cache.pop((tenant_id, key_name), None)
        self.checkpoint()
        return cur.rowcount > 0

    def current_kek_version(self, db: sqlite3.Connection, tenant_id: str) -> int | None:
        row = db.execute(
            "SELECT max(version) FROM tenant_keks WHERE tenant_id = ?", (tenant_id,)
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def add_kek(self, db: sqlite3.Connection, tenant_id: str, version: int) -> None:
        """A new key-encryption key, wrapped by the master key (inside a transaction)."""
        wrapped = self.master.wrap(new_key(), kek_context(tenant_id, version))
        db.execute(
            "INSERT INTO tenant_keks (tenant_id, version, wrapped) VALUES (?, ?, ?)",
            (tenant_id, version, wrapped),
        )

    def kek(self, tenant_id: str, version: int) -> bytes:
        with self._lock:
            return self._kek(tenant_id, version)

    def finish_master_rotation(self) -> int:
        """Roll forward a master rotation whose new key file is in place but whose rows still
        carry the new wrapping aside (a crash between the rename and the swap). Rows the
        current master cannot open are left alone: that rotation never committed."""
        done = 0
        with self._lock:
            for table, keys in (
                ("tenant_keys", "tenant_id"),
                ("tenant_keks", "tenant_id, version"),
            ):
                pending = self._db.execute(
                    f"SELECT {keys}, wrapped_next FROM {table} WHERE wrapped_next IS NOT NULL"  # noqa: S608 (table names are constants)
                ).fetchall()
                for row in pending:
                    context = (
                        tenant_context(row[0]) if len(row) == 2 else kek_context(row[0], row[1])
                    )
                    try:
                        self.master.unwrap(row[-1], context)
                    except DecryptionError:
                        continue
                    where = "tenant_id = ?" if len(row) == 2 else "tenant_id = ? AND version = ?"
                    self._db.execute(
                        f"UPDATE {table} SET wrapped = wrapped_next, wrapped_next = NULL WHERE {where}",  # noqa: S608,E501 (constants)
                        row[:-1],
                    )
                    done += 1
        return done

    def forget_wrapped_keys(self) -> None:
        """Drop cached tenant keys and KEKs (after a rotation); data keys stay cached."""
        with self._lock:
            self._tenant_cache.clear()
            self._kek_cache.clear()

    # -- internals -------------------------------------------------------------

    def _notice_other_writers(self) -> None:
        """Another process (`carevault keys shred-patient`) changed the store: a destroyed
        key must not live on in this process's cache. Asked at most every RECHECK_SECONDS:
        the pragma costs about 8 µs, a search page may need twenty keys."""
        now = time.monotonic()
        if now - self._checked_at < self._recheck:
            return
        self._checked_at = now
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._data_cache.clear()

    def _data_row(self, tenant_id: str, key_name: str) -> tuple[bytes, int] | None:
        row = self._db.execute(
            "SELECT wrapped, kek_version FROM data_keys WHERE tenant_id = ? AND key_name = ?",
            (tenant_id, key_name),
        ).fetchone()
        return None if row is None else (row[0], int(row[1]))

    def _create_data_key(self, tenant_id: str, key_name: str) -> tuple[bytes, int]:
        # One transaction: the KEK version read is the one the row is written under, even
        # while another process rotates (it deletes an old KEK only once no row uses it).
        with self.transaction() as db:
            if (existing := self._data_row(tenant_id, key_name)) is not None:
                return existing
            version = self.current_kek_version(db, tenant_id)
            if version is None:
                version = 1
                self.add_kek(db, tenant_id, version)
            context = data_context(tenant_id, key_name, version)
            wrapped = seal(self._kek(tenant_id, version), new_key(), context)
            db.execute(
                "INSERT INTO data_keys (tenant_id, key_name, wrapped, kek_version)"
                " VALUES (?, ?, ?, ?)",
                (tenant_id, key_name, wrapped, version),
            )
            return wrapped, version

    def _kek(self, tenant_id: str, version: int) -> bytes:
        if version == LEGACY_KEK:
            return self.tenant_key(tenant_id)
        if (cached := self._kek_cache.get((tenant_id, version))) is not None:
            return cached
        key = self._open_wrapped(
            "SELECT wrapped, wrapped_next FROM tenant_keks WHERE tenant_id = ? AND version = ?",
            (tenant_id, version),
            kek_context(tenant_id, version),
        )
        self._kek_cache[(tenant_id, version)] = key
        return key

    def _open_wrapped(self, sql: str, params: tuple[object, ...], context: bytes) -> bytes:
        """Unwrap a row's key with the master key. After a rotation by another process,
        re-read the key file, finish the swap and read the row again; during an unfinished
        rotation, the pending wrapping (`wrapped_next`) may be the one that opens."""
        for attempt in (0, 1):
            row = self._db.execute(sql, params).fetchone()
            if row is None:
                raise DecryptionError("the wrapped key is missing")
            for blob in row:
                if blob is None:
                    continue
                try:
                    return self.master.unwrap(blob, context)
                except DecryptionError:
                    pass
            if attempt == 0:
                self.master.reload()
                self.finish_master_rotation()
        raise DecryptionError("the master key does not open this key")
