"""TOTP (RFC 6238) codes: 6 digits, 30-second steps, one step of clock drift either way.

Each code is usable once: the caller stores the accepted time-step and passes it back as
`last_step`; a code from that step or an earlier one is refused (a replay).
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime

import pyotp

ISSUER = "CareVault"
DRIFT_STEPS = 1
_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length


def provisioning_uri(secret: str, account_label: str) -> str:
    """The otpauth:// URI an authenticator app scans (shown once, at enrolment)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account_label, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time-step the code belongs to, if it is valid now and newer than `last_step`."""
    code = code.strip().replace(" ", "")
    if not _CODE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def code_at(secret: str, when: datetime) -> str:
    """The code an authenticator shows at an instant (tests and the bench use it)."""
    return pyotp.TOTP(secret).at(when)
