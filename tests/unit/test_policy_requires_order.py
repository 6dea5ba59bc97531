"""`disclosure.bases.<basis>.requires_order`: off unless a policy says so, read by the
health-oversight checker, and refused on a basis whose checker would ignore it."""

from __future__ import annotations

import pytest
import yaml

from carevault.policy import Basis, PolicyError, load_profile, parse_policy
from carevault.policy.schema import BasisRule
from tests.unit.test_policy_schema import MINIMAL, paths, refusal, variant


def _with(basis: str, rule: dict[str, object]) -> dict[str, object]:
    return variant(disclosure__bases=dict(MINIMAL["disclosure"]["bases"], **{basis: rule}))


def test_off_by_default() -> None:
    assert BasisRule().requires_order is False
    policy = parse_policy(yaml.safe_dump(MINIMAL))
    assert policy.basis(Basis.REQUIRED_BY_LAW).requires_order is False


def test_health_oversight_may_require_an_order() -> None:
    policy = parse_policy(yaml.safe_dump(_with("health-oversight", {"requires_order": True})))
    assert policy.basis(Basis.HEALTH_OVERSIGHT).requires_order is True


@pytest.mark.parametrize("basis", ["public-health", "law-enforcement", "treatment"])
def test_a_basis_that_would_ignore_it_is_refused(basis: str) -> None:
    error = refusal(_with(basis, {"requires_order": True}))
    assert paths(error) == [f"disclosure.bases.{basis}.requires_order"]
    assert "health-oversight" in error.message


def test_a_non_boolean_is_refused() -> None:
    with pytest.raises(PolicyError):
        parse_policy(yaml.safe_dump(_with("health-oversight", {"requires_order": "maybe"})))


def test_the_profiles_set_it_where_their_seeds_promise_it() -> None:
    # AM-14, LI-36: oversight for an investigation on file; default HIPAA does not ask for one.
    for name, wanted in (("allmeds", True), ("lifeimage", True), ("default", False)):
        assert load_profile(name).basis(Basis.HEALTH_OVERSIGHT).requires_order is wanted, name
