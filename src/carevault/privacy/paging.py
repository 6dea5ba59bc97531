"""Paging links that carry no PHI: the search is sealed into an opaque token.

The token is AES-GCM under a tenant sub-key and bound to the user, so it cannot
be read, altered, or used by anyone else; it lapses after an hour.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from carevault.crypto.envelope import DecryptionError
from carevault.crypto.vault import Vault
from carevault.errors import Invalid

PAGE_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class PageState:
    resource_type: str
    params: tuple[tuple[str, str], ...]
    after: str
    """Unsorted searches: the next page starts after this resource id."""
    snapshot: str = ""
    """Sorted searches: the snapshot holding the ordered ids, and where the next page starts."""
    offset: int = 0


def seal_page(vault: Vault, tenant_id: str, user_id: str, state: PageState, now: datetime) -> str:
    doc = {
        "t": state.resource_type,
        "p": state.params,
        "a": state.after,
        "s": state.snapshot,
        "o": state.offset,
        "x": int((now + PAGE_LIFETIME).timestamp()),
    }
    blob = vault.seal_for(tenant_id, "paging", orjson.dumps(doc), user_id.encode())
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def open_page(vault: Vault, tenant_id: str, user_id: str, token: str, now: datetime) -> PageState:
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = orjson.loads(vault.open_for(tenant_id, "paging", blob, user_id.encode()))
    except (ValueError, DecryptionError, orjson.JSONDecodeError):
        raise Invalid("this paging link is not valid; run the search again") from None
    if doc["x"] < now.timestamp():
        raise Invalid("this paging link has expired; run the search again")
    params: Sequence[Sequence[str]] = doc["p"]
    return PageState(
        doc["t"], tuple((k, v) for k, v in params), doc["a"], doc.get("s", ""), doc.get("o", 0)
    )
