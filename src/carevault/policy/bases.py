"""The legal bases of a disclosure (45 CFR 164.502, 164.506, 164.508, 164.510, 164.512)."""

from __future__ import annotations

from enum import StrEnum


class Basis(StrEnum):
    """Why PHI may leave a tenant. Each basis is checked by the disclosure path."""

    AUTHORIZATION = "authorization"  # 164.508: the individual's signed authorization
    INDIVIDUAL = "individual"  # 164.502(a)(1)(i): to the individual or their representative
    TREATMENT = "treatment"  # 164.506(c): to another provider for treatment
    PAYMENT = "payment"  # 164.506(c)
    OPERATIONS = "operations"  # 164.506(c): health-care operations
    BUSINESS_ASSOCIATE = "business-associate"  # 164.502(e): only under a BAA on file
    REQUIRED_BY_LAW = "required-by-law"  # 164.512(a), (e)(1)(i): court order, warrant
    SUBPOENA = "subpoena"  # 164.512(e)(1)(ii): no court order, satisfactory assurances
    LAW_ENFORCEMENT = "law-enforcement"  # 164.512(f)(2): identify and locate, allow-list only
    HEALTH_OVERSIGHT = "health-oversight"  # 164.512(d), and HHS investigations 164.502(a)(2)
    PUBLIC_HEALTH = "public-health"  # 164.512(b): notifiable results
    ABUSE_NEGLECT = "abuse-neglect"  # 164.512(c)
    SERIOUS_THREAT = "serious-threat"  # 164.512(j)
    DECEDENT = "decedent"  # 164.512(g): coroners, medical examiners, funeral directors
    RESEARCH = "research"  # 164.512(i): IRB or privacy-board waiver


# 164.528(a)(1): disclosures the patient's accounting leaves out (unless a policy promises more).
ACCOUNTING_EXCLUDED: frozenset[Basis] = frozenset(
    {Basis.TREATMENT, Basis.PAYMENT, Basis.OPERATIONS, Basis.INDIVIDUAL, Basis.AUTHORIZATION}
)

# 164.502(b)(2): minimum necessary does not apply to these.
MINIMUM_NECESSARY_EXEMPT: frozenset[Basis] = frozenset(
    {Basis.TREATMENT, Basis.INDIVIDUAL, Basis.AUTHORIZATION}
)

# Compelled by a legal process: the patient is told in advance unless the order forbids it.
LEGALLY_COMPELLED: frozenset[Basis] = frozenset({Basis.REQUIRED_BY_LAW, Basis.SUBPOENA})
