"""The audit entries one HTTP request wrote, read back by its request id."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from carevault.audit.models import audit_entries
from carevault.runtime import Runtime


def audit_of(runtime: Runtime, response: Any) -> list[dict[str, Any]]:
    """Each entry as a dict, with its resource and patient id lists decoded."""
    with runtime.reader.connect() as conn:
        rows = conn.execute(
            sa.select(audit_entries).where(
                audit_entries.c.request_id == response.headers["x-request-id"]
            )
        ).mappings()
        return [
            {**row, "resource_ids": orjson.loads(row["resource_ids"]),
             "patient_ids": orjson.loads(row["patient_ids"])}
            for row in rows
        ]  # fmt: skip
