"""A keyed, deterministic UID mapping: the same original UID maps to the same new UID under
the same project key, whatever file it appears in, so a study stays a study (and two exports
of it agree), while without the key the mapping can neither be inverted nor recomputed.
"""

from __future__ import annotations

import hashlib
import hmac

_MIN_KEY_BYTES = 16


class UidMapper:
    """HMAC-SHA256 of the original UID, its first 128 bits made a UUIDv8, written as 2.25.<int>.

    2.25 is the UUID-derived root (PS3.5 B.2): no organisation root is needed and the result
    (at most 44 characters) fits the 64-character UI limit.
    """

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"the project key must be at least {_MIN_KEY_BYTES} bytes")
        self._key = bytes(key)
        self._memo: dict[str, str] = {}  # one study repeats the same UIDs in every instance

    def map(self, uid: str) -> str:
        original = uid.strip("\x00 ")
        if not original:
            return original
        found = self._memo.get(original)
        if found is None:
            digest = hmac.new(self._key, original.encode("ascii", "replace"), hashlib.sha256)
            number = int.from_bytes(digest.digest()[:16], "big")
            number = (number & ~(0xF << 76)) | (0x8 << 76)  # version 8 (RFC 9562, custom)
            number = (number & ~(0x3 << 62)) | (0x2 << 62)  # the RFC variant
            found = f"2.25.{number}"
            if len(self._memo) < 1_000_000:  # bounded: a huge export must not grow memory
                self._memo[original] = found
        return found
