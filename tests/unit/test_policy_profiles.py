"""Each shipped profile loads, and says through the engine's API what its seed promises.

These tests show that a rule is in force in the loaded policy; the behaviour tests that drive
CareVault under each rule are listed beside them in docs/promises.md.
"""

from __future__ import annotations

import pytest

from carevault.policy import Basis, PrivacyPolicy, load_profile, profile_names
from carevault.policy.bases import MINIMUM_NECESSARY_EXEMPT
from carevault.policy.schema import CategoryKind, Notice

SEEDS = {
    "healthsoft": "000_c46e8a35c142e82a.txt",
    "practice-fusion": "001_c7e97d0bc35b8b71.txt",
    "allmeds": "002_6e9dbe349c68ad1a.txt",
    "lifeimage": "003_4478fc4ed63fedcb.txt",
    "ihr-health": "004_260ecd1abd876499.txt",
}
PROFILES = ["default", *SEEDS]


def profile(name: str) -> PrivacyPolicy:
    return load_profile(name)


def test_the_six_profiles_are_shipped() -> None:
    assert set(PROFILES) <= set(profile_names())


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_loads(name: str) -> None:
    policy = profile(name)
    assert policy.document.categories
    assert policy.document.purposes
    assert policy.basis(Basis.AUTHORIZATION).allowed  # no profile refuses the individual's say
    assert policy.basis(Basis.INDIVIDUAL).allowed


@pytest.mark.parametrize(("name", "seed"), SEEDS.items())
def test_each_seed_profile_names_its_seed(name: str, seed: str) -> None:
    assert profile(name).document.seed == seed


@pytest.mark.parametrize("name", PROFILES)
def test_hipaa_rights_keep_hipaa_clocks(name: str) -> None:
    policy = profile(name)
    for right, (deadline, extension) in {
        "hipaa-access": (30, 30),
        "hipaa-amendment": (60, 30),
        "hipaa-accounting": (60, 30),
    }.items():
        found = policy.right(right)
        assert found is not None, right
        assert (found.law, found.deadline_days, found.extension_days) == (
            "hipaa",
            deadline,
            extension,
        )


@pytest.mark.parametrize("name", ["healthsoft", "practice-fusion", "allmeds", "ihr-health"])
def test_phi_requests_go_to_the_provider(name: str) -> None:
    policy = profile(name)
    assert policy.follows_provider_instructions
    for right in ("hipaa-access", "hipaa-amendment", "hipaa-accounting"):
        found = policy.right(right)
        assert found is not None
        assert found.handled_by == "tenant"


@pytest.mark.parametrize("name", ["healthsoft", "ihr-health"])
def test_ccpa_rights_and_limits(name: str) -> None:
    policy = profile(name)
    know = policy.right("ccpa-know")
    assert know is not None
    assert (know.deadline_days, know.extension_days, know.max_per_12_months) == (45, 45, 2)
    for right in ("ccpa-know", "ccpa-delete", "ccpa-correct"):
        found = policy.right(right)
        assert found is not None
        assert (found.law, found.deadline_days, found.extension_days) == ("ccpa", 45, 45)
        assert found.verify_identity
        assert found.authorized_agent


@pytest.mark.parametrize("name", ["healthsoft", "ihr-health"])
def test_ccpa_rights_never_cover_phi(name: str) -> None:
    policy = profile(name)
    for right_name, right in policy.document.rights.items():
        if right.law != "ccpa":
            continue
        assert right.categories, right_name
        for category in right.categories:
            found = policy.category(category)
            assert found is not None
            assert found.kind is not CategoryKind.PHI


@pytest.mark.parametrize("name", PROFILES)
def test_compelled_releases_notify_before(name: str) -> None:
    policy = profile(name)
    assert policy.basis(Basis.REQUIRED_BY_LAW).notice is Notice.BEFORE
    assert policy.notice("legally-compelled-disclosure") is Notice.BEFORE
    assert policy.in_accounting(Basis.REQUIRED_BY_LAW)


def test_deidentified_purposes() -> None:
    assert profile("healthsoft").allows_deidentified("research")
    assert profile("healthsoft").document.deidentified.tenant_authorization
    assert profile("lifeimage").allows_deidentified("health-trends")
    assert not profile("lifeimage").allows_deidentified("marketing")
    assert profile("allmeds").allows_deidentified("service-improvement")
    assert profile("ihr-health").allows_deidentified("product-development")
    assert all(profile(n).small_cell == 11 for n in PROFILES)


