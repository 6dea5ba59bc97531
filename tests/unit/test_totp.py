"""TOTP codes: RFC 6238 test vector, drift window, and each code usable once."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from carevault.identity.totp import code_at, matching_step, new_secret, provisioning_uri

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_rfc6238_vector() -> None:
    secret = base64.b32encode(b"12345678901234567890").decode()
    # RFC 6238 appendix B, SHA-1, T=59 → 94287082 (8 digits); 6 digits are its last six.
    assert code_at(secret, datetime.fromtimestamp(59, UTC)) == "287082"


def test_a_code_is_accepted_once_and_never_an_older_one() -> None:
    secret = new_secret()
    code = code_at(secret, NOW)
    step = matching_step(secret, code, NOW, None)
    assert step is not None
    assert matching_step(secret, code, NOW, step) is None  # replay
    older = code_at(secret, NOW - timedelta(seconds=30))
    assert matching_step(secret, older, NOW, step) is None  # older than the last used


def test_drift_of_one_step_and_no_more() -> None:
    secret = new_secret()
    assert matching_step(secret, code_at(secret, NOW - timedelta(seconds=30)), NOW, None)
    assert matching_step(secret, code_at(secret, NOW - timedelta(seconds=90)), NOW, None) is None
    for junk in ("", "12345", "abcdef", "1234567", "12 34 5x"):
        assert matching_step(secret, junk, NOW, None) is None


def test_secret_and_uri() -> None:
    secret = new_secret()
    assert len(base64.b32decode(secret)) == 20  # 160 bits
    uri = provisioning_uri(secret, "north-1234abcd")
    assert uri.startswith("otpauth://totp/CareVault:north-1234abcd?")
    assert secret in uri
