"""Rules are data: the strategy registry, the shipped profiles, the paths, and a bad profile
refused with a message naming the entry."""

from __future__ import annotations

import pytest

from carevault.deid.fhir.paths import PathPattern
from carevault.deid.fhir.profile import ProfileError, load_profile, parse_profile
from carevault.deid.fhir.strategies import REGISTRY, REMOVED, register
from carevault.deid.fhir.strategies.keep import Keep
from tests.unit.deid.fhir_helpers import PATIENT, context, deidentify

MINIMAL = b"""
name = "test"
version = "0"
dates = "year"
rules = [["Patient.name", "keep", "name"], ["**.name", "remove", "name"]]
"""


def test_the_registry_has_one_strategy_per_kind() -> None:
    assert {"remove", "keep", "zip3", "year", "birth-date", "cap-age", "pseudonymize",
            "pseudonymize-id", "shift", "scrub-text", "scrub-narrative",
            "scrub-attachment"} <= set(REGISTRY)  # fmt: skip
    for name, strategy in REGISTRY.items():
        assert strategy.name == name


def test_a_strategy_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        register(Keep())


@pytest.mark.parametrize("name", ["safe-harbor", "limited-data-set"])
def test_the_shipped_profiles_load_and_name_their_rules(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert len(profile.sha256) == 64
    assert profile.describe()["version"]
    assert all(rule.category for rule in profile.rules)


def test_the_profiles_differ_in_what_the_limited_data_set_may_keep() -> None:
    safe, limited = load_profile("safe-harbor"), load_profile("limited-data-set")
    assert safe.dates.name == "year"
    assert limited.dates.name == "keep"
    assert "date" in safe.residual_scan
    assert "date" not in limited.residual_scan
    where = ("Patient", "address", "postalCode")
    assert safe.rule_for(where).strategy.name == "zip3"  # type: ignore[union-attr]
    assert limited.rule_for(where).strategy.name == "keep"  # type: ignore[union-attr]


def test_first_match_wins() -> None:
    profile = parse_profile(MINIMAL, "test.toml")
    out, _ = deidentify(PATIENT, profile)
    assert out["name"] == PATIENT["name"]
    contact = out["contact"][0]
    assert "name" not in contact


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"name = 'x'\nversion = '1'\ndates = 'nope'\nrules = []", "no strategy named 'nope'"),
        (
            b"name = 'x'\nversion = '1'\ndates = 'year'\nrules = [['a.b', 'keep']]",
            "rules[0]: want [path, strategy",
        ),
        (
            b"name = 'x'\nversion = '1'\ndates = 'year'\nrules = [['a..b', 'keep', 'x']]",
            "empty segment",
        ),
        (b"name = 'x'\ndates = 'year'\nrules = []", "`version` is missing"),
        (b"name = 'x'\nversion = '1'\ndates = 'year'\nrules = []\nextra = 1", "unknown keys"),
        (
            b"name = 'x'\nversion = '1'\ndates = 'year'\nrules = []\nresidual_scan = ['mood']",
            "unknown residual_scan",
        ),
        (b"not toml [", "not TOML"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_entry(text: bytes, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("[", r"\[")):
        parse_profile(text, "bad.toml")


def test_an_unknown_profile_name_is_refused() -> None:
    with pytest.raises(ProfileError, match="no de-identification profile"):
        load_profile("no-such-profile")


@pytest.mark.parametrize(
    ("pattern", "location", "matches"),
    [
        ("**.identifier", ("Patient", "identifier"), True),
        ("**.identifier", ("Encounter", "diagnosis", "condition", "identifier"), True),
        ("*.id", ("Patient", "id"), True),
        ("*.id", ("Patient", "name", "id"), False),
        ("**.*Age", ("Condition", "onsetAge"), True),
        ("Patient.deceased[x]", ("Patient", "deceasedDateTime"), True),
        ("Patient.contact", ("Observation", "contact"), False),
    ],
)
def test_paths(pattern: str, location: tuple[str, ...], matches: bool) -> None:
    assert PathPattern.parse(pattern).matches(location) is matches


def test_references_that_cannot_be_pseudonymized_are_removed() -> None:
    strategy, ctx = REGISTRY["pseudonymize"], context()
    assert strategy.apply("Patient/abc/_history/2", ctx) == "Patient/p-patient-abc"
    assert strategy.apply("#contained-1", ctx) == "#contained-1"
    assert strategy.apply("urn:uuid:6f1c2b1e-8a8a-4a55-9d4a-1c2b3d4e5f60", ctx).startswith(
        "urn:uuid:p-urn-"
    )
    assert strategy.apply("https://elsewhere.example/Patient/1", ctx) is REMOVED
    assert strategy.apply("Practitioner?identifier=x|1", ctx) is REMOVED


def test_shift_moves_a_date_by_the_patients_offset() -> None:
    ctx = context(shift_days=-40)
    assert REGISTRY["shift"].apply("2020-03-01T10:00:00Z", ctx) == "2020-01-21T10:00:00Z"
    assert REGISTRY["shift"].apply("2020", ctx) == "2020"
