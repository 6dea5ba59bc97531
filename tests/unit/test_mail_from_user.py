"""Mail sent on behalf of a user, without a database: From "<user> via <tenant>" with Sender the
deployment, a system notice From the tenant alone, a user's name neutralised (never a header
injection), the reserved from_user/from_name parameters only on `from_user` templates, and
which FHIR Communications are a practitioner's message to the patient (announced From them)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage

import pytest

from carevault.errors import Invalid
from carevault.messaging.smtp import MAX_NAME, build_message, user_display_name
from carevault.messaging.templates import FROM_NAME, FROM_USER, Rendered, _parse, template
from carevault.web.fhir_api.messages import PatientMessage, patient_message
from carevault.web.practitioner_names import display_name

SENDER = "notices@care.example.test"
USER = str(uuid.uuid5(uuid.NAMESPACE_URL, "carevault-test-from-user"))
SEALED = base64.urlsafe_b64encode(b"\x00" * 40).decode()
ORIGIN = "https://care.example.test"
RENDERED = Rendered("You have a new secure message at North", "Sign in to read it.", None)


def built(on_behalf_of: str | None, tenant: str = "North Clinic") -> EmailMessage:
    msg = build_message(
        RENDERED, to="a@example.org", sender=SENDER, display_name=tenant,
        sent_at=datetime(2026, 12, 1, tzinfo=UTC), on_behalf_of=on_behalf_of,
    )  # fmt: skip
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)  # as a receiver reads it
    assert isinstance(parsed, EmailMessage)
    return parsed


def mailbox(msg: EmailMessage, field: str) -> Address:
    (address,) = msg[field].addresses
    assert isinstance(address, Address)
    return address


def test_a_message_for_a_user_is_from_them_via_the_tenant_and_sent_by_the_deployment() -> None:
    msg = built("Dr. Ana Reyes")
    author, agent = mailbox(msg, "From"), mailbox(msg, "Sender")
    assert (author.display_name, author.addr_spec) == ("Dr. Ana Reyes via North Clinic", SENDER)
    assert (agent.display_name, agent.addr_spec) == ("North Clinic", SENDER)


def test_a_system_notice_is_from_the_tenant_with_no_sender() -> None:
    msg = built(None)
    author = mailbox(msg, "From")
    assert (author.display_name, author.addr_spec) == ("North Clinic", SENDER)
    assert msg["Sender"] is None


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: spy@evil.test",
        "Eve\nBcc: spy@evil.test",
        "Eve\rBcc: spy@evil.test",
        "Eve\x00\r\n\r\nforged body",
        'Eve" <spy@evil.test>, "Mallory',
        "Eve\u2028Bcc: spy@evil.test",
        "Eve\x85Bcc: spy@evil.test",
    ],
)
def test_a_name_cannot_add_a_header_an_address_or_a_body(name: str) -> None:
    msg = built(name)
    author = mailbox(msg, "From")  # exactly one mailbox, ours
    assert author.addr_spec == SENDER
    assert author.display_name.endswith(" via North Clinic")
    assert msg["Bcc"] is None
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    assert "forged" not in str(body.get_content())
    head = msg.as_bytes().split(b"\n\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc") for line in head.splitlines())


def test_the_name_is_cleaned_collapsed_and_capped() -> None:
    assert user_display_name("  Dr.\tAna\r\n  Reyes\u202e ") == "Dr. Ana Reyes"
    assert len(user_display_name("A" * 500)) == MAX_NAME


def test_a_name_with_accents_survives_the_encoding() -> None:
    assert mailbox(built("Dr. José Müller"), "From").display_name == (
        "Dr. José Müller via North Clinic"
    )


def test_an_empty_name_is_refused_rather_than_sent_as_the_tenants() -> None:
    with pytest.raises(Invalid, match="needs the user's name"):
        built(" \r\n\x00 ")


def test_a_line_break_in_the_tenant_name_is_still_refused() -> None:
    with pytest.raises(Invalid, match="the From header"):
        built("Dr. Ana Reyes", tenant="North\r\nBcc: spy@evil.test")


def test_a_from_user_template_needs_its_user_and_the_sealed_name() -> None:
    found = template("message-from-user")
    assert found.from_user
    found.check({FROM_USER: USER, FROM_NAME: SEALED})
    for bad in (
        {},
        {FROM_USER: USER},
        {FROM_NAME: SEALED},
        {FROM_USER: "dr-reyes", FROM_NAME: SEALED},
        {FROM_USER: USER, FROM_NAME: "Dr. Ana Reyes"},
        {FROM_USER: USER, FROM_NAME: SEALED, "name": "Reyes"},
    ):
        with pytest.raises(Invalid):
            found.check(bad)


def test_a_system_template_refuses_the_from_user_parameters() -> None:
    # So no caller can make a system notice pass for a user's message, or the other way round.
    with pytest.raises(Invalid, match="takes no parameter"):
        template("new-message").check({FROM_USER: USER, FROM_NAME: SEALED})


def test_the_reserved_parameters_never_reach_the_text() -> None:
    rendered = template("message-from-user").render(
        {FROM_USER: USER, FROM_NAME: SEALED, "link": "/portal/messages"},
        tenant="North Clinic", origin=ORIGIN,
    )  # fmt: skip
    assert USER not in rendered.text + rendered.subject
    assert SEALED not in rendered.text + rendered.subject
    assert f"{ORIGIN}/portal/messages" in rendered.text


def test_a_template_file_cannot_declare_the_reserved_names_or_a_vague_flag() -> None:
    entry: dict[str, object] = {"subject": "s", "text": "t"}
    with pytest.raises(ValueError, match="reserved"):
        _parse("x", entry | {"params": {FROM_NAME: {"type": "link"}}})
    with pytest.raises(ValueError, match="true or false"):
        _parse("x", entry | {"from_user": "yes"})


# -- which Communications are a practitioner's message to the patient (web/fhir_api) --------

PATIENT = "Patient/p-1"
OWN = "Practitioner/dr-1"


def communication(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "resourceType": "Communication", "status": "completed", "subject": {"reference": PATIENT},
        "recipient": [{"reference": "Practitioner/dr-2"}, {"reference": PATIENT}],
        "sender": {"reference": OWN},
    }  # fmt: skip
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_a_sent_message_to_its_subject_patient_names_its_sender() -> None:
    assert patient_message(communication()) == PatientMessage("p-1", "dr-1", True)
    assert patient_message(communication(status="in-progress")) == PatientMessage(
        "p-1", "dr-1", True
    )
    versioned = communication(sender={"reference": f"{OWN}/_history/2"})
    assert patient_message(versioned) == PatientMessage("p-1", "dr-1", True)


@pytest.mark.parametrize(
    "sender",
    [
        {"reference": f"https://elsewhere.test/fhir/{OWN}"},
        {"reference": "PractitionerRole/role-1"},
        {"type": "Practitioner", "identifier": {"value": "NPI-1"}},
    ],
)
def test_a_practitioner_named_any_other_way_is_not_taken_for_the_user(
    sender: dict[str, object],
) -> None:
    assert patient_message(communication(sender=sender)) == PatientMessage("p-1", None, True)


@pytest.mark.parametrize(
    "sender", [None, {"reference": PATIENT}, {"reference": "Organization/o-1"}]
)
def test_a_message_not_sent_as_a_practitioner_names_none(sender: object) -> None:
    assert patient_message(communication(sender=sender)) == PatientMessage("p-1", None, False)


@pytest.mark.parametrize(
    "body",
    [
        communication(status="preparation"),  # a draft
        communication(status="entered-in-error"),
        communication(recipient=[{"reference": "Practitioner/dr-2"}]),  # between practitioners
        communication(recipient=[{"reference": "Patient/p-2"}]),  # about one, to another
        communication(subject={"reference": "Group/g-1"}),
        communication(subject=None),
        communication(recipient="Patient/p-1"),  # malformed: the gate's validation answers
        communication(subject={"reference": "Patient/alicia quintero"}),
        ["not", "a", "resource"],
    ],
)
def test_other_communications_are_not_messages_to_the_patient(body: object) -> None:
    assert patient_message(body) is None


@pytest.mark.parametrize(
    ("practitioner", "shown"),
    [
        ({"name": [{"text": "Dr. Ana Reyes"}]}, "Dr. Ana Reyes"),
        ({"name": [{"prefix": ["Dr."], "given": ["Ana", "M."], "family": "Reyes"}]},
         "Dr. Ana M. Reyes"),
        ({"name": [{"family": "Reyes"}, {"text": "Ana"}]}, "Reyes"),
        ({"name": []}, None),
        ({}, None),
        ({"name": ["Reyes"]}, None),
    ],
)  # fmt: skip
def test_the_display_name_is_the_first_human_name(
    practitioner: dict[str, object], shown: str | None
) -> None:
    assert display_name(practitioner) == shown
