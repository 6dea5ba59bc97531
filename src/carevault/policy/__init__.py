"""The privacy policy as code: a deployment's policy file, checked, and the engine's view of it.

Nothing about these rules is hard-coded elsewhere: the disclosure path, de-identified
releases, rights and retention ask the loaded `PrivacyPolicy`.
"""

from carevault.policy.bases import Basis
from carevault.policy.loader import (
    PolicyError,
    load_policy,
    load_profile,
    parse_policy,
    policies_dir,
    profile_names,
)
from carevault.policy.model import PrivacyPolicy

__all__ = [
    "Basis",
    "PolicyError",
    "PrivacyPolicy",
    "load_policy",
    "load_profile",
    "parse_policy",
    "policies_dir",
    "profile_names",
]
