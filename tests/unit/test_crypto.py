"""Envelope encryption, the key store, shredding and escrow."""

from __future__ import annotations

from pathlib import Path

import pytest

from carevault.crypto.envelope import DecryptionError, new_key, seal, unseal
from carevault.crypto.keystore import KeyNotFound
from carevault.crypto.master import EscrowError, FileMasterKey
from carevault.crypto.vault import Vault, master_key_path


def test_seal_round_trip_and_binding_to_place() -> None:
    key = new_key()
    blob = seal(key, b"heart rate 72", b"tenant|Observation|1|1")
    assert b"heart rate" not in blob
    assert unseal(key, blob, b"tenant|Observation|1|1") == b"heart rate 72"
    # Moving a ciphertext to another row (other associated data) makes it unreadable.
    with pytest.raises(DecryptionError):
        unseal(key, blob, b"tenant|Observation|2|1")
    with pytest.raises(DecryptionError):
        unseal(new_key(), blob, b"tenant|Observation|1|1")


def test_each_seal_uses_a_fresh_nonce() -> None:
    key = new_key()
    assert seal(key, b"same", b"") != seal(key, b"same", b"")


def test_vault_keys_persist_and_are_separate_per_patient(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keystore.db"
    vault = Vault.create(path)
    blob_a = vault.seal_record("t1", "patient/a", b"alpha", b"aad")
    blob_b = vault.seal_record("t1", "patient/b", b"beta", b"aad")
    vault.close()
    reopened = Vault.open(path)
    assert reopened.open_record("t1", "patient/a", blob_a, b"aad") == b"alpha"
    with pytest.raises(DecryptionError):  # another patient's key cannot open it
        reopened.open_record("t1", "patient/a", blob_b, b"aad")
    reopened.close()


def test_shredding_a_patient_key_makes_their_data_unreadable_everywhere(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keystore.db"
    vault = Vault.create(path)
    blob = vault.seal_record("t1", "patient/a", b"alpha", b"aad")
    other = vault.seal_record("t1", "patient/b", b"beta", b"aad")
    assert vault.shred("t1", "patient/a")
    with pytest.raises(KeyNotFound):
        vault.open_record("t1", "patient/a", blob, b"aad")
    assert vault.open_record("t1", "patient/b", other, b"aad") == b"beta"
    vault.close()
    # A fresh process (no cache) cannot read it either; the key bytes left the file.
    reopened = Vault.open(path)
    with pytest.raises(KeyNotFound):
        reopened.open_record("t1", "patient/a", blob, b"aad")
    reopened.close()


def test_tenants_have_separate_keys(tmp_path: Path) -> None:
    vault = Vault.create(tmp_path / "keys" / "keystore.db")
    assert vault.subkey("t1", "paging") != vault.subkey("t2", "paging")
    assert vault.hasher("t1").digest("d", "x") != vault.hasher("t2").digest("d", "x")
    vault.close()


def test_key_store_file_holds_no_raw_master_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keystore.db"
    vault = Vault.create(path)
    vault.seal_record("t1", "patient/a", b"alpha", b"aad")
    vault.close()
    master = master_key_path(path).read_bytes()
    assert master not in path.read_bytes()
    assert (master_key_path(path).stat().st_mode & 0o777) == 0o600


def test_escrow_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    master = FileMasterKey.create(tmp_path / "master.key")
    document = master.escrow("correct horse battery staple")
    restored = FileMasterKey.from_escrow(document, "correct horse battery staple")
    wrapped = master.wrap(b"k" * 32, b"ctx")
    assert restored.unwrap(wrapped, b"ctx") == b"k" * 32
    with pytest.raises(EscrowError):
        FileMasterKey.from_escrow(document, "wrong passphrase here")
    with pytest.raises(EscrowError):
        FileMasterKey.from_escrow(b"not json", "correct horse battery staple")
