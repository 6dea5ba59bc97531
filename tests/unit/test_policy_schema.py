"""A policy file with a typo, a dangling name or a contradiction is refused, and the refusal
names the path of each offending entry so that its author can fix it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from carevault.policy import Basis, PolicyError, load_policy, load_profile, parse_policy

MINIMAL: dict[str, Any] = {
    "policy": 1,
    "name": "Test clinic",
    "summary": "A policy for the tests.",
    "categories": {
        "phi": {"kind": "phi", "description": "Health information."},
        "account": {"kind": "personal", "description": "Accounts."},
        "cards": {"kind": "personal", "description": "Card numbers.", "stored": False},
        "deidentified": {"kind": "deidentified", "description": "Aggregates."},
    },
    "purposes": {
        "care": {"description": "Care.", "categories": ["phi", "account"]},
        "research": {"description": "Research.", "categories": ["deidentified"]},
    },
    "recipients": {
        "vendors": {"description": "Vendors.", "shares": ["phi"], "requires": ["baa"]},
        "affiliates": {"description": "Affiliates.", "shares": ["account"]},
    },
    "disclosure": {
        "bases": {
            "authorization": {},
            "treatment": {},
            "payment": {"minimum_necessary": "billing"},
            "required-by-law": {"notice": "before"},
        }
    },
    "minimum_necessary": {
        "billing": {
            "description": "Billing.",
            "types": {"Patient": {"keep": ["name", "birthDate"]}, "Invoice": {"whole": True}},
        }
    },
    "retention": {"account": {"keep_days": 365, "after": "account-closed"}},
    "rights": {
        "hipaa-access": {"law": "hipaa", "deadline_days": 30, "extension_days": 30},
        "ccpa-know": {"law": "ccpa", "deadline_days": 45, "max_per_12_months": 2},
    },
    "deidentified": {"purposes": ["research"]},
}


def variant(**changes: Any) -> dict[str, Any]:
    """MINIMAL with dotted paths set (a value of ... deletes the key)."""
    doc = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return doc


def refusal(doc: Any) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(yaml.safe_dump(doc), "test.yaml")
    return caught.value


def paths(error: PolicyError) -> list[str]:
    return [path for path, _ in error.issues]


def test_the_minimal_policy_loads() -> None:
    policy = parse_policy(yaml.safe_dump(MINIMAL))
    assert policy.name == "Test clinic"
    assert policy.minimum_profile(Basis.PAYMENT) is not None


def test_an_unknown_key_is_refused_with_its_path() -> None:
    error = refusal(variant(categories__phi__colour="red"))
    assert paths(error) == ["categories.phi.colour"]
    assert "test.yaml" in error.message
    assert "categories.phi.colour" in error.message


def test_an_unknown_top_level_section_is_refused() -> None:
    assert paths(refusal(variant(cookies={"banner": True}))) == ["cookies"]


def test_an_unknown_category_is_refused_wherever_it_is_named() -> None:
    error = refusal(
        variant(
            purposes__care__categories=["phi", "genome"],
            recipients__affiliates__shares=["gossip"],
            retention__biometric={"keep_days": 1},
            never_shared=["secrets"],
        )
    )
    assert set(paths(error)) == {
        "purposes.care.categories",
        "recipients.affiliates.shares",
        "retention",
        "never_shared",
    }
    assert "unknown category 'genome'" in error.message


def test_a_category_both_never_shared_and_shared_is_a_contradiction() -> None:
    error = refusal(variant(never_shared=["phi"]))
    assert paths(error) == ["recipients.vendors.shares"]
    assert "never_shared" in error.issues[0][1]


def test_a_profile_naming_a_missing_element_or_type_is_refused() -> None:
    error = refusal(
        variant(
            minimum_necessary__billing__types={
                "Patient": {"keep": ["name", "shoeSize"]},
                "Spaceship": {"whole": True},
            }
        )
    )
    assert set(paths(error)) == {
        "minimum_necessary.billing.types.Patient.keep",
        "minimum_necessary.billing.types.Spaceship",
    }
    assert "'shoeSize'" in error.message
    assert "not a served FHIR type" in error.message


def test_whole_and_keep_together_contradict() -> None:
    error = refusal(
        variant(minimum_necessary__billing__types={"Invoice": {"whole": True, "keep": ["status"]}})
    )
    assert paths(error) == ["minimum_necessary.billing.types.Invoice"]


def test_minimum_necessary_on_an_exempt_basis_is_refused() -> None:
    bases = dict(MINIMAL["disclosure"]["bases"], treatment={"minimum_necessary": "billing"})
    error = refusal(variant(disclosure__bases=bases))
    assert paths(error) == ["disclosure.bases.treatment.minimum_necessary"]
    assert "164.502(b)(2)" in error.message


def test_a_basis_naming_a_missing_profile_is_refused() -> None:
    bases = dict(MINIMAL["disclosure"]["bases"], payment={"minimum_necessary": "nothing-here"})
    error = refusal(variant(disclosure__bases=bases))
    assert paths(error) == ["disclosure.bases.payment.minimum_necessary"]


def test_an_unknown_basis_is_refused() -> None:
    bases = dict(MINIMAL["disclosure"]["bases"], gossip={})
    error = refusal(variant(disclosure__bases=bases))
    assert any(path.startswith("disclosure.bases.gossip") for path in paths(error))


def test_negative_retention_is_refused() -> None:
    error = refusal(variant(retention__account={"keep_days": -1}))
    assert paths(error) == ["retention.account.keep_days"]


def test_a_wrong_schema_version_is_refused() -> None:
    assert paths(refusal(variant(policy=2))) == ["policy"]
    assert paths(refusal(variant(policy=...))) == ["policy"]


def test_a_missing_required_section_is_refused() -> None:
    assert paths(refusal(variant(disclosure=...))) == ["disclosure"]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just words\n", "42\n", ""])
def test_yaml_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(PolicyError, match="must be a mapping"):
        parse_policy(text, "test.yaml")


def test_invalid_yaml_is_refused_with_its_line() -> None:
    text = "policy: 1\nname: x\ncategories: [phi,\n  account\nsummary: y\n"
    with pytest.raises(PolicyError, match=r"test\.yaml: not valid YAML at line \d+"):
        parse_policy(text, "test.yaml")


def test_every_problem_is_listed_at_once() -> None:
    error = refusal(variant(never_shared=["phi"], purposes__care__categories=["genome"]))
    assert len(error.issues) == 2
    assert "2 problem(s)" in error.message


def test_a_retention_rule_for_a_category_that_is_never_stored_is_refused() -> None:
    error = refusal(variant(retention__cards={"keep_days": 30}))
    assert paths(error) == ["retention.cards"]


def test_minimum_necessary_for_every_third_party_needs_a_profile_on_each_basis() -> None:
    bases = dict(MINIMAL["disclosure"]["bases"], operations={})
    doc = variant(disclosure__bases=bases)
    doc["disclosure"]["third_parties"] = {"minimum_necessary": True}
    error = refusal(doc)
    # treatment and authorization are exempt; payment has its profile
    assert set(paths(error)) == {
        "disclosure.bases.operations.minimum_necessary",
        "disclosure.bases.required-by-law.minimum_necessary",
    }


def test_a_right_slower_than_the_law_allows_is_refused() -> None:
    rights = {
        "hipaa-access": {"law": "hipaa", "deadline_days": 31, "extension_days": 60},
        "ccpa-know": {"law": "ccpa", "deadline_days": 45, "max_per_12_months": 1},
    }
    error = refusal(variant(rights=rights))
    assert set(paths(error)) == {
        "rights.hipaa-access.deadline_days",
        "rights.hipaa-access.extension_days",
        "rights.ccpa-know.max_per_12_months",
    }


def test_a_ccpa_right_covering_phi_or_an_unknown_category_is_refused() -> None:
    rights = {"ccpa-know": {"law": "ccpa", "deadline_days": 45, "categories": ["phi", "x"]}}
    error = refusal(variant(rights=rights))
    assert set(paths(error)) == {"rights.ccpa-know.categories"}
    assert len(error.issues) == 2


def test_a_right_with_no_clock_or_an_unknown_law_is_refused() -> None:
    error = refusal(variant(rights={"r": {"law": "gdpr", "deadline_days": 0}}))
    assert set(paths(error)) == {"rights.r.law", "rights.r.deadline_days"}


def test_an_unknown_requirement_or_notice_is_refused() -> None:
    error = refusal(
        variant(recipients__vendors__requires=["handshake"], notices={"breach": "someday"})
    )
    assert set(paths(error)) == {"recipients.vendors.requires.0", "notices.breach"}


def test_a_deidentified_purpose_must_exist() -> None:
    error = refusal(variant(deidentified={"purposes": ["marketing"]}))
    assert paths(error) == ["deidentified.purposes"]


def test_a_no_sale_notice_contradicts_a_policy_that_sells() -> None:
    error = refusal(variant(sells_personal_information=True, notices={"no-sale": "before"}))
    assert paths(error) == ["notices.no-sale"]


def test_an_unreadable_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing\.yaml: cannot read"):
        load_policy(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00policy")
    with pytest.raises(PolicyError, match=r"binary\.yaml: cannot read"):
        load_policy(binary)


def test_an_unknown_profile_is_refused_with_the_known_ones() -> None:
    with pytest.raises(PolicyError, match=r"no policy profile 'acme'.*lifeimage"):
        load_profile("acme")
