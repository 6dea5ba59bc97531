"""The security-label rules (no database): which labels a resource carries, what each needs
to leave the tenant, who may read it, the rules file's checks, and the accounting's window
and suspensions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from carevault.identity.permissions import Purpose
from carevault.policy.bases import Basis
from carevault.privacy.disclosure.accounting import (
    StatementForm,
    Suspension,
    SuspensionKind,
    window_start,
)
from carevault.privacy.disclosure.ledger import LedgerRow
from carevault.privacy.segmentation import (
    ACT_CODE,
    CAREVAULT_LABELS,
    CONFIDENTIALITY,
    REQUIREMENTS,
    SegmentationError,
    Viewer,
    hides_from_representatives,
    labels_of,
    may_read,
    parse_rules,
    release_requirements,
    shipped_rules,
)


def labelled(*labels: tuple[str, str]) -> dict[str, Any]:
    return {"resourceType": "Observation",
            "meta": {"security": [{"system": s, "code": c} for s, c in labels]}}  # fmt: skip


ETH = (ACT_CODE, "ETH")
PSYTHPN = (ACT_CODE, "PSYTHPN")
V = (CONFIDENTIALITY, "V")
R = (CONFIDENTIALITY, "R")
MINOR = (CAREVAULT_LABELS, "MINOR-SELF-CONSENT")


def test_labels_are_read_with_their_system() -> None:
    assert labels_of(labelled(ETH, V)) == {"ETH", "V"}
    assert labels_of(labelled(("http://example.org/other", "V"))) == frozenset()  # wrong system
    assert labels_of({"resourceType": "Observation"}) == frozenset()
    assert labels_of({"meta": {"security": ["V", None, {"code": "V"}]}}) == frozenset()
    assert labels_of(labelled((ACT_CODE, "UNKNOWN"))) == frozenset()


@pytest.mark.parametrize(
    ("labels", "needs"),
    [
        ((ETH,), {"part2-consent"}),
        (((ACT_CODE, "SUD"),), {"part2-consent"}),
        ((PSYTHPN,), {"psychotherapy-authorization"}),
        (((ACT_CODE, "HIV"), (ACT_CODE, "SEX")), {"category-named"}),
        ((V, ETH), {"named-in-authorization", "part2-consent"}),
        ((MINOR,), {"minor-own-authorization"}),
        ((R,), set()),
        ((), set()),
    ],
)
def test_release_requirements(labels: tuple[tuple[str, str], ...], needs: set[str]) -> None:
    assert release_requirements(labelled(*labels)) == needs
    assert needs <= set(REQUIREMENTS)


def test_who_may_read() -> None:
    treat_in_care = Viewer(Purpose.TREAT, practitioner=True, in_care=True)
    treat_no_care = Viewer(Purpose.TREAT, practitioner=True, in_care=False)
    patient = Viewer(Purpose.PATRQT)
    parent = Viewer(Purpose.FAMRQT)
    agent = Viewer(Purpose.PWATRNY)
    billing = Viewer(Purpose.HPAYMT)
    system = Viewer(Purpose.HOPERAT, system=True)
    assert may_read({"V"}, treat_in_care)
    assert not may_read({"V"}, treat_no_care)
    assert not may_read({"V"}, patient)
    assert not may_read({"V"}, Viewer(Purpose.TREAT, practitioner=False, in_care=True))
    assert may_read({"V"}, Viewer(Purpose.ETREAT, practitioner=True, in_care=True))
    assert may_read({"R"}, patient)
    assert not may_read({"R"}, billing)
    assert not may_read({"PSYTHPN"}, patient)
    assert may_read({"PSYTHPN"}, treat_no_care)
    assert not may_read({"MINOR-SELF-CONSENT"}, parent)
    assert may_read({"MINOR-SELF-CONSENT"}, agent)
    assert may_read({"MINOR-SELF-CONSENT"}, treat_no_care)
    assert may_read({"ETH", "HIV", "GDIS", "MH"}, billing)  # release rules, no read rule
    assert may_read({"V", "PSYTHPN", "MINOR-SELF-CONSENT"}, system)
    assert not may_read({"R", "MINOR-SELF-CONSENT"}, parent)  # every label must admit
    assert hides_from_representatives() == {"MINOR-SELF-CONSENT"}


def test_every_shipped_label_is_a_real_code_with_a_uri() -> None:
    rules = shipped_rules().by_code
    assert {"V", "R", "PSYTHPN", "PSY", "MH", "ETH", "SUD", "HIV", "SEX", "SDV", "GDIS",
            "MINOR-SELF-CONSENT"} == set(rules)  # fmt: skip
    assert {rules[c].system for c in ("V", "R")} == {CONFIDENTIALITY}
    assert rules["MINOR-SELF-CONSENT"].system == CAREVAULT_LABELS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[labels.V]\nsystem = 'http://x'\ncolour = 'red'\n", "unknown keys"),
        ("[labels.V]\nsystem = 'x'\n", "system must be a code system URI"),
        ("[labels.V]\nsystem = 'http://x'\nrelease = ['a-hunch']\n", "release names"),
        ("[labels.V]\nsystem = 'http://x'\nread_purposes = ['LUNCH']\n", "unknown purpose"),
        ("[labels.V]\nsystem = 'http://x'\nhidden_from = 'FAMRQT'\n", "list of purposes"),
        ("[labels.V]\nsystem = 'http://x'\nread_needs_care = 'yes'\n", "true or false"),
        ("[other]\n", "expected only"),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_a_bad_rules_file_names_the_entry(text: str, message: str) -> None:
    with pytest.raises(SegmentationError, match=message) as raised:
        parse_rules(text, "mine.toml")
    assert str(raised.value).startswith("mine.toml")


def test_the_window_starts_six_years_before_the_day() -> None:
    assert window_start(datetime(2032, 11, 23, 23, 59, tzinfo=UTC)) == datetime(
        2026, 11, 23, tzinfo=UTC
    )
    assert window_start(datetime(2028, 2, 29, 12, tzinfo=UTC)) == datetime(2022, 2, 28, tzinfo=UTC)


def _suspension(**fields: Any) -> Suspension:
    values: dict[str, Any] = {
        "suspension_id": "s1", "patient_id": None, "kind": SuspensionKind.LAW_ENFORCEMENT,
        "agency_ref": None, "agency_name": "Police", "statement": "impedes",
        "statement_form": StatementForm.WRITTEN, "filed_at": "2026-01-01T00:00:00.000000Z",
        "filed_by": "u", "ends_at": "2026-02-01T00:00:00.000000Z", "ended_at": None,
        "ended_by": None, **fields,
    }  # fmt: skip
    return Suspension(**values)


def _row(basis: Basis, at: str, to: str = "Organization/police") -> LedgerRow:
    return LedgerRow("d", at, basis, to, None)


def test_a_suspension_covers_its_bases_before_its_end() -> None:
    s = _suspension()
    assert s.live("2026-01-31T23:59:59.000000Z")
    assert not s.live("2026-02-01T00:00:00.000000Z")
    assert s.hides(_row(Basis.LAW_ENFORCEMENT, "2025-06-01T00:00:00.000000Z"))
    assert s.hides(_row(Basis.REQUIRED_BY_LAW, "2026-01-15T00:00:00.000000Z"))
    assert not s.hides(_row(Basis.LAW_ENFORCEMENT, "2026-02-02T00:00:00.000000Z"))
    assert not s.hides(_row(Basis.HEALTH_OVERSIGHT, "2026-01-15T00:00:00.000000Z"))
    narrow = _suspension(agency_ref="Organization/fbi")
    assert not narrow.hides(_row(Basis.LAW_ENFORCEMENT, "2026-01-15T00:00:00.000000Z"))
    lifted = _suspension(ended_at="2026-01-10T00:00:00.000000Z")
    assert lifted.until == "2026-01-10T00:00:00.000000Z"
    assert not lifted.live("2026-01-11T00:00:00.000000Z")
    oversight = _suspension(kind=SuspensionKind.HEALTH_OVERSIGHT)
    assert oversight.hides(_row(Basis.HEALTH_OVERSIGHT, "2026-01-15T00:00:00.000000Z"))
