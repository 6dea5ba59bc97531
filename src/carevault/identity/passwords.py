"""Argon2id passwords under NIST SP 800-63B rules: length only, no composition rules,
NFKC-normalised, and the 3,000 most common passwords refused.

Parameters (measured on this 2-core machine, bench/sign_in.py): time_cost=2,
memory_cost=64 MiB, parallelism=1 → one verification ≈ 170 ms, inside the 50-250 ms band.
One lane keeps each sign-in on one core, so two concurrent sign-ins do not slow each other.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 128  # NIST SP 800-63B: allow at least 64

TIME_COST = 2
MEMORY_COST_KIB = 64 * 1024
PARALLELISM = 1


def production_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM)


_hasher = production_hasher()  # tests/conftest.py swaps in argon2's cheapest profile
_dummy_hashes: dict[int, str] = {}


class PasswordRejected(ValueError):
    pass


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("carevault.identity").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def normalise(password: str) -> str:
    """NFKC, so the same passphrase typed on two keyboards (or IMEs) is one password."""
    if len(password) > MAX_LENGTH:  # checked before normalising: NFKC can expand a string
        raise PasswordRejected(f"passwords may have at most {MAX_LENGTH} characters")
    return unicodedata.normalize("NFKC", password)


def check_password(password: str) -> str:
    """The normalised password if it may be used; PasswordRejected (a safe message) if not."""
    normal = normalise(password)
    if len(normal) < MIN_LENGTH:
        raise PasswordRejected(f"passwords need at least {MIN_LENGTH} characters")
    if len(normal) > MAX_LENGTH:
        raise PasswordRejected(f"passwords may have at most {MAX_LENGTH} characters")
    if normal.casefold() in common_passwords():
        raise PasswordRejected("that password is one of the most common ones; choose another")
    return normal


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, normalise(password))
    except (VerificationError, InvalidHashError, PasswordRejected):
        return False


def verify_dummy(password: str) -> None:
    """Spend one verification's time for an unknown account, so timing reveals nothing."""
    hasher = _hasher
    stored = _dummy_hashes.get(id(hasher))
    if stored is None:
        stored = _dummy_hashes[id(hasher)] = hasher.hash("not a real account password")
    verify_password(stored, password[:MAX_LENGTH])
