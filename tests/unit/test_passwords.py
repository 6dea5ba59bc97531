"""Argon2id with production parameters; length rules of NIST SP 800-63B."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from carevault.identity.passwords import PasswordRejected, hash_password, verify_password


def test_production_hasher_is_argon2id_with_real_cost() -> None:
    stored = PasswordHasher().hash("correct horse battery")  # the defaults we ship
    assert stored.startswith("$argon2id$")
    params = PasswordHasher().hash("x" * 8).split("$")[3]
    memory_kib = int(params.split(",")[0].removeprefix("m="))
    assert memory_kib >= 19 * 1024  # at least OWASP's minimum for Argon2id


def test_round_trip_and_wrong_password() -> None:
    stored = hash_password("a long passphrase")
    assert verify_password(stored, "a long passphrase")
    assert not verify_password(stored, "a long passphrasE")
    assert not verify_password("not a hash", "a long passphrase")


def test_length_rules() -> None:
    with pytest.raises(PasswordRejected):
        hash_password("short")
    assert verify_password(hash_password("x" * 64), "x" * 64)  # 64 characters are allowed
    with pytest.raises(PasswordRejected):
        hash_password("x" * 129)
