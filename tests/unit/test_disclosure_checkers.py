"""The pure parts of the disclosure path: the 164.508(c) elements, coverage, each basis's
checker, the law-enforcement allow-list, segmentation and the minimum-necessary cut."""

from __future__ import annotations

from typing import Any

import pytest

from carevault.errors import CareVaultError
from carevault.policy import Basis, load_profile
from carevault.privacy.disclosure import consent_terms, evidence, release
from carevault.privacy.disclosure.checkers import REGISTRY
from carevault.privacy.disclosure.consent_terms import SignedAuthorization
from carevault.privacy.disclosure.facts import (
    VERIFIED_ADDRESS,
    Baa,
    Facts,
    Incomplete,
    Item,
    Order,
    Recipient,
    Refused,
    in_range,
)

NOW = "2026-11-23T09:00:00.000000Z"
TAG = {"tag": [{"system": VERIFIED_ADDRESS[0], "code": VERIFIED_ADDRESS[1]}]}
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"


def org(kind: str, rid: str = "o1") -> Recipient:
    return Recipient(f"Organization/{rid}", {"resourceType": "Organization", "meta": TAG,
                     "type": [{"coding": [{"system": ORG_TYPE, "code": kind}]}],
                     "address": [{"city": "X"}]})  # fmt: skip


def obs(rid: str, code: str = "2345-7", when: str = "2024-05-02", **extra: Any) -> Item:
    body = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "effectiveDateTime": when,
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        **extra,
    }
    return Item(f"Observation/{rid}", body)


def consent(**provision: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "permit", "period": {"start": "2026-01-01", "end": "2027-01-01"},
        "actor": [{"role": {"coding": [{"code": "IRCP"}]},
                   "reference": {"reference": "Organization/o1"}}],
        "purpose": [{"code": "PATRQT"}],
    }  # fmt: skip
    return {"resourceType": "Consent", "id": "c1", "status": "active",
            "patient": {"reference": "Patient/p1"},
            "organization": [{"reference": "Organization/us"}],
            "provision": {**base, **provision}}  # fmt: skip


def facts(basis: Basis, recipient: Recipient, items: tuple[Item, ...] = (), **more: Any) -> Facts:
    values: dict[str, Any] = {
        "purpose": "PATRQT",
        "patient": {"resourceType": "Patient"},
        "explicit": True,
        "actor_kind": "privacy-officer",
        **more,
    }
    return Facts(
        "t1",
        "p1",
        values.pop("patient"),
        basis,
        values.pop("purpose"),
        recipient,
        items,
        values.pop("explicit"),
        NOW,
        values.pop("actor_kind"),
        **values,
    )


def signed(body: dict[str, Any], **kw: Any) -> SignedAuthorization:
    values = {"signed_at": NOW, "revoked_at": None, "terms_intact": True, "authority": "self", **kw}
    return SignedAuthorization(consent_terms.parse(body), **values)


def refusal(f: Facts) -> str:
    with pytest.raises(CareVaultError) as caught:
        REGISTRY[f.basis].check(f)
    return caught.value.message


# -- 164.508(c) elements and coverage ------------------------------------------------------


def test_a_complete_authorization_has_no_missing_element() -> None:
    terms = consent_terms.parse(consent(data=[{"reference": {"reference": "Observation/a"}}]))
    assert consent_terms.missing(terms) == []
    assert terms.recipient_refs == ("Organization/o1",)


@pytest.mark.parametrize(
    ("change", "element"),
    [
        ({"purpose": []}, "Consent.provision.purpose"),
        ({"period": {"start": "2026-01-01"}}, "Consent.provision.period.end"),
        ({"actor": []}, "Consent.provision.actor"),
        ({}, "Consent.provision.data"),
    ],
)
def test_each_missing_element_is_named(change: dict[str, Any], element: str) -> None:
    body = consent(**change)
    assert element in [where for where, _ in consent_terms.missing(consent_terms.parse(body))]


def test_free_text_recipient_and_missing_discloser_are_elements() -> None:
    body = consent(classes=[{"code": "Observation"}])
    body["provision"]["class"] = [{"system": consent_terms.RESOURCE_TYPES, "code": "Observation"}]
    body["provision"]["actor"][0]["reference"] = {"display": "my lawyer"}
    body["organization"] = []
    where = {w for w, _ in consent_terms.missing(consent_terms.parse(body))}
    assert {"Consent.provision.actor", "Consent.organization"} <= where


def test_coverage_by_class_dates_and_exclusions() -> None:
    body = consent(
        **{
            "class": [{"system": consent_terms.RESOURCE_TYPES, "code": "Observation"}],
            "dataPeriod": {"start": "2024-01-01", "end": "2024-12-31"},
            "provision": [{"type": "deny", "securityLabel": [{"code": "PSYTHPN"}]}],
        }
    )
    terms = consent_terms.parse(body)
    assert consent_terms.not_covered(terms, obs("a")) is None
    assert "outside the dates" in str(consent_terms.not_covered(terms, obs("b", when="2025-01-02")))
    labelled = Item("Observation/c", obs("c").body, frozenset({"PSYTHPN"}))
    assert "excludes" in str(consent_terms.not_covered(terms, labelled))
    assert "kinds" in str(consent_terms.not_covered(terms, Item("Condition/d", {})))


