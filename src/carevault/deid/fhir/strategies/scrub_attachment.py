"""scrub-attachment: an Attachment keeps its type and language; inline plain text (base64)
is decoded, scrubbed and re-encoded; its URL, title, hash and any other content (images,
PDF: photographs and scans cannot be scrubbed as text) are removed."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register

_KEPT = ("contentType", "language")


def _charset(kind: str) -> str:
    for param in kind.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def attachment_text(attachment: dict[str, Any]) -> str | None:
    """The decoded text of an inline text/* attachment (its declared charset, else UTF-8),
    or None: undecodable text cannot be scrubbed, so the strategy drops it (and counts it)."""
    kind = str(attachment.get("contentType", "")).lower()
    data = attachment.get("data")
    if not kind.startswith("text/") or not isinstance(data, str):
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    for charset in dict.fromkeys((_charset(kind), "utf-8")):
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return None


class ScrubAttachment:
    name = "scrub-attachment"

    def apply(self, value: Any, ctx: Context) -> Any:
        if not isinstance(value, dict):
            return REMOVED
        out = {k: value[k] for k in _KEPT if k in value}
        text = attachment_text(value)
        if text is not None:
            scrubbed = ctx.scrub(text).encode("utf-8")
            out["contentType"] = value["contentType"].split(";")[0] + "; charset=utf-8"
            out["data"] = base64.b64encode(scrubbed).decode("ascii")
            out["size"] = len(scrubbed)
        return out or REMOVED


register(ScrubAttachment())
