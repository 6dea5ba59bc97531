"""The strategies, one per file, registered by name (the profiles name them)."""

from carevault.deid.fhir.strategies import (  # noqa: F401  (each module registers itself)
    birth_date,
    cap_age,
    keep,
    pseudonymize,
    remove,
    scrub_attachment,
    scrub_narrative,
    scrub_text,
    shift,
    year,
    zip3,
)
from carevault.deid.fhir.strategies.base import REGISTRY, REMOVED, Context, Strategy, register

__all__ = ["REGISTRY", "REMOVED", "Context", "Strategy", "register"]
