"""What of the facts leaves: segmentation first, then the policy's minimum necessary.

Pure functions. A sensitive resource leaves only when its release requirements (from
segmentation.release_requirements) are met by the basis: a Part 2 record needs an
authorization naming it (or its label), psychotherapy notes an authorization naming the note
itself, and nothing sensitive leaves on another basis — the patient's own copy excepted,
which carries everything but psychotherapy notes (164.524(a)(1)(i)).
"""

from __future__ import annotations

import orjson

from carevault.policy import Basis
from carevault.policy.bases import MINIMUM_NECESSARY_EXEMPT
from carevault.policy.schema import MinimumProfile
from carevault.privacy.disclosure.facts import Facts, Item
from carevault.privacy.minimum_necessary import FieldProfile
from carevault.privacy.segmentation import REQUIREMENTS

PSYCHOTHERAPY = "psychotherapy-authorization"
MINOR_OWN = "minor-own-authorization"


def _met(need: str, facts: Facts, item: Item) -> bool:
    """Whether one release requirement (segmentation.REQUIREMENTS) is held for this item."""
    signed = facts.authorization if facts.basis is Basis.AUTHORIZATION else None
    if facts.basis is Basis.INDIVIDUAL:
        # the patient's own copy: everything but psychotherapy notes (164.524(a)(1)(i))
        return need != PSYCHOTHERAPY and not (
            need == MINOR_OWN and facts.recipient.ref != f"Patient/{facts.patient_id}"
        )
    named_by_order = facts.order is not None and item.ref in facts.order.refs
    if signed is None:
        return need == "named-in-authorization" and named_by_order
    named = item.ref in signed.terms.data_refs
    labelled = bool(signed.terms.labels & item.labels)
    held: dict[str, bool] = {
        "part2-consent": named or labelled,
        PSYCHOTHERAPY: named,
        "category-named": named or labelled,
        "named-in-authorization": named,
        MINOR_OWN: signed.authority == "self",
    }
    return held.get(need, False)


def unmet(facts: Facts, item: Item) -> str | None:
    """Why this sensitive resource may not leave on this basis, or None."""
    left = sorted(n for n in item.requirements if not _met(n, facts, item))
    if not left:
        return None
    wanted = "; ".join(REQUIREMENTS.get(n, n) for n in left)
    return f"{item.ref} is segmented sensitive information: it needs {wanted}"


def profile_for(basis: Basis, profile: MinimumProfile | None) -> MinimumProfile | None:
    """164.502(b)(2): no minimum-necessary cut for treatment, the individual, authorizations."""
    return None if basis in MINIMUM_NECESSARY_EXEMPT else profile


def cut(profile: MinimumProfile | None, item: Item) -> bytes | None:
    """The resource cut to the profile; None when the profile withholds its type."""
    body = orjson.dumps(item.body)
    if profile is None:
        return body
    rule = profile.types.get(item.rtype)
    if rule is None:
        return None
    if rule.whole:
        return body
    return FieldProfile(keep={item.rtype: frozenset(rule.keep)}).apply(item.rtype, body)
