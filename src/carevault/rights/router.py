"""Which rulebook: decided from the data a request is about, and said to the requester.

PHI belongs to the tenant: a patient's request about it follows HIPAA, goes to the tenant's
queue, and the tenant decides (CareVault runs the workflow and keeps its deadlines). The
vendor's own personal information (account holders, billing and marketing contacts, site
visitors) follows the privacy policy and the CCPA, and the vendor decides. The categories
and their kinds come from the policy file, never from a list here.
"""

from __future__ import annotations

from collections.abc import Sequence

from carevault.errors import Invalid, Unprocessable
from carevault.policy import PrivacyPolicy
from carevault.policy.schema import CategoryKind
from carevault.rights.models import Action, Route, Rulebook

VENDOR = "CareVault (the vendor)"
POLICY_COPIES = ("personal-access", "account-access")
"""Policy rights answered with a file of the personal information held (as ccpa-access)."""
POLICY_CLOSURES = ("account-inactivation", "account-closure")
"""Policy rights answered by inactivating the account (as ccpa-delete's fulfilment does)."""
OPT_OUTS = ("ccpa-opt-out", "opt-out-of-sharing")
"""Opting out of the sale or sharing of personal information (CCPA, or the policy's own)."""

_HIPAA_RIGHTS = {
    Action.ACCESS: "hipaa-access",
    Action.AMEND: "hipaa-amendment",
    Action.CORRECT: "hipaa-amendment",
    Action.ACCOUNTING: "hipaa-accounting",
}
# A copy: the profile's portability right if it names one, else the right to know
# (which includes the specific pieces, Cal. Civ. Code 1798.110(a)(5)); a profile without
# CCPA rights may promise the same under its own terms (`law: policy`): a file of what is
# held (AllMeds' personal-access, Practice Fusion's account-access), or closing or
# inactivating the account (AllMeds' account-closure, lifeIMAGE's account-inactivation).
_CCPA_RIGHTS: dict[Action, tuple[str, ...]] = {
    Action.ACCESS: ("ccpa-access", "ccpa-portability", "ccpa-know", *POLICY_COPIES),
    Action.KNOW: ("ccpa-know",),
    Action.DELETE: ("ccpa-delete", *POLICY_CLOSURES),
    Action.CORRECT: ("ccpa-correct",),
    Action.AMEND: ("ccpa-correct",),
    Action.OPT_OUT: OPT_OUTS,
    Action.SHINE_THE_LIGHT: ("ca-shine-the-light",),
}


def route(
    policy: PrivacyPolicy, action: Action, categories: Sequence[str], tenant_name: str | None
) -> Route:
    """The rulebook, the right and who decides; refuses what no rulebook here offers."""
    if not categories:
        raise Invalid("say which data the request is about (categories), e.g. phi or account")
    known = policy.document.categories
    unknown = [c for c in categories if c not in known]
    if unknown:
        raise Invalid(f"unknown data categories; this policy knows: {', '.join(sorted(known))}")
    kinds = {known[c].kind for c in categories}
    if CategoryKind.DEIDENTIFIED in kinds:
        raise Unprocessable(
            "de-identified data is about no one: there is nothing to access, correct or delete"
        )
    if kinds == {CategoryKind.PHI, CategoryKind.PERSONAL}:
        raise Unprocessable(
            "health information (HIPAA, decided by your provider) and the vendor's own "
            "personal information (privacy policy and CCPA, decided by the vendor) follow "
            "different rulebooks: file one request for each"
        )
    if CategoryKind.PHI in kinds:
        return _hipaa(policy, action, categories, tenant_name)
    return _ccpa(policy, action, categories)


def _hipaa(
    policy: PrivacyPolicy, action: Action, categories: Sequence[str], tenant_name: str | None
) -> Route:
    right = _HIPAA_RIGHTS.get(action)
    provider = tenant_name or "your health-care provider"
    if right is None:
        raise Unprocessable(
            f"HIPAA gives no right to '{action.value}' health information; {provider} keeps "
            "the record it is required to keep: you may ask for a copy, an amendment or an "
            "accounting of disclosures"
        )
    _offered(policy, right, categories)
    return Route(
        Rulebook.HIPAA,
        right,
        provider,
        VENDOR,
        f"Your request is about health information that {provider} holds. It follows HIPAA: "
        f"{provider} decides, and {VENDOR} runs the request for them and keeps its deadlines.",
    )


def _ccpa(policy: PrivacyPolicy, action: Action, categories: Sequence[str]) -> Route:
    names = _CCPA_RIGHTS.get(action)
    if names is None:
        raise Unprocessable(
            f"'{action.value}' applies to health information only; for your account data you "
            "may ask to know, to get a copy, to correct or to delete it"
        )
    right = next((n for n in names if policy.right(n) is not None), names[0])
    _offered(policy, right, categories)
    found = policy.right(right)
    law = (
        " and the California Consumer Privacy Act"
        if found is not None and found.law == "ccpa"
        else ""
    )
    return Route(
        Rulebook.CCPA,
        right,
        VENDOR,
        VENDOR,
        f"Your request is about personal information {VENDOR} holds for itself (your "
        f"account, billing, marketing or site data). It follows the privacy policy "
        f"'{policy.name}'{law}: {VENDOR} decides.",
    )


def _offered(policy: PrivacyPolicy, right: str, categories: Sequence[str]) -> None:
    found = policy.right(right)
    if found is None:
        raise Unprocessable(f"the privacy policy '{policy.name}' offers no right '{right}'")
    outside = [c for c in categories if found.categories and c not in found.categories]
    if outside:
        raise Unprocessable(
            f"the right '{right}' covers these categories only: {', '.join(found.categories)}"
        )
