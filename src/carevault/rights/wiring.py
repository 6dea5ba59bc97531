"""Building the rights service for a runtime, with the other packages' services it uses.

The runtime is the composition root; until it builds `runtime.rights` itself, the faces call
`rights_for(runtime)`, which builds one per runtime and keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from carevault.audit.models import RequestInfo
from carevault.identity.models import Actor, system_actor
from carevault.identity.permissions import Purpose
from carevault.messaging.preferences import Preferences
from carevault.policy import PrivacyPolicy, load_profile
from carevault.privacy.disclosure.accounting import Accounting
from carevault.privacy.disclosure.accounting_forms import to_json
from carevault.privacy.disclosure.checkers import DESIGNEE_PURPOSE
from carevault.privacy.disclosure.gather import DisclosureRequest
from carevault.rights.statements import RightsService
from carevault.rights.workflow import Deletion, Hooks, OptOut

if TYPE_CHECKING:
    from carevault.runtime import Runtime

_BUILT: WeakKeyDictionary[Any, RightsService] = WeakKeyDictionary()


def policy_of(runtime: Runtime) -> PrivacyPolicy:
    """The deployment's policy (`runtime.policy`), or the default profile."""
    policy = getattr(runtime, "policy", None)
    return policy if isinstance(policy, PrivacyPolicy) else load_profile()


def rights_for(runtime: Runtime) -> RightsService:
    built = getattr(runtime, "rights", None)
    if isinstance(built, RightsService):
        return built
    if runtime not in _BUILT:
        service = RightsService(runtime.gate_services, runtime.gate, lambda: policy_of(runtime))
        service.hooks = hooks_for(runtime)
        _BUILT[runtime] = service
    return _BUILT[runtime]


def hooks_for(runtime: Runtime) -> Hooks:
    desk = getattr(runtime, "disclosures", None)
    designee = None
    if desk is not None:

        def designee(
            tenant_id: str,
            patient_id: str,
            recipient: str,
            refs: tuple[str, ...],
            request_id: str,
            who: RequestInfo,
        ) -> str:
            actor = system_actor(tenant_id, f"rights: copy to designee, request {request_id}")
            req = DisclosureRequest(
                patient_id=patient_id,
                recipient=recipient,
                basis="individual",
                purpose=DESIGNEE_PURPOSE,
                refs=refs,
            )
            return str(desk.service.disclose(actor, who, req).disclosure_id)

    accounting = Accounting(runtime.gate_services, lambda: policy_of(runtime))

    def report(actor: Actor, patient_id: str, who: RequestInfo) -> dict[str, Any]:
        return to_json(accounting.report(actor, patient_id, who, "json"))

    return Hooks(
        designee=designee,
        accounting=report,
        deletion=_deletion(runtime),
        opt_out=_opt_out(runtime),
    )


def _opt_out(runtime: Runtime) -> OptOut:
    """An opt-out stops the marketing use of the account's contact details: the account's
    preference is set and its address joins the suppression list, as an unsubscribe does."""
    preferences = Preferences(
        runtime.reader, runtime.committer, runtime.vault, runtime.clock, runtime.audit
    )

    def opt_out(tenant_id: str, user_id: str, request_id: str, who: RequestInfo) -> dict[str, Any]:
        holder = Actor(tenant_id, user_id, None, Purpose.HOPERAT, frozenset())
        view = preferences.update(holder, marketing=False, service=None)
        return {"marketing": "on" if view.marketing else "stopped"}

    return opt_out


def _deletion(runtime: Runtime) -> Deletion | None:
    """A policy's own closure right (AllMeds' account-closure, lifeIMAGE's inactivation): the
    account is inactivated at once and its data kept only for the policy's `account` period,
    after which the retention job erases it. (A CCPA deletion erases at once: erasure.py.)"""
    try:
        from carevault.retention.service import Retention
    except ImportError:  # retention/ not in this build: deletion cases stay open, saying why
        return None
    retention = Retention.from_runtime(runtime)

    def delete(
        actor: Actor, tenant_id: str, user_id: str, request_id: str, who: RequestInfo
    ) -> dict[str, Any]:
        system = system_actor(tenant_id, f"rights: account closure, request {request_id}")
        kept = retention.inactivate_account(system, user_id)
        return {"account": "inactivated", "erased_after": kept}

    return delete
