"""The one object the rest of CareVault uses for keys: seal, open, hash, shred."""

from __future__ import annotations

import threading
from pathlib import Path

from carevault.crypto import rotation
from carevault.crypto.envelope import derive_key, seal, unseal
from carevault.crypto.hashing import KeyedHasher
from carevault.crypto.keystore import KeyStore
from carevault.crypto.master import FileMasterKey, MasterKey

TENANT_SHARED_KEY = "tenant-shared"
"""Data key for resources outside any patient's compartment (Practitioner, Organization)."""


def patient_key_name(patient_id: str) -> str:
    return f"patient/{patient_id}"


def master_key_path(keystore_path: Path) -> Path:
    return keystore_path.parent / "master.key"


class Vault:
    def __init__(self, keystore: KeyStore, master: MasterKey) -> None:
        self._keys = keystore
        self._master = master
        self._hashers: dict[str, KeyedHasher] = {}
        self._subkeys: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def exists(cls, keystore_path: Path) -> bool:
        return master_key_path(keystore_path).exists()

    @classmethod
    def create(cls, keystore_path: Path) -> Vault:
        master = FileMasterKey.create(master_key_path(keystore_path))
        return cls(KeyStore(keystore_path, master), master)

    @classmethod
    def open(cls, keystore_path: Path) -> Vault:
        master = FileMasterKey.load(master_key_path(keystore_path))
        return cls(KeyStore(keystore_path, master), master)

    def close(self) -> None:
        self._keys.close()

    # -- records ---------------------------------------------------------------

    def seal_record(self, tenant_id: str, key_name: str, plaintext: bytes, aad: bytes) -> bytes:
        return seal(self._keys.data_key(tenant_id, key_name, create=True), plaintext, aad)

    def open_record(self, tenant_id: str, key_name: str, blob: bytes, aad: bytes) -> bytes:
        return unseal(self._keys.data_key(tenant_id, key_name, create=False), blob, aad)

    def shred(self, tenant_id: str, key_name: str) -> bool:
        return self._keys.destroy_data_key(tenant_id, key_name)

    def has_key(self, tenant_id: str, key_name: str) -> bool:
        return self._keys.has_data_key(tenant_id, key_name)

    def checkpoint(self) -> tuple[int, int, int]:
        """Truncate the key store's WAL (after a shred): (busy, frames, checkpointed)."""
        return self._keys.checkpoint()

    # -- rotation (crypto/rotation.py): re-wrap keys; data and derived sub-keys unchanged --

    def rotate_tenant(self, tenant_id: str) -> rotation.TenantRotation:
        return rotation.rotate_tenant(self._keys, tenant_id)

    def rotate_master(self) -> rotation.MasterRotation:
        if not isinstance(self._master, FileMasterKey):
            raise TypeError("master rotation applies to a file master key; a KMS rotates its own")
        return rotation.rotate_master(self._keys, self._master)

    def master_fingerprint(self) -> str | None:
        return self._master.fingerprint if isinstance(self._master, FileMasterKey) else None

    # -- per-tenant helpers ----------------------------------------------------

    def hasher(self, tenant_id: str) -> KeyedHasher:
        with self._lock:
            hasher = self._hashers.get(tenant_id)
        if hasher is None:
            hasher = KeyedHasher(self._keys.tenant_key(tenant_id))
            with self._lock:
                self._hashers[tenant_id] = hasher
        return hasher

    def subkey(self, tenant_id: str, purpose: str) -> bytes:
        """A tenant sub-key for one purpose: "audit-chain", "paging", "accounts"."""
        with self._lock:
            key = self._subkeys.get((tenant_id, purpose))
        if key is None:
            key = derive_key(self._keys.tenant_key(tenant_id), f"carevault {purpose} v1")
            with self._lock:
                self._subkeys[(tenant_id, purpose)] = key
        return key

    def seal_for(self, tenant_id: str, purpose: str, plaintext: bytes, aad: bytes = b"") -> bytes:
        return seal(self.subkey(tenant_id, purpose), plaintext, aad)

    def open_for(self, tenant_id: str, purpose: str, blob: bytes, aad: bytes = b"") -> bytes:
        return unseal(self.subkey(tenant_id, purpose), blob, aad)

    # -- escrow ------------------------------------------------------------------

    def escrow(self, passphrase: str) -> bytes:
        if not isinstance(self._master, FileMasterKey):
            raise TypeError("escrow applies to a file master key; a KMS keeps its own")
        return self._master.escrow(passphrase)
