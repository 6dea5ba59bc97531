"""Passwords: Argon2id with the production parameters, NIST SP 800-63B rules (length only,
NFKC, the 3,000 most common refused), and a dummy verification for unknown accounts."""

from __future__ import annotations

import time

import pytest

from carevault.identity import passwords
from carevault.identity.passwords import (
    PasswordRejected,
    check_password,
    common_passwords,
    hash_password,
    production_hasher,
    verify_dummy,
    verify_password,
)


def test_production_hasher_is_argon2id_with_the_stated_parameters() -> None:
    stored = production_hasher().hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=2,p=1$")
    assert passwords.MEMORY_COST_KIB >= 19 * 1024  # at least OWASP's minimum for Argon2id


def test_one_production_verification_costs_tens_of_milliseconds() -> None:
    hasher = production_hasher()
    stored = hasher.hash("correct horse battery")
    start = time.perf_counter()
    hasher.verify(stored, "correct horse battery")
    elapsed = time.perf_counter() - start
    assert elapsed > 0.03  # a loose floor; bench/sign_in.py measures the 50-250 ms band


def test_round_trip_and_wrong_password() -> None:
    stored = hash_password("a long passphrase")
    assert verify_password(stored, "a long passphrase")
    assert not verify_password(stored, "a long passphrasE")
    assert not verify_password("not a hash", "a long passphrase")


def test_length_rules() -> None:
    with pytest.raises(PasswordRejected):
        hash_password("short")
    assert verify_password(hash_password("x" * 64 + "y"), "x" * 64 + "y")  # 64+ allowed
    with pytest.raises(PasswordRejected, match="at most 128"):
        hash_password("x" * 129)
    assert not verify_password(hash_password("z" * 128), "z" * 129)  # never hashed


def test_no_composition_rules_but_common_passwords_are_refused() -> None:
    assert len(common_passwords()) == 3000
    for common in ("password", "12345678", "Password1", "iloveyou", "PASSWORD"):
        if common.casefold() in common_passwords():
            with pytest.raises(PasswordRejected, match="most common"):
                check_password(common)
    check_password("all lower case words")  # no digits, no symbols: fine


def test_nfkc_makes_equivalent_forms_one_password() -> None:
    stored = hash_password("\uff43\uff41\uff46\uff45 society")  # full-width "cafe"
    assert verify_password(stored, "cafe society")
    assert verify_password(hash_password("cafe\u0301 society"), "caf\u00e9 society")


def test_dummy_verification_takes_a_real_verification() -> None:
    verify_dummy("anything at all")  # no error, no account needed
    verify_dummy("x" * 1000)
