"""Paging tokens: opaque, bound to the user, and short-lived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carevault.crypto.vault import Vault
from carevault.errors import Invalid
from carevault.privacy.paging import PageState, open_page, seal_page

NOW = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault.create(tmp_path / "keys" / "keystore.db")


def test_round_trip_and_opacity(vault: Vault) -> None:
    state = PageState("Patient", (("identifier", "MRN-SECRET-9"),), "abc")
    token = seal_page(vault, "t1", "u1", state, NOW)
    assert "MRN" not in token
    assert "SECRET" not in token
    assert open_page(vault, "t1", "u1", token, NOW) == state


def test_bound_to_user_and_tenant_and_time(vault: Vault) -> None:
    token = seal_page(vault, "t1", "u1", PageState("Patient", (), "abc"), NOW)
    with pytest.raises(Invalid):
        open_page(vault, "t1", "someone-else", token, NOW)
    with pytest.raises(Invalid):
        open_page(vault, "t2", "u1", token, NOW)
    with pytest.raises(Invalid):
        open_page(vault, "t1", "u1", token, NOW + timedelta(hours=2))
    with pytest.raises(Invalid):
        open_page(vault, "t1", "u1", token[:-3] + "AAA", NOW)
