"""Sealed paging tokens for type history and $everything (search keeps its own, paging.py).

Same promises as search links: AES-GCM under a tenant sub-key of its own, bound to the
user and to the kind of listing, lapsing after an hour, so a link carries no PHI and
cannot be read, altered, replayed by someone else or fed to another operation.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson

from carevault.crypto.envelope import DecryptionError
from carevault.crypto.vault import Vault
from carevault.errors import Invalid
from carevault.privacy.paging import PAGE_LIFETIME

_PURPOSE = "operation-paging"


def seal_state(
    vault: Vault, tenant_id: str, user_id: str, kind: str, state: dict[str, Any], now: datetime
) -> str:
    doc = {"s": state, "x": int((now + PAGE_LIFETIME).timestamp())}
    blob = vault.seal_for(tenant_id, _PURPOSE, orjson.dumps(doc), f"{kind}|{user_id}".encode())
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def open_state(
    vault: Vault, tenant_id: str, user_id: str, kind: str, token: str, now: datetime
) -> dict[str, Any]:
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = orjson.loads(vault.open_for(tenant_id, _PURPOSE, blob, f"{kind}|{user_id}".encode()))
        state = doc["s"]
        expires = doc["x"]
        if not isinstance(state, dict) or not isinstance(expires, int):
            raise ValueError("malformed")
    except (ValueError, KeyError, TypeError, DecryptionError, orjson.JSONDecodeError):
        raise Invalid("this paging link is not valid; ask again from the first page") from None
    if expires < now.timestamp():
        raise Invalid("this paging link has expired; ask again from the first page")
    return state
