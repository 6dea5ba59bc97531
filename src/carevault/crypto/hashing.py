"""Keyed hashes for searching direct identifiers without storing them.

HMAC-SHA256 under a per-tenant sub-key: equal inputs match inside one tenant,
while a stolen database copy cannot test guesses without the key store.
"""

from __future__ import annotations

import hashlib
import hmac

from carevault.crypto.envelope import derive_key

DIGEST_HEX_CHARS = 40  # 160 bits: no accidental collisions among a tenant's index entries


class KeyedHasher:
    def __init__(self, tenant_key: bytes) -> None:
        self._key = derive_key(tenant_key, "carevault search-index v1")

    def digest(self, domain: str, value: str) -> str:
        """A hex digest bound to its domain (parameter and match kind), so hashes never cross."""
        msg = domain.encode() + b"\x00" + value.encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:DIGEST_HEX_CHARS]
