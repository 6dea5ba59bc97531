"""What must be on file before a recipient class receives anything (policy `recipients.*.requires`).

Pure functions of the policy and the facts, called by the service after recipient_rules (which
decides whether the class receives PHI at all). For a directory entry filed under a recipient
class (recipient_rules.RECIPIENT_CLASS):

- `baa`, `confidentiality-agreement`, `binding-agreement`: an agreement with this very
  recipient, in force today, in the register of /admin/business-associate-agreements. For PHI
  the agreement on file is a business associate agreement, which binds the recipient to keep the
  information confidential and to use it only for the services it performs (164.504(e)(2)).
- `express-consent`: the release rests on the patient's own signed authorization (or goes to
  the patient).

Releases the law compels (a court order, warrant or subpoena on file) are not held back by a
class's contract terms: a court signs no agreement.
"""

from __future__ import annotations

from carevault.policy import Basis, PrivacyPolicy
from carevault.policy.bases import LEGALLY_COMPELLED
from carevault.privacy.disclosure.facts import Facts, Refused
from carevault.privacy.disclosure.recipient_rules import recipient_classes

AGREEMENTS = {
    "baa": "a business associate agreement",
    "confidentiality-agreement": "a confidentiality agreement",
    "binding-agreement": "an agreement binding it to this policy",
}
CONSENTED = frozenset({Basis.AUTHORIZATION, Basis.INDIVIDUAL})


def check_requirements(policy: PrivacyPolicy, facts: Facts) -> None:
    """Refuse a release to a recipient class whose required documents are not on file."""
    if facts.basis in LEGALLY_COMPELLED:
        return
    for name in sorted(recipient_classes(facts.recipient)):
        rule = policy.recipient(name)
        if rule is None:  # recipient_rules refuses an unknown class first
            continue
        for need in rule.requires:
            why = _unmet(need, name, facts)
            if why is not None:
                raise Refused(f"this deployment's privacy policy ({policy.name}) requires {why}")


def _unmet(need: str, name: str, facts: Facts) -> str | None:
    if need == "express-consent":
        if facts.basis in CONSENTED:
            return None
        return (f"the patient's express consent before anything goes to {name}: release it on "
                "the basis authorization, naming the patient's signed authorization")  # fmt: skip
    what = AGREEMENTS[need]
    mine = [b for b in facts.baas if b.recipient_ref == facts.recipient.ref]
    if any(b.in_force(facts.today) for b in mine):
        return None
    state = "none is on file" if not mine else "none on file is in force today"
    return (f"{what} with {name} before anything is shared with them, and {state}: file it "
            "at /admin/business-associate-agreements first")  # fmt: skip
