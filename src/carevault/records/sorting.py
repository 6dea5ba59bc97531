"""`_sort` keys → ORDER BY expressions over the index tables.

A resource may hold several values for one parameter: ascending sorts by its lowest,
descending by its highest (FHIR). Resources without a value come last either way, and
the resource id breaks every tie, so the order is total and repeatable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from carevault.records.models import resources, search_dates, search_quantities, search_tokens
from carevault.records.params import Kind
from carevault.records.shaping import SortKey


def order_by(tenant_id: str, rtype: str, keys: tuple[SortKey, ...]) -> list[Any]:
    order: list[Any] = []
    for key in keys:
        column = _key_column(tenant_id, rtype, key)
        order.append(column.desc().nulls_last() if key.descending else column.asc().nulls_last())
    if not any(key.name == "_id" for key in keys):
        order.append(resources.c.resource_id.asc())
    return order


def _key_column(tenant_id: str, rtype: str, key: SortKey) -> Any:
    if key.param is None:
        return resources.c.resource_id if key.name == "_id" else resources.c.last_updated
    if key.param.kind is Kind.TOKEN:
        table, low, high = search_tokens, search_tokens.c.code, search_tokens.c.code
    elif key.param.kind is Kind.DATE:
        table, low, high = search_dates, search_dates.c.low, search_dates.c.high
    else:
        table, low, high = search_quantities, search_quantities.c.low, search_quantities.c.high
    value = func.max(high) if key.descending else func.min(low)
    return (
        select(value)
        .where(
            table.c.tenant_id == tenant_id,
            table.c.resource_type == rtype,
            table.c.param == key.param.name,
            table.c.resource_id == resources.c.resource_id,
        )
        .scalar_subquery()
    )
