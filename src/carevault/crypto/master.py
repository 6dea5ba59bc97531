"""The master key, behind a small interface so a KMS can hold it instead of a file."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from carevault.crypto.envelope import DecryptionError, new_key, seal, unseal

ESCROW_FORMAT = "carevault-master-key-escrow/1"
# scrypt cost: about 0.5 s and 128 MiB on this class of machine, per the cryptography docs' advice.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**17, 8, 1


class MasterKey(Protocol):
    """Wraps and unwraps tenant keys; a KMS implementation never reveals the key itself."""

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...

    def reload(self) -> bool:
        """Pick up a key rotated by another process; True if the key changed."""
        ...


class EscrowError(Exception):
    """An escrow file could not be read or the passphrase is wrong."""


class FileMasterKey:
    """The master key in its own file (mode 0600) beside, never inside, the database.

    Rotation (crypto/rotation.py) swaps the file atomically; a process that still holds the
    old key re-reads the file when an unwrap fails (`reload`)."""

    def __init__(self, key: bytes, path: Path | None = None) -> None:
        if len(key) != 32:
            raise ValueError("the master key is 32 bytes")
        self._key = key
        self.path = path
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        """A short public name for this key (not a secret): says which escrow matches."""
        return hashlib.sha256(b"carevault master-key fingerprint|" + self._key).hexdigest()[:16]

    def adopt(self, key: bytes) -> None:
        """Use a new key from now on (after the rotation renamed it into place)."""
        if len(key) != 32:
            raise ValueError("the master key is 32 bytes")
        with self._lock:
            self._key = key

    def reload(self) -> bool:
        if self.path is None or not self.path.exists():
            return False
        key = self.path.read_bytes()
        with self._lock:
            changed = key != self._key and len(key) == 32
            if changed:
                self._key = key
        return changed

    @classmethod
    def create(cls, path: Path) -> FileMasterKey:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        return cls(key, path)

    @classmethod
    def load(cls, path: Path) -> FileMasterKey:
        return cls(path.read_bytes(), path)

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return seal(self._key, key, b"master-wrap|" + context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        return unseal(self._key, blob, b"master-wrap|" + context)

    def escrow(self, passphrase: str) -> bytes:
        """The master key sealed under a passphrase-derived key, as a JSON document."""
        salt = os.urandom(16)
        kek = _scrypt(passphrase, salt)
        doc = {
            "format": ESCROW_FORMAT,
            "fingerprint": self.fingerprint,  # which master key this is, after rotations
            "kdf": {"name": "scrypt", "n": _SCRYPT_N, "r": _SCRYPT_R, "p": _SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
            "sealed": base64.b64encode(seal(kek, self._key, ESCROW_FORMAT.encode())).decode(),
        }
        return json.dumps(doc, indent=2).encode()

    @classmethod
    def from_escrow(cls, document: bytes, passphrase: str) -> FileMasterKey:
        try:
            doc = json.loads(document)
            if doc.get("format") != ESCROW_FORMAT:
                raise EscrowError("not a CareVault master-key escrow file")
            kdf = doc["kdf"]
            kek = _scrypt(passphrase, base64.b64decode(doc["salt"]), kdf["n"], kdf["r"], kdf["p"])
            return cls(unseal(kek, base64.b64decode(doc["sealed"]), ESCROW_FORMAT.encode()))
        except DecryptionError as exc:
            raise EscrowError("wrong passphrase or damaged escrow file") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise EscrowError("not a CareVault master-key escrow file") from exc

    def write_to(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self._key)
            fh.flush()
            os.fsync(fh.fileno())


def _scrypt(
    passphrase: str, salt: bytes, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P
) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())
