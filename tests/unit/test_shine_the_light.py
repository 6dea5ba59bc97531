"""Shine the Light answers "none" only when the policy leaves no way for personal information
to reach a third party's marketing; a policy that sells it gets no made-up empty list."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carevault.errors import Conflict
from carevault.policy import PrivacyPolicy, load_profile
from carevault.rights.shine import marketing_disclosures


def test_a_policy_that_sells_gets_no_empty_list_by_default() -> None:
    allmeds = load_profile("allmeds")
    selling = PrivacyPolicy(
        allmeds.document.model_copy(update={"sells_personal_information": True})
    )
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn, pytest.raises(Conflict, match="answer the request by hand"):
        marketing_disclosures(conn, selling, None, None, "2026-12-01T00:00:00+00:00")