def test_live_until_its_end_day_and_instant_forms() -> None:
    terms = consent_terms.parse(consent())
    assert consent_terms.not_live(terms, NOW) is None
    assert "expired" in str(consent_terms.not_live(terms, "2027-01-02T00:00:00.000000Z"))
    assert consent_terms.not_live(terms, "2027-01-01T23:00:00.000000Z") is None
    assert consent_terms.instant("2027-01-01T10:00:00+02:00") == "2027-01-01T08:00:00.000000Z"
    assert consent_terms.instant("garbage") == ""


def test_the_signed_document_carries_the_statements() -> None:
    terms = consent_terms.parse(consent(data=[{"reference": {"reference": "Observation/a"}}]))
    text = consent_terms.render(terms, "u1", "self", NOW)
    assert all(statement in text for statement in consent_terms.STATEMENTS)
    assert "Observation/a" in text
    assert "Organization/o1" in text


def test_the_terms_digest_ignores_status_but_not_the_provision() -> None:
    body = consent()
    digest = consent_terms.terms_digest(body)
    assert consent_terms.terms_digest({**body, "status": "inactive"}) == digest
    body["provision"]["purpose"] = [{"code": "HMARKT"}]
    assert consent_terms.terms_digest(body) != digest


# -- checkers ---------------------------------------------------------------------------


def test_registry_has_one_checker_for_every_basis() -> None:
    assert set(REGISTRY) == set(Basis)


def test_authorization_checker() -> None:
    body = consent(data=[{"reference": {"reference": "Observation/a"}}])
    ok = facts(Basis.AUTHORIZATION, org("bus"), (obs("a"),), authorization=signed(body))
    REGISTRY[Basis.AUTHORIZATION].check(ok)
    assert "another recipient" in refusal(
        facts(Basis.AUTHORIZATION, org("bus", "o2"), (obs("a"),), authorization=signed(body))
    )
    assert "not named" in refusal(
        facts(Basis.AUTHORIZATION, org("bus"), (obs("b"),), authorization=signed(body))
    )
    assert "revoked" in refusal(
        facts(
            Basis.AUTHORIZATION, org("bus"), (obs("a"),), authorization=signed(body, revoked_at=NOW)
        )
    )
    assert "never signed" in refusal(
        facts(
            Basis.AUTHORIZATION, org("bus"), (obs("a"),), authorization=signed(body, signed_at=None)
        )
    )
    assert "changed" in refusal(
        facts(
            Basis.AUTHORIZATION,
            org("bus"),
            (obs("a"),),
            authorization=signed(body, terms_intact=False),
        )
    )
    with pytest.raises(Incomplete):
        REGISTRY[Basis.AUTHORIZATION].check(facts(Basis.AUTHORIZATION, org("bus"), (obs("a"),)))


def test_business_associate_checker() -> None:
    f = facts(Basis.BUSINESS_ASSOCIATE, org("bus"))
    assert "no business associate agreement" in refusal(f)
    old = Baa("b1", "Organization/o1", "2024-01-01", "2025-01-01")
    assert "ended on 2025-01-01" in refusal(
        facts(Basis.BUSINESS_ASSOCIATE, org("bus"), baas=(old,))
    )
    soon = Baa("b2", "Organization/o1", "2027-01-01", None)
    assert "not yet" in refusal(facts(Basis.BUSINESS_ASSOCIATE, org("bus"), baas=(soon,)))
    live = Baa("b3", "Organization/o1", "2026-01-01", "2026-11-23")
    REGISTRY[Basis.BUSINESS_ASSOCIATE].check(
        facts(Basis.BUSINESS_ASSOCIATE, org("bus"), baas=(old, live))
    )


def _order(kind: str = "court-order", **kw: Any) -> Order:
    values: dict[str, Any] = {
        "order_id": "o", "kind": kind, "patient_id": "p1", "recipient_ref": None,
        "types": frozenset({"Observation"}), "refs": frozenset(), "date_from": "2024-01-01",
        "date_to": "2024-12-31", "expires_on": None, "gag": "none", "gag_until": None,
        "gag_lifted_at": None, "assurances": frozenset(), **kw,
    }  # fmt: skip
    return Order(**values)


