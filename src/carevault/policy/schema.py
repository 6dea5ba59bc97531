"""The privacy policy file (`policies/*.yaml`): its schema, as pydantic models.

Every model forbids unknown keys, so a typo is an error that names its path rather than a
promise silently dropped. Cross-references (a category named by a recipient, a profile
named by a basis) and contradictions are checked by `checks.py` once the file parses.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from carevault.policy.bases import Basis

Identifier = str  # a kebab-case name: a category, purpose, recipient or profile id


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryKind(StrEnum):
    PHI = "phi"  # governed by HIPAA and the BAA: the tenant decides
    PERSONAL = "personal"  # the vendor's own personal information: the policy and state law
    DEIDENTIFIED = "deidentified"  # Safe Harbor output and aggregates


class Category(Strict):
    """A kind of data the deployment holds (PHI, account information, biometric data …)."""

    kind: CategoryKind
    description: str
    sensitive: bool = False
    """Sensitive personal information (CCPA): stronger verification for requests about it."""
    never_sold: bool = False
    """Never sold, leased or traded, whatever the policy says of other categories."""
    stored: bool = True
    """False: passed straight to a recipient (a payment processor), never stored by us; such a
    category can have no retention entry."""


class Purpose(Strict):
    """Why the deployment uses data, and which categories each purpose may use."""

    description: str
    categories: tuple[Identifier, ...]
    purpose_of_use: str | None = None
    """The HL7 PurposeOfUse code an actor claims for it (TREAT, HPAYMT …), if any."""
    consent: bool = False
    """Data are used for this purpose only with the person's consent."""


class Recipient(Strict):
    """A class of recipient the policy says data may go to."""

    description: str
    shares: tuple[Identifier, ...] = ()
    """The categories this class may receive."""
    requires: tuple[
        Literal["express-consent", "baa", "confidentiality-agreement", "binding-agreement"], ...
    ] = ()
    """What must be on file before anything is shared with a recipient of this class
    ("binding-agreement": a contract to use and protect the data as this policy says)."""


class Notice(StrEnum):
    NONE = "none"
    BEFORE = "before"  # the patient is told before the release (unless an order forbids it)
    AFTER = "after"


class BasisRule(Strict):
    """How the disclosure path treats one legal basis."""

    allowed: bool = True
    minimum_necessary: Identifier | None = None
    """A profile under `minimum_necessary`; None releases what the basis names, whole."""
    in_accounting: bool | None = None
    """Listed in the patient's accounting; None: as 164.528 says (bases.ACCOUNTING_EXCLUDED)."""
    notice: Notice = Notice.NONE
    requires_order: bool = False
    """Released only for an investigation on file: an order (legal.py, kind administrative)
    for this patient naming what is released. Honoured by health-oversight only (checks.py);
    required-by-law, subpoena and research need their order always."""


class ThirdPartyRelease(Strict):
    express_consent: bool = True
    """No release to a third party without an authorization naming the information and the
    recipient, beyond what the law requires or permits without one."""
    minimum_necessary: bool = False
    """Every release to a third party is cut to a minimum-necessary profile: each allowed basis
    the rule covers (all but bases.MINIMUM_NECESSARY_EXEMPT) must name one."""
    reauthenticate: bool = False
    """Signing an authorization needs re-authentication with a second factor at that moment."""


class Disclosure(Strict):
    bases: dict[Basis, BasisRule]
    """Bases not listed are refused."""
    third_parties: ThirdPartyRelease = ThirdPartyRelease()


class TypeCut(Strict):
    """One resource type in a minimum-necessary profile: the top-level elements kept."""

    keep: tuple[str, ...] = ()
    whole: bool = False


class MinimumProfile(Strict):
    description: str
    types: dict[str, TypeCut]
    """Types not listed are withheld."""


class Retention(Strict):
    """How long one category is kept, and what ends its life."""

    description: str | None = None
    """The rule in the words of the notice."""

    keep_days: int | None = Field(default=None, ge=0)
    """Days after `after`; None: until the tenant or the person asks (no schedule)."""
    after: Literal["created", "last-interaction", "account-closed", "purpose-satisfied"] = "created"
    phi_kept_until_provider_asks: bool = False
    """Data of this category that is also PHI waits for the provider's instruction."""
    or_earlier: tuple[Literal["purpose-satisfied", "legal-deadline"], ...] = ()
    """The data are scheduled for deletion at the first of these events or `keep_days`."""
    on_contract_end: Literal["remove", "keep"] | None = None
    """When the tenant's contract (and BAA) ends: its data are removed, or kept under the BAA."""
    archive_on_contract_end: bool = False
    """The tenant is offered an archived copy before its data are removed."""