# lifeIMAGE


def test_lifeimage_third_parties_need_express_consent() -> None:
    policy = profile("lifeimage")
    assert policy.third_party_needs_express_consent
    assert policy.document.disclosure.third_parties.reauthenticate
    for name in ("family", "chosen-recipients"):
        recipient = policy.recipient(name)
        assert recipient is not None
        assert recipient.requires == ("express-consent",)
    vendors = policy.recipient("vendors")
    assert vendors is not None
    assert "baa" in vendors.requires
    linked = policy.recipient("linked-websites")
    assert linked is not None
    assert linked.shares == ()


def test_lifeimage_refuses_every_basis_it_does_not_set_forth() -> None:
    policy = profile("lifeimage")
    allowed = {b for b in Basis if policy.basis(b).allowed}
    assert allowed == {
        Basis.AUTHORIZATION,
        Basis.INDIVIDUAL,
        Basis.BUSINESS_ASSOCIATE,
        Basis.REQUIRED_BY_LAW,
        Basis.SUBPOENA,
        Basis.LAW_ENFORCEMENT,
        Basis.HEALTH_OVERSIGHT,
    }


def test_lifeimage_compelled_releases_are_cut() -> None:
    policy = profile("lifeimage")
    assert policy.minimum_profile(Basis.REQUIRED_BY_LAW) is None  # what the order names
    for basis in (Basis.SUBPOENA, Basis.LAW_ENFORCEMENT, Basis.HEALTH_OVERSIGHT):
        assert policy.minimum_profile(basis) is not None, basis
        assert policy.basis(basis).notice is Notice.BEFORE, basis
    assert policy.notice("compelled-disclosure-report") is Notice.AFTER
    assert policy.notice("breach") is Notice.AFTER


def test_lifeimage_uses_are_limited() -> None:
    policy = profile("lifeimage")
    assert set(policy.document.purposes) == {
        "authentication",
        "provide-service",
        "communications",
        "health-trends",
        "service-improvement",
    }
    assert all("usage" not in r.shares for r in policy.document.recipients.values())


def test_lifeimage_rights() -> None:
    policy = profile("lifeimage")
    access, amendment = policy.right("hipaa-access"), policy.right("hipaa-amendment")
    assert access is not None
    assert amendment is not None
    assert access.denial_in_writing
    assert amendment.denial_in_writing
    assert access.fee == "cost-based"
    inactivation = policy.right("account-inactivation")
    assert inactivation is not None
    assert inactivation.verify_identity


def test_lifeimage_changes_take_effect_after_seven_days() -> None:
    changes = profile("lifeimage").document.changes
    assert changes.effective_after_days == 7
    assert changes.notify == ("tenants",)


# AllMeds


def test_allmeds_every_third_party_basis_is_cut_to_minimum_necessary() -> None:
    policy = profile("allmeds")
    assert policy.third_party_minimum_necessary
    for basis in Basis:
        if basis in MINIMUM_NECESSARY_EXEMPT:
            assert policy.minimum_profile(basis) is None, basis
        else:
            assert policy.minimum_profile(basis) is not None, basis
    assert policy.basis(Basis.BUSINESS_ASSOCIATE).minimum_necessary is not None


def test_allmeds_service_providers_need_a_baa_and_an_agreement() -> None:
    policy = profile("allmeds")
    providers = policy.recipient("service-providers")
    assert providers is not None
    assert "phi" in providers.shares
    assert {"baa", "binding-agreement"} <= set(providers.requires)
    assert not policy.sells_personal_information
    for name, recipient in policy.document.recipients.items():
        if "phi" in recipient.shares and name != "practitioner":
            assert "baa" in recipient.requires, name


def test_allmeds_phi_is_used_only_to_provide_the_service() -> None:
    purposes = profile("allmeds").document.purposes
    assert {p for p, purpose in purposes.items() if "phi" in purpose.categories} == {
        "provide-service",
        "billing",
    }


def test_allmeds_retention_and_contract_end() -> None:
    policy = profile("allmeds")
    account, phi = policy.retention["account"], policy.retention["phi"]
    assert (account.after, account.keep_days) == ("account-closed", 365)
    assert phi.on_contract_end == "remove"
    assert phi.archive_on_contract_end
    shine = policy.right("ca-shine-the-light")
    assert shine is not None
    assert shine.max_per_12_months == 1
    assert policy.document.children.portal_guardian_consent_below == 18


