"""The snooping rules, as pure functions: which audit entries count, how names and addresses
are compared, and when a day's volume is "far more than usual"."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from carevault.audit.models import Action, Outcome
from carevault.identity.permissions import Role
from carevault.records.normalize import fold

WORKFORCE_ROLES = frozenset(
    {Role.PRACTITIONER, Role.STAFF, Role.PRACTICE_ADMIN, Role.PRIVACY_OFFICER, Role.VENDOR_OPERATOR}
)
"""Roles whose reads are watched; patients and representatives reading their own never are."""

OPENING_ACTIONS = frozenset(
    {Action.READ, Action.VREAD, Action.SEARCH, Action.HISTORY, Action.EVERYTHING, Action.EXPORT}
)
"""Actions that put a patient's data in front of the reader."""

FAMILY = "family"
ADDRESS = "address"


@dataclass(frozen=True)
class VolumeRule:
    """A day is "far above usual" when the distinct patients a user opened that day exceed
    max(multiplier * the median of their active days in the previous `window_days`, floor).

    Days without any read are left out of the median, so part-time work does not lower it;
    with no history at all the floor alone applies.
    """

    multiplier: float = 3.0
    floor: int = 25
    window_days: int = 30

    def threshold(self, history: Sequence[int]) -> int:
        active = [n for n in history if n > 0]
        usual = statistics.median(active) if active else 0
        return max(int(self.multiplier * usual), self.floor)

    def exceeded(self, opened_today: int, history: Sequence[int]) -> bool:
        return opened_today > self.threshold(history)


@dataclass(frozen=True)
class Opening:
    """One workforce user opening one patient's data, as an audit entry says."""

    seq: int
    user_id: str
    day: str  # YYYY-MM-DD (UTC) of recorded_at
    patient_id: str
    recorded_at: str


def watched(actor_role: str, action: str, outcome: str) -> bool:
    return (
        outcome == Outcome.SUCCESS.value
        and action in {a.value for a in OPENING_ACTIONS}
        and actor_role in {r.value for r in WORKFORCE_ROLES}
    )


def openings(
    seq: int, actor_id: str, recorded_at: str, patient_ids: Iterable[Any]
) -> Iterator[Opening]:
    for patient_id in dict.fromkeys(patient_ids):
        if isinstance(patient_id, str) and patient_id:
            yield Opening(seq, actor_id, recorded_at[:10], patient_id, recorded_at)


def identity_marks(resource: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, normalized value) of a Patient's or Practitioner's family names and addresses.

    Names compare case- and accent-insensitively; an address compares on its street lines
    and its postal code (or city when there is none), so "12 Lantern Row" matches whatever
    the country or district fields say.
    """
    marks: set[tuple[str, str]] = set()
    for name in _dicts(resource.get("name")):
        family = name.get("family")
        if isinstance(family, str) and fold(family):
            marks.add((FAMILY, fold(family)))
    for address in _dicts(resource.get("address")):
        if address.get("use") == "old":
            continue
        lines = [fold(x) for x in address.get("line") or [] if isinstance(x, str) and x.strip()]
        place = address.get("postalCode") or address.get("city")
        if lines and isinstance(place, str) and place.strip():
            marks.add((ADDRESS, " / ".join(lines) + " | " + "".join(fold(place).split())))
    return marks


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