class Right(Strict):
    """A right a person may exercise, with its clock."""

    law: Literal["hipaa", "ccpa", "state", "policy"]
    deadline_days: int = Field(ge=1)
    extension_days: int = Field(default=0, ge=0)
    max_per_12_months: int | None = Field(default=None, ge=1)
    description: str | None = None
    """What the right gives, in the words of the notice."""
    how: str | None = None
    """How to exercise it (where to write, which page), in the words of the notice."""
    handled_by: Literal["vendor", "tenant"] = "vendor"
    """With "tenant", a request about PHI goes to the covered entity, which decides."""
    categories: tuple[Identifier, ...] = ()
    """The categories the right covers (empty: every category its law covers)."""
    verify_identity: bool = False
    authorized_agent: bool = False
    """An agent with the person's written permission or power of attorney may ask."""
    self_service: bool = False
    """Exercised by the person in their account, without a request."""
    needs_account: bool | None = None
    """False: the notice promises that no account is needed to ask; None: it says nothing."""
    denial_in_writing: bool = False
    """A denial is explained in writing."""
    fee: Literal["none", "cost-based"] | None = None
    """None: the notice says nothing of a fee."""


class DeidentifiedRelease(Strict):
    purposes: tuple[Identifier, ...] = ()
    """Purposes for which de-identified aggregates or extracts may leave the tenant."""
    small_cell: int = Field(default=11, ge=1)
    """Cells with fewer than this many people are suppressed."""
    tenant_authorization: bool = False
    """A tenant's PHI is de-identified or aggregated only as that tenant authorized."""


class Communications(Strict):
    marketing_opt_out: bool = True
    suppression_list: bool = True
    """Opted-out addresses are kept only to make sure no marketing is sent again."""
    global_privacy_control: bool = False
    """A browser's Sec-GPC signal is an opt-out of sale and sharing."""


class PhiRules(Strict):
    provider_instructions: bool = False
    """PHI is used and disclosed only as the tenant (the covered entity) instructs and
    restricts, under its BAA: a tenant's restriction binds the gate and the disclosure path."""


class Tracking(Strict):
    portal_third_party_trackers: bool = False
    """Third-party cookies, pixels or scripts on the portals (none unless this says so)."""
    do_not_track: bool = False
    """A browser's DNT signal changes what is collected."""


class Children(Strict):
    no_collection_below: int | None = Field(default=None, ge=1)
    """Personal information is not knowingly collected from people under this age."""
    portal_guardian_consent_below: int | None = Field(default=None, ge=1)
    """A portal account for someone under this age needs a parent's or guardian's permission."""


class Changes(Strict):
    """How a change to this policy reaches the people it concerns."""

    effective_after_days: int = Field(default=0, ge=0)
    """A new version takes effect this many days after it is posted."""
    notify: tuple[Literal["tenants", "account-holders"], ...] = ()
    applies_to_new_data_only: bool = False
    """A material change applies only to data collected after it takes effect."""


class Policy(Strict):
    """One deployment's privacy policy."""

    policy: Literal[1]
    """The schema version."""
    name: str
    seed: str | None = None
    """The seed privacy policy (file name in the shared seeds) this profile expresses."""
    summary: str
    effective: date | None = None
    updated: date | None = None
    """The last-updated (last-modified) date the notice shows."""
    contact: str | None = None
    """Who to write to about this policy (the privacy officer), as the notice prints it."""
    sells_personal_information: bool = False
    categories: dict[Identifier, Category]
    purposes: dict[Identifier, Purpose]
    recipients: dict[Identifier, Recipient] = {}
    never_shared: tuple[Identifier, ...] = ()
    """Categories that no recipient class may receive."""
    disclosure: Disclosure
    minimum_necessary: dict[Identifier, MinimumProfile] = {}
    retention: dict[Identifier, Retention] = {}
    """Per category."""
    rights: dict[Identifier, Right] = {}
    notices: dict[Identifier, Notice] = {}
    """Events the policy promises to tell the person about, and when."""
    deidentified: DeidentifiedRelease = DeidentifiedRelease()
    communications: Communications = Communications()
    phi: PhiRules = PhiRules()
    tracking: Tracking = Tracking()
    children: Children = Children()
    changes: Changes = Changes()
