"""The router names the rulebook from the data involved, on every shipped profile."""

from __future__ import annotations

import pytest

from carevault.errors import Invalid, Unprocessable
from carevault.policy import load_profile, profile_names
from carevault.policy.schema import CategoryKind
from carevault.rights.models import Action, Rulebook
from carevault.rights.router import VENDOR, route


@pytest.mark.parametrize("profile", profile_names())
def test_phi_goes_to_the_tenant_under_hipaa(profile: str) -> None:
    policy = load_profile(profile)
    phi = [n for n, c in policy.document.categories.items() if c.kind is CategoryKind.PHI]
    for action, right in (
        (Action.ACCESS, "hipaa-access"),
        (Action.AMEND, "hipaa-amendment"),
        (Action.ACCOUNTING, "hipaa-accounting"),
    ):
        if policy.right(right) is None:
            continue
        found = route(policy, action, phi[:1], "Riverside Clinic")
        assert (found.rulebook, found.right, found.decides) == (
            Rulebook.HIPAA,
            right,
            "Riverside Clinic",
        )
        assert "HIPAA" in found.explanation
        assert "Riverside Clinic decides" in found.explanation
        assert found.runs == VENDOR


@pytest.mark.parametrize("profile", profile_names())
def test_vendor_data_goes_to_the_vendor_under_the_ccpa_when_offered(profile: str) -> None:
    policy = load_profile(profile)
    personal = [n for n, c in policy.document.categories.items() if c.kind is CategoryKind.PERSONAL]
    right = policy.right("ccpa-know")
    if right is None:
        with pytest.raises(Unprocessable, match="offers no right"):
            route(policy, Action.KNOW, personal[:1], None)
        return
    covered = [c for c in personal if not right.categories or c in right.categories]
    found = route(policy, Action.KNOW, covered[:1], None)
    assert (found.rulebook, found.decides) == (Rulebook.CCPA, VENDOR)
    assert "California Consumer Privacy Act" in found.explanation
    assert policy.name in found.explanation
    copy = route(policy, Action.ACCESS, covered[:1], None)
    assert copy.right in ("ccpa-access", "ccpa-portability", "ccpa-know")
    assert policy.right(copy.right) is not None


def test_mixed_deidentified_and_unknown_data_are_refused_with_a_reason() -> None:
    policy = load_profile("default")
    with pytest.raises(Unprocessable, match="file one request for each"):
        route(policy, Action.ACCESS, ["phi", "account"], None)
    with pytest.raises(Unprocessable, match="about no one"):
        route(policy, Action.ACCESS, ["deidentified"], None)
    with pytest.raises(Invalid, match="this policy knows"):
        route(policy, Action.ACCESS, ["dna"], None)
    with pytest.raises(Invalid, match="categories"):
        route(policy, Action.ACCESS, [], None)
    with pytest.raises(Unprocessable, match="HIPAA gives no right"):
        route(policy, Action.DELETE, ["phi"], "Riverside Clinic")
    with pytest.raises(Unprocessable, match="health information only"):
        route(policy, Action.ACCOUNTING, ["account"], None)
