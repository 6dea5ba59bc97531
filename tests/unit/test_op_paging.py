"""Paging tokens of type history and $everything: opaque, bound to user and kind, short-lived,
and never confused with search links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carevault.crypto.vault import Vault
from carevault.errors import Invalid
from carevault.privacy.op_paging import open_state, seal_state
from carevault.privacy.paging import open_page

NOW = datetime(2026, 11, 23, tzinfo=UTC)
STATE = {"p": "patient-secret-id", "c": 20, "a": ["Observation", "obs-1"]}


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault.create(tmp_path / "keys" / "keystore.db")


def test_round_trip_and_opacity(vault: Vault) -> None:
    token = seal_state(vault, "t1", "u1", "everything", STATE, NOW)
    assert "secret" not in token
    assert open_state(vault, "t1", "u1", "everything", token, NOW) == STATE


@pytest.mark.parametrize(
    ("tenant", "user", "kind"),
    [("t2", "u1", "everything"), ("t1", "u2", "everything"), ("t1", "u1", "history-type")],
)
def test_bound_to_tenant_user_and_kind(vault: Vault, tenant: str, user: str, kind: str) -> None:
    token = seal_state(vault, "t1", "u1", "everything", STATE, NOW)
    with pytest.raises(Invalid):
        open_state(vault, tenant, user, kind, token, NOW)


def test_lapses_and_garbage(vault: Vault) -> None:
    token = seal_state(vault, "t1", "u1", "everything", STATE, NOW)
    with pytest.raises(Invalid, match="expired"):
        open_state(vault, "t1", "u1", "everything", token, NOW + timedelta(hours=2))
    for junk in ("", "abc", "é", token[:-4], token[::-1]):
        with pytest.raises(Invalid):
            open_state(vault, "t1", "u1", "everything", junk, NOW)


def test_not_a_search_link_and_back(vault: Vault) -> None:
    token = seal_state(vault, "t1", "u1", "everything", STATE, NOW)
    with pytest.raises(Invalid):
        open_page(vault, "t1", "u1", token, NOW)
