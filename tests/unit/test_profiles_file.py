"""The profiles file is checked at load: every mistake stops start-up, naming the entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from carevault.privacy.profiles.loader import ProfileError, load_profiles, parse_profiles

GOOD = """
[[profile]]
name = "billing"
roles = ["staff"]
purposes = ["HPAYMT"]
others = "whole"
[profile.types]
Encounter = { keep = ["status", "period"] }
Observation = { withhold = true }
"""


def test_a_good_file_loads() -> None:
    profiles = parse_profiles(GOOD)
    billing = profiles.by_role_purpose[("staff", "HPAYMT")]
    assert billing.keep["Encounter"] == {"status", "period"}
    assert billing.withheld == {"Observation"}


def test_a_file_on_disk_loads(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text(GOOD)
    assert ("staff", "HPAYMT") in load_profiles(path).by_role_purpose


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('"status", "period"', '"status", "reasonText"'),
            "'reasonText' is not an element of Encounter",
        ),
        (('"status", "period"', '"status", "note"'), "never kept"),
        (('"status", "period"', '"text"'), "never kept"),
        (('"status", "period"', '"id"'), "always kept"),
        (('"status", "period"', '"statu[x]"'), "not a choice element"),
        (("Observation =", "Observatio ="), "Observatio: not a resource type served here"),
        (('roles = ["staff"]', 'roles = ["clerk"]'), "'clerk' is not a role"),
        (('purposes = ["HPAYMT"]', 'purposes = ["ETREATX"]'), "not a purpose of use"),
        (('purposes = ["HPAYMT"]', 'purposes = ["PATRQT"]'), "a staff never claims purpose PATRQT"),
        (('others = "whole"', 'others = "maybe"'), "others must be"),
        (("withhold = true", "withhold = false"), "withhold must be true"),
        (("withhold = true", 'withhold = true, keep = ["status"]'), "exactly one of"),
        (('name = "billing"', 'name = "billing"\nextra = 1'), "unknown keys"),
        (("[profile.types]", "[profile.types]\n[profile.more]"), "unknown keys"),
        (("[[profile]]", "[[profile]] ="), "not valid TOML"),
    ],
)
def test_mistakes_name_the_entry(change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ProfileError, match=r"billing|TOML") as raised:
        parse_profiles(text)
    assert message in str(raised.value)


def test_two_profiles_for_one_pair_are_refused() -> None:
    with pytest.raises(ProfileError, match="a second profile"):
        parse_profiles(GOOD + GOOD)
