"""What the privacy policy's recipient classes say of this recipient (policy `recipients`).

Pure functions of the policy and the facts, called by the service after the basis's checker.
A directory entry the practice files under one of the policy's recipient classes (`meta.tag`
RECIPIENT_CLASS, the class's name as the code) receives nothing of the patient's record unless
that class `shares` the `phi` category (lifeIMAGE's linked websites, ihr.health's analytics
providers), whatever the basis, an authorization included; a class the policy does not name
is refused too. Untagged entries are left to the basis's checker.
"""

from __future__ import annotations

from carevault.policy import PrivacyPolicy
from carevault.privacy.disclosure.facts import Facts, Recipient, Refused

RECIPIENT_CLASS = "https://carevault.dev/fhir/CodeSystem/recipient-class"
"""The meta.tag system naming the policy recipient class a directory entry belongs to."""
PHI = "phi"


def recipient_classes(recipient: Recipient) -> frozenset[str]:
    """The recipient classes the directory entry is filed under."""
    tags = recipient.body.get("meta", {}).get("tag", [])
    return frozenset(
        str(t["code"])
        for t in tags
        if isinstance(t, dict)
        and t.get("system") == RECIPIENT_CLASS
        and isinstance(t.get("code"), str)
    )


def check_recipient(policy: PrivacyPolicy, facts: Facts) -> None:
    """Refuse a release to a recipient whose class the policy gives no PHI."""
    for name in sorted(recipient_classes(facts.recipient)):
        rule = policy.recipient(name)
        if rule is None:
            raise Refused(f"the recipient is filed under the recipient class {name}, which this "
                          f"deployment's privacy policy ({policy.name}) does not name")  # fmt: skip
        if PHI not in rule.shares:
            raise Refused(f"this deployment's privacy policy ({policy.name}) releases nothing of "
                          f"the patient's record to {name}: {rule.description}")  # fmt: skip
