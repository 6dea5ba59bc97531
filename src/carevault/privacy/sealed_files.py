"""Export files at rest: a sequence of sealed chunks, opened only while they are streamed.

Each chunk is AES-GCM under the tenant's export sub-key (crypto.vault.seal_for); its
associated data names the job, the file, the chunk's index and whether it is the last,
so chunks cannot be moved between files, reordered, dropped or cut off at the end
without the download failing. On disk: for each chunk, its length (4 bytes, big-endian)
then the sealed bytes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from carevault.crypto.vault import Vault

PURPOSE = "bulk-export"
CHUNK_BYTES = 1 << 20
"""Plaintext per chunk: large enough to cost nothing, small enough to stream."""
_LENGTH = struct.Struct(">I")


class BrokenFile(Exception):
    """The file was truncated or altered since it was written."""


def _file_label(job_id: str, name: str) -> str:
    """What a job's file is sealed as: the file cannot be passed off as another's."""
    return f"{job_id}|{name}"


@dataclass(frozen=True)
class JobSealing:
    """An export job's files: sealed under the tenant's export key, each labelled with the
    job and its own name."""

    vault: Vault
    tenant_id: str
    job_id: str

    def writer(self, path: Path, name: str) -> SealedWriter:
        return SealedWriter(self.vault, self.tenant_id, path, _file_label(self.job_id, name))

    def chunks(self, path: Path, name: str) -> Iterator[bytes]:
        return read_sealed(self.vault, self.tenant_id, path, _file_label(self.job_id, name))


def _aad(label: str, index: int, last: bool) -> bytes:
    return f"{label}|{index}|{'last' if last else 'more'}".encode()


class SealedWriter:
    """Appends plaintext; writes a sealed chunk whenever a chunk's worth is buffered."""

    def __init__(self, vault: Vault, tenant_id: str, path: Path, label: str) -> None:
        self._vault = vault
        self._tenant_id = tenant_id
        self._label = label
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._buffer = bytearray()
        self._index = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= CHUNK_BYTES:
            # Never seal a full chunk as 'last': close() writes the final one, maybe empty.
            chunk = bytes(self._buffer[:CHUNK_BYTES])
            del self._buffer[:CHUNK_BYTES]
            self._seal(chunk, last=False)

    def close(self) -> None:
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._file.close()

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        aad = _aad(self._label, self._index, last)
        sealed = self._vault.seal_for(self._tenant_id, PURPOSE, chunk, aad)
        self._file.write(_LENGTH.pack(len(sealed)))
        self._file.write(sealed)
        self._index += 1


def read_sealed(vault: Vault, tenant_id: str, path: Path, label: str) -> Iterator[bytes]:
    """The plaintext chunks of a sealed file, in order; BrokenFile if it was tampered with."""
    with path.open("rb") as fh:
        current = _frame(fh)
        if current is None:
            raise BrokenFile("the export file is empty")
        index = 0
        while current is not None:
            following = _frame(fh)
            last = following is None
            try:
                yield vault.open_for(tenant_id, PURPOSE, current, _aad(label, index, last))
            except Exception as exc:  # DecryptionError: wrong place, cut short, altered
                raise BrokenFile("the export file failed authentication") from exc
            current, index = following, index + 1


def _frame(fh: BinaryIO) -> bytes | None:
    header = fh.read(_LENGTH.size)
    if not header:
        return None
    if len(header) < _LENGTH.size:
        raise BrokenFile("the export file is cut short")
    (length,) = _LENGTH.unpack(header)
    body = fh.read(length)
    if len(body) < length:
        raise BrokenFile("the export file is cut short")
    return body
