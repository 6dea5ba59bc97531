"""The written notices say what the law requires them to say; the body is checked by hand."""

from __future__ import annotations

import uuid

import pytest

from carevault.errors import Invalid
from carevault.messaging.guard import check_rendered
from carevault.messaging.templates import template
from carevault.rights import intake, notices
from carevault.rights.models import DenialBasis, Rulebook
from carevault.rights.service import _day_end

ORIGIN = "https://care.example.test"


def test_an_amendment_denial_states_basis_disagreement_attachment_and_complaint() -> None:
    text = notices.denial_text(
        Rulebook.HIPAA,
        "hipaa-amendment",
        DenialBasis.NOT_CREATED_HERE,
        "The lab wrote it.",
        "North Clinic",
    )
    for words in (
        "164.526(a)(2)(i)",
        "statement disagreeing",
        "rebuttal",
        "sent with any future disclosure",
        "North Clinic's privacy officer",
        "Office for Civil Rights",
        "The lab wrote it.",
    ):
        assert words in text, words


def test_an_access_denial_names_review_and_complaint_but_no_statement() -> None:
    text = notices.denial_text(
        Rulebook.HIPAA,
        "hipaa-access",
        DenialBasis.ENDANGERMENT,
        "A clinician judged so.",
        "North Clinic",
    )
    assert "reviewed by another licensed professional" in text
    assert "statement disagreeing" not in text
    assert "Office for Civil Rights" in text


def test_a_ccpa_denial_names_the_agency_and_non_discrimination() -> None:
    text = notices.denial_text(
        Rulebook.CCPA, "ccpa-delete", DenialBasis.LEGAL_OBLIGATION, "Kept six years.", "CareVault"
    )
    assert "California Privacy Protection Agency" in text
    assert "never changes the price" in text


def test_extension_and_fee_notes() -> None:
    text = notices.extension_text("Records are off site.", 30, "2027-01-22T09:00:00.000000Z")
    assert "Records are off site." in text
    assert "2027-01-22" in text
    assert "once only" in text
    assert "cost-based" in notices.fee_note("cost-based")
    assert "0" in notices.fee_note("cost-based")
    assert "No fee" in notices.fee_note(None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("text", "JSON object"),
        ({"action": "x", "categories": ["phi"]}, "action must be"),
        ({"action": "access", "categories": "phi"}, "categories"),
        ({"action": "access", "categories": ["phi"], "channel": "fax"}, "channel"),
        ({"action": "access", "categories": ["phi"], "forms": ["tiff"]}, "forms"),
        ({"action": "access", "categories": ["phi"], "designee": "Bob"}, "designee"),
        ({"action": "access", "categories": ["phi"], "resources": ["nope"]}, "resources"),
        ({"action": "amend", "categories": ["phi"]}, "statement is required"),
        ({"action": "access", "categories": ["phi"], "business_contact": "yes"}, "true or false"),
    ],
)
def test_bad_request_bodies_are_refused_naming_the_field(body: object, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        intake.parse(body)


def test_due_before_takes_a_date_or_an_instant() -> None:
    assert _day_end("2026-12-23") == "2026-12-23T23:59:59.999999Z"
    assert _day_end("2026-12-23T10:00:00+00:00") == "2026-12-23T10:00:00.000000Z"
    with pytest.raises(Invalid, match="due_before"):
        _day_end("soon")


RIGHTS_TEMPLATES = (
    "rights-request-received",
    "rights-request-extended",
    "rights-request-decided",
    "rights-request-fulfilled",
    "rights-request-new",
)


@pytest.mark.parametrize("name", RIGHTS_TEMPLATES)
def test_the_rights_emails_pass_the_phi_guard_and_carry_only_a_link(name: str) -> None:
    link = notices.REQUEST_LINK.format(request_id=uuid.uuid4())
    params: dict[str, object] = {"link": link}
    if name == "rights-request-extended":
        params["days"] = 30
    template(name).check(params)
    rendered = template(name).render(params, tenant="Riverside Clinic", origin=ORIGIN)
    check_rendered(rendered.subject, rendered.text, rendered.html, ORIGIN)
    assert "$" not in rendered.text
    assert "Riverside Clinic" in rendered.subject + rendered.text
    assert link in rendered.text
    assert "Sign in" in rendered.text
