"""Cross-reference and contradiction checks of a parsed policy.

Each problem names the path of the offending entry, so the person editing the file can act.
"""

from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class

from carevault.fhir_types import SERVED_TYPES
from carevault.identity.permissions import Purpose as PurposeOfUse
from carevault.policy.bases import MINIMUM_NECESSARY_EXEMPT, Basis
from carevault.policy.schema import CategoryKind, Policy, TypeCut


def problems(policy: Policy) -> list[str]:
    found: list[str] = []
    categories = set(policy.categories)

    def known(path: str, names: tuple[str, ...]) -> None:
        found.extend(
            f"{path}: unknown category {name!r} (known: {', '.join(sorted(categories))})"
            for name in names
            if name not in categories
        )

    codes = {p.value for p in PurposeOfUse}
    for pid, purpose in policy.purposes.items():
        known(f"purposes.{pid}.categories", purpose.categories)
        if purpose.purpose_of_use is not None and purpose.purpose_of_use not in codes:
            found.append(
                f"purposes.{pid}.purpose_of_use: unknown code {purpose.purpose_of_use!r} "
                f"(known: {', '.join(sorted(codes))})"
            )
    for rid, recipient in policy.recipients.items():
        known(f"recipients.{rid}.shares", recipient.shares)
    known("never_shared", policy.never_shared)
    known("retention", tuple(policy.retention))
    for rid, recipient in policy.recipients.items():
        found.extend(
            f"recipients.{rid}.shares: {name!r} is also in never_shared; a category cannot be "
            "both never shared and shared with this recipient"
            for name in recipient.shares
            if name in policy.never_shared
        )
    for basis, rule in policy.disclosure.bases.items():
        path = f"disclosure.bases.{basis.value}"
        if rule.minimum_necessary is None:
            continue
        if rule.minimum_necessary not in policy.minimum_necessary:
            found.append(f"{path}.minimum_necessary: no profile {rule.minimum_necessary!r}")
        if basis in MINIMUM_NECESSARY_EXEMPT:
            found.append(
                f"{path}.minimum_necessary: the minimum-necessary rule does not apply to "
                f"{basis.value} (164.502(b)(2)); remove the profile"
            )
    for name, profile in policy.minimum_necessary.items():
        for rtype, cut in profile.types.items():
            found.extend(_cut_problems(f"minimum_necessary.{name}.types.{rtype}", rtype, cut))
    if policy.sells_personal_information and "no-sale" in policy.notices:
        found.append("notices.no-sale: the policy says it sells personal information")
    purposes = set(policy.purposes)
    found.extend(
        f"deidentified.purposes: unknown purpose {name!r}"
        for name in policy.deidentified.purposes
        if name not in purposes
    )
    for rname, right in policy.rights.items():
        known(f"rights.{rname}.categories", right.categories)
    found.extend(_stored_problems(policy))
    found.extend(_third_party_problems(policy))
    found.extend(_order_problems(policy))
    found.extend(_right_problems(policy))
    return found


# The bases whose checker reads `requires_order` (the others always, or never, need an order):
# a flag the disclosure path would ignore would be a promise silently dropped.
ORDER_OPTIONAL: frozenset[Basis] = frozenset({Basis.HEALTH_OVERSIGHT})


def _order_problems(policy: Policy) -> list[str]:
    return [
        f"disclosure.bases.{basis.value}.requires_order: only "
        f"{', '.join(sorted(b.value for b in ORDER_OPTIONAL))} can be made to require an order"
        for basis, rule in policy.disclosure.bases.items()
        if rule.requires_order and basis not in ORDER_OPTIONAL
    ]


# The longest a law lets a request wait: (deadline, extension) in days.
LEGAL_MAXIMUM: dict[str, tuple[int, int]] = {
    "hipaa-access": (30, 30),  # 164.524(b)(2)
    "hipaa-amendment": (60, 30),  # 164.526(b)(2)
    "hipaa-accounting": (60, 30),  # 164.528(c)(1)
    "ccpa-know": (45, 45),  # Cal. Civ. Code 1798.130(a)(2)
    "ccpa-portability": (45, 45),
    "ccpa-delete": (45, 45),
    "ccpa-correct": (45, 45),
}


def _stored_problems(policy: Policy) -> list[str]:
    return [
        f"retention.{name}: {name!r} is not stored (categories.{name}.stored: false); "
        "remove its retention entry"
        for name in policy.retention
        if name in policy.categories and not policy.categories[name].stored
    ]


def _third_party_problems(policy: Policy) -> list[str]:
    if not policy.disclosure.third_parties.minimum_necessary:
        return []
    return [
        f"disclosure.bases.{basis.value}.minimum_necessary: "
        "disclosure.third_parties.minimum_necessary is true, so this basis must name a profile"
        for basis, rule in policy.disclosure.bases.items()
        if rule.allowed and rule.minimum_necessary is None
        and basis not in MINIMUM_NECESSARY_EXEMPT
    ]  # fmt: skip


def _right_problems(policy: Policy) -> list[str]:
    found: list[str] = []
    for name, right in policy.rights.items():
        path = f"rights.{name}"
        if name in LEGAL_MAXIMUM:
            deadline, extension = LEGAL_MAXIMUM[name]
            if right.deadline_days > deadline:
                found.append(f"{path}.deadline_days: the law allows at most {deadline} days")
            if right.extension_days > extension:
                found.append(f"{path}.extension_days: the law allows at most {extension} days")
        if right.law == "ccpa":
            found.extend(
                f"{path}.categories: {cat!r} is PHI; CCPA rights cover personal information, "
                "and PHI requests go to the provider"
                for cat in right.categories
                if cat in policy.categories and policy.categories[cat].kind is CategoryKind.PHI
            )
        limit = right.max_per_12_months
        if name == "ccpa-know" and limit is not None and limit < 2:
            found.append(f"{path}.max_per_12_months: the CCPA allows at least 2 requests")
    return found


def _cut_problems(path: str, rtype: str, cut: TypeCut) -> list[str]:
    if rtype not in SERVED_TYPES:
        return [f"{path}: {rtype!r} is not a served FHIR type"]
    if cut.whole and cut.keep:
        return [f"{path}: 'whole' and 'keep' contradict each other; choose one"]
    fields = get_fhir_model_class(rtype).model_fields
    elements = {info.alias or name for name, info in fields.items()} | set(fields)
    return [f"{path}.keep: {rtype} has no element {e!r}" for e in cut.keep if e not in elements]
