"""California's "Shine the Light" (Cal. Civ. Code 1798.83): a California resident may ask,
once a year, for the list of the personal information a business disclosed to third parties
for those third parties' own direct marketing in the preceding calendar year, with their
names and addresses. The list comes from CareVault's records: what the policy lets leave,
and what left. CareVault has no path that hands personal information to a third party for
its marketing (marketing is sent by us, to the person, through send_marketing), so under a
policy that sells nothing the list is empty, and the answer shows the records that say so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from carevault.errors import Conflict
from carevault.messaging.models import notification_outbox
from carevault.policy import PrivacyPolicy
from carevault.retention.marketing import marketing_sent_to
from carevault.rights.models import rights_provider_directions


def marketing_disclosures(
    conn: Connection,
    policy: PrivacyPolicy,
    tenant_id: str | None,
    user_id: str | None,
    received_at: str,
) -> dict[str, Any]:
    if policy.sells_personal_information:
        # Then a third party may have received it outside CareVault's paths: the list is
        # the privacy office's to compile, and "none" would be a guess.
        raise Conflict(
            "this policy lets personal information be sold: the privacy office compiles the "
            "list from its agreements; answer the request by hand"
        )
    year = int(received_at[:4]) - 1  # "the immediately preceding calendar year"
    start, end = f"{year}-01-01", f"{year + 1}-01-01"
    ours = 0
    if tenant_id and user_id:
        o = notification_outbox.c
        ours = conn.execute(
            select(func.count()).where(
                marketing_sent_to(tenant_id, user_id), o.created_at >= start, o.created_at < end
            )
        ).scalar_one()
    d = rights_provider_directions.c
    directions = conn.execute(
        select(func.count()).where(
            d.subject_ref == f"User/{tenant_id}/{user_id}",
            d.directed_at >= start,
            d.directed_at < end,
        )
    ).scalar_one()
    return {
        "law": "Cal. Civ. Code 1798.83",
        "period": {"from": start, "to": f"{year}-12-31"},
        "disclosed_for_direct_marketing": [],
        "answer": (
            f"In {year} we disclosed none of your personal information to any third party "
            "for that third party's direct marketing: there is nothing to list."
        ),
        "from_the_records": {
            "policy": policy.name,
            "sells_personal_information": policy.document.sells_personal_information,
            "marketing_we_sent_to_you": int(ours),
            "deletion_directions_to_service_providers": int(directions),
            "how_we_know": (
                "Personal information leaves CareVault only through recorded paths: marketing "
                "we send to you ourselves (counted above; it goes to you, not to a third "
                "party), directions to our service providers to delete (counted above), and "
                "the disclosure path for health information, which your provider decides "
                "under HIPAA and never for a third party's marketing."
            ),
        },
    }