# Practice Fusion


def test_practice_fusion_is_bound_like_its_providers() -> None:
    policy = profile("practice-fusion")
    assert policy.follows_provider_instructions
    assert all(policy.basis(b).allowed for b in Basis)  # what HIPAA gives its providers


def test_practice_fusion_account_administrators_see_account_information_only() -> None:
    admins = profile("practice-fusion").recipient("account-administrators")
    assert admins is not None
    assert admins.shares == ("account",)


def test_practice_fusion_integrations_and_sponsors_need_confidentiality() -> None:
    policy = profile("practice-fusion")
    for name in ("integrations", "sponsors", "service-providers", "payment-processors"):
        recipient = policy.recipient(name)
        assert recipient is not None, name
        assert "confidentiality-agreement" in recipient.requires, name
    providers = policy.recipient("service-providers")
    assert providers is not None
    assert "baa" in providers.requires
    reports = policy.recipient("report-recipients")
    assert reports is not None
    assert reports.shares == ("deidentified",)
    sponsors = policy.recipient("sponsors")
    assert sponsors is not None
    assert "phi" not in sponsors.shares


def test_practice_fusion_does_not_store_payment_cards() -> None:
    policy = profile("practice-fusion")
    cards = policy.category("payment-card")
    assert cards is not None
    assert not cards.stored
    assert "payment-card" not in policy.retention


# Healthsoft


def test_healthsoft_phi_follows_the_providers_instructions() -> None:
    policy = profile("healthsoft")
    assert policy.follows_provider_instructions
    assert policy.document.communications.global_privacy_control
    assert not policy.document.tracking.portal_third_party_trackers


def test_healthsoft_affiliates_never_receive_phi() -> None:
    affiliates = profile("healthsoft").recipient("affiliates")
    assert affiliates is not None
    assert "phi" not in affiliates.shares


def test_healthsoft_biometric_is_never_sold_and_used_only_to_authenticate() -> None:
    policy = profile("healthsoft")
    biometric = policy.category("biometric")
    assert biometric is not None
    assert biometric.never_sold
    assert biometric.sensitive
    users = {
        p for p, purpose in policy.document.purposes.items() if "biometric" in purpose.categories
    }
    assert users == {"authentication"}


def test_healthsoft_biometric_retention_ends_at_the_first_of_three() -> None:
    rule = profile("healthsoft").retention["biometric"]
    assert (rule.keep_days, rule.after) == (3 * 365, "last-interaction")
    assert set(rule.or_earlier) == {"purpose-satisfied", "legal-deadline"}
    assert rule.phi_kept_until_provider_asks


# ihr.health


def test_ihr_health_does_not_sell() -> None:
    policy = profile("ihr-health")
    assert not policy.sells_personal_information
    assert policy.notice("no-sale") is Notice.BEFORE


def test_ihr_health_keeps_a_suppression_list() -> None:
    policy = profile("ihr-health")
    assert policy.document.communications.marketing_opt_out
    assert policy.document.communications.suppression_list
    assert "marketing-suppression" in policy.document.never_shared
    assert policy.retention["marketing-suppression"].keep_days is None
    assert policy.retention["marketing-contacts"].keep_days == 15


def test_ihr_health_users_delete_their_own_data() -> None:
    right = profile("ihr-health").right("delete-own-data")
    assert right is not None
    assert right.self_service
    assert right.categories == ("phi",)


def test_ihr_health_shares_only_under_binding_agreements() -> None:
    policy = profile("ihr-health")
    for name in ("affiliates", "co-development-partners", "vendors"):
        recipient = policy.recipient(name)
        assert recipient is not None, name
        assert "binding-agreement" in recipient.requires, name
    analytics = policy.recipient("analytics")
    assert analytics is not None
    assert analytics.shares == ("usage",)


def test_ihr_health_request_data_only_verify() -> None:
    policy = profile("ihr-health")
    users = [
        p for p, purpose in policy.document.purposes.items() if "request-data" in purpose.categories
    ]
    assert users == ["verify-requests"]
    assert "request-data" in policy.document.never_shared
    assert all(
        r.needs_account is False for n, r in policy.document.rights.items() if n.startswith("ccpa")
    )
