"""The engine's view of a policy: the questions other packages ask of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from carevault.policy.bases import ACCOUNTING_EXCLUDED, Basis
from carevault.policy.schema import (
    BasisRule,
    Category,
    CategoryKind,
    MinimumProfile,
    Notice,
    Policy,
    Recipient,
    Retention,
    Right,
)

REFUSED = BasisRule(allowed=False)


@dataclass(frozen=True)
class PrivacyPolicy:
    document: Policy

    @property
    def name(self) -> str:
        return self.document.name

    def basis(self, basis: Basis) -> BasisRule:
        """The rule for a basis; a basis the policy does not list is refused."""
        return self.document.disclosure.bases.get(basis, REFUSED)

    def in_accounting(self, basis: Basis) -> bool:
        """Whether a disclosure on this basis appears in the patient's accounting."""
        listed = self.basis(basis).in_accounting
        return basis not in ACCOUNTING_EXCLUDED if listed is None else listed

    def minimum_profile(self, basis: Basis) -> MinimumProfile | None:
        """The cut a disclosure on this basis gets; None: what the basis names, whole."""
        name = self.basis(basis).minimum_necessary
        return None if name is None else self.document.minimum_necessary[name]

    @property
    def phi_purposes_of_use(self) -> frozenset[str]:
        """The PurposeOfUse codes of the purposes that use PHI: the only ones under which the
        workforce may reach a patient's record (the gate enforces it)."""
        phi = {n for n, c in self.document.categories.items() if c.kind is CategoryKind.PHI}
        return frozenset(
            p.purpose_of_use
            for p in self.document.purposes.values()
            if p.purpose_of_use is not None and phi & set(p.categories)
        )

    def notice(self, event: str) -> Notice:
        return self.document.notices.get(event, Notice.NONE)

    @property
    def third_party_needs_express_consent(self) -> bool:
        return self.document.disclosure.third_parties.express_consent

    def allows_deidentified(self, purpose: str) -> bool:
        return purpose in self.document.deidentified.purposes

    @property
    def small_cell(self) -> int:
        return self.document.deidentified.small_cell

    def right(self, name: str) -> Right | None:
        return self.document.rights.get(name)

    @property
    def retention(self) -> Mapping[str, Retention]:
        return self.document.retention

    def category(self, name: str) -> Category | None:
        return self.document.categories.get(name)

    def recipient(self, name: str) -> Recipient | None:
        """A recipient class: what it may receive (`shares`) and what must be on file."""
        return self.document.recipients.get(name)

    @property
    def sells_personal_information(self) -> bool:
        return self.document.sells_personal_information

    @property
    def follows_provider_instructions(self) -> bool:
        """PHI is used only as the tenant instructs and restricts (its BAA)."""
        return self.document.phi.provider_instructions

    @property
    def third_party_minimum_necessary(self) -> bool:
        """Every release to a third party is cut to a profile (checked when the file loads)."""
        return self.document.disclosure.third_parties.minimum_necessary