def test_order_checkers_release_only_what_the_order_names() -> None:
    court = org("govt")
    REGISTRY[Basis.REQUIRED_BY_LAW].check(
        facts(Basis.REQUIRED_BY_LAW, court, (obs("a"),), order=_order())
    )
    assert "does not name" in refusal(
        facts(Basis.REQUIRED_BY_LAW, court, (obs("a", when="2025-03-01"),), order=_order())
    )
    assert "expired" in refusal(
        facts(Basis.REQUIRED_BY_LAW, court, (obs("a"),), order=_order(expires_on="2026-01-01"))
    )
    assert "164.512(e)(1)(ii)" in refusal(
        facts(Basis.SUBPOENA, court, (obs("a"),), order=_order("subpoena"))
    )
    REGISTRY[Basis.SUBPOENA].check(
        facts(
            Basis.SUBPOENA,
            court,
            (obs("a"),),
            order=_order("subpoena", assurances=frozenset({"notice-to-individual"})),
        )
    )
    assert "is not a" in refusal(facts(Basis.RESEARCH, court, (obs("a"),), order=_order()))


def test_gags_and_agreements_in_time() -> None:
    assert not _order().gagged(NOW)
    assert _order(gag="until-lifted").gagged(NOW)
    assert not _order(gag="until-lifted", gag_lifted_at=NOW).gagged(NOW)
    assert _order(gag="until-date", gag_until="2026-12-01T00:00:00.000000Z").gagged(NOW)
    assert not _order(gag="until-date", gag_until="2026-11-01T00:00:00.000000Z").gagged(NOW)
    assert in_range("2024-05", "2024-05-01", None)
    assert not in_range(None, "2024-01-01", None)


@pytest.mark.parametrize(
    ("code", "display"),
    [("21566-5", ""), ("", "DNA analysis"), ("34043003", ""), ("", "Dental charting"),
     ("", "HLA typing panel"), ("44338008", "")],
)  # fmt: skip
def test_law_enforcement_never_gets_dna_dental_or_tissue_typing(code: str, display: str) -> None:
    item = Item("Observation/x", {"code": {"coding": [{"code": code, "display": display}]}})
    assert evidence.forbidden_evidence(item) is not None
    assert "164.512(f)(2)" in refusal(facts(Basis.LAW_ENFORCEMENT, org("govt"), (item,)))


def test_law_enforcement_allow_list() -> None:
    blood = obs("b", code="882-1")
    assert evidence.forbidden_evidence(blood) is None
    assert evidence.outside_allow_list(blood) is None
    assert evidence.outside_allow_list(obs("g")) is not None
    assert evidence.outside_allow_list(Item("DocumentReference/d", {})) is not None


def test_decedent_and_public_health() -> None:
    coroner = org("coroner")
    assert "deceased" in refusal(facts(Basis.DECEDENT, coroner))
    dead = {"resourceType": "Patient", "deceasedBoolean": True}
    REGISTRY[Basis.DECEDENT].check(facts(Basis.DECEDENT, coroner, patient=dead))
    assert "coroner" in refusal(facts(Basis.DECEDENT, org("prov"), patient=dead))
    REGISTRY[Basis.PUBLIC_HEALTH].check(facts(Basis.PUBLIC_HEALTH, org("govt"), (obs("a"),)))
    prelim = obs("p", status="preliminary")
    assert "final" in refusal(facts(Basis.PUBLIC_HEALTH, org("govt"), (prelim,)))


# -- segmentation and minimum necessary ------------------------------------------------


def test_segmented_records_need_what_their_labels_require() -> None:
    sud = Item("Observation/s", {}, frozenset({"ETH"}), frozenset({"part2-consent"}))
    psy = Item(
        "Observation/n", {}, frozenset({"PSYTHPN"}), frozenset({"psychotherapy-authorization"})
    )
    assert "Part 2" in str(release.unmet(facts(Basis.TREATMENT, org("prov")), sud))
    assert release.unmet(facts(Basis.INDIVIDUAL, org("prov")), sud) is None
    assert release.unmet(facts(Basis.INDIVIDUAL, org("prov")), psy) is not None
    by_label = signed(consent(securityLabel=[{"code": "ETH"}, {"code": "PSYTHPN"}]))
    f = facts(Basis.AUTHORIZATION, org("bus"), authorization=by_label)
    assert release.unmet(f, sud) is None
    assert release.unmet(f, psy) is not None  # psychotherapy notes: named one by one
    named = signed(consent(data=[{"reference": {"reference": "Observation/n"}}]))
    assert release.unmet(facts(Basis.AUTHORIZATION, org("bus"), authorization=named), psy) is None


def test_minimum_necessary_cut_and_exemptions() -> None:
    policy = load_profile("default")
    assert release.profile_for(Basis.TREATMENT, policy.minimum_profile(Basis.PAYMENT)) is None
    profile = release.profile_for(Basis.PAYMENT, policy.minimum_profile(Basis.PAYMENT))
    patient = Item("Patient/p1", {"resourceType": "Patient", "id": "p1", "birthDate": "1980",
                                  "telecom": [{"value": "555"}]})  # fmt: skip
    cut = release.cut(profile, patient)
    assert cut is not None
    assert b"telecom" not in cut
    assert b"birthDate" in cut
    assert release.cut(profile, obs("a")) is None  # unlisted: withheld
    assert release.cut(None, obs("a")) is not None


def test_refusals_are_403_and_incomplete_documents_422() -> None:
    assert Refused("x").status == 403
    assert Incomplete("x").status == 422
