"""Notification templates and the PHI guard, without a database: every template renders, and
anything that could carry PHI (an unknown template, a stray parameter, a link with a name,
email, date or phone number in it, a header with a line break) is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from carevault.errors import Invalid
from carevault.messaging import outbox
from carevault.messaging.guard import check_link, check_rendered
from carevault.messaging.models import RecipientKind
from carevault.messaging.smtp import build_message
from carevault.messaging.templates import Rendered, load_templates, template

ORIGIN = "https://care.example.test"
# Fixed values, not fresh random ones: parametrized ids must be the same in every
# collection (pytest-xdist workers compare them).
TOKEN = "R18hRIbAGJA00e9VxJLr_kPqbZEJ22LHAqjYkB90I"


def fixed_id(n: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"carevault-test-{n}")


TEAM_TEMPLATES = {
    "sign-in-failures", "account-locked", "password-reset", "mfa-changed", "email-changed",
    "phone-changed",
    "new-sign-in", "break-glass-alert", "snooping-alert", "new-message",
    "disclosure-upcoming", "disclosure-made", "marketing-update",
    "rights-request-received", "rights-request-extended", "rights-request-decided",
    "rights-request-fulfilled", "rights-request-new",
    "rights-email-check", "rights-request-update",  # rights/: requesters with no account
    "breach-notice",
    "message-from-user",  # a practitioner's secure message, From them (PF-20)
    "policy-change-posted",  # a new privacy policy version (policy/posting.py)
}  # fmt: skip
ALERT = f"/privacy/alerts/{fixed_id(1)}"
RESET = f"/auth/password-reset?token={TOKEN}"


def sample(name: str) -> dict[str, object]:
    params: dict[str, object] = {}
    for param in template(name).params:
        params[param.name] = ALERT if param.type == "link" else 3
    return params


def test_every_name_the_team_uses_is_a_template() -> None:
    assert set(load_templates()) == TEAM_TEMPLATES


@pytest.mark.parametrize("name", sorted(TEAM_TEMPLATES))
def test_each_template_renders_with_the_tenant_and_no_placeholder_left(name: str) -> None:
    for params in (sample(name), {k: v for k, v in sample(name).items()
                                  if template(name).declared[k][1]}):  # fmt: skip
        rendered = template(name).render(params, tenant="Riverside Clinic", origin=ORIGIN)
        for part in (rendered.subject, rendered.text, rendered.html or ""):
            assert "$" not in part
        assert "Riverside Clinic" in rendered.subject + rendered.text
        assert "\n" not in rendered.subject


def test_new_message_says_sign_in_to_read_it_and_nothing_of_the_message() -> None:
    rendered = template("new-message").render({}, tenant="North", origin=ORIGIN)
    assert "Sign in to read it" in rendered.text
    assert rendered.subject == "You have a new message from North"


def test_a_link_path_becomes_a_url_under_the_public_origin() -> None:
    rendered = template("password-reset").render({"link": RESET}, tenant="N", origin=ORIGIN)
    assert f"{ORIGIN}{RESET}" in rendered.text
    assert rendered.html is not None
    assert f'href="{ORIGIN}{RESET.replace("&", "&amp;")}"' in rendered.html


def test_an_unknown_template_is_refused() -> None:
    with pytest.raises(Invalid, match="no notification template named 'lab-result'"):
        template("lab-result")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("password-reset", {}, "needs the parameter 'link'"),
        ("mfa-changed", {"patient": "Alicia Quintero"}, "takes no parameter named patient"),
        ("new-sign-in", {"note": "x"}, "takes no parameter named note"),
        ("sign-in-failures", {"count": "3"}, "must be an integer"),
        ("sign-in-failures", {"count": True}, "must be an integer"),
        ("sign-in-failures", {"count": -1}, "out of range"),
        ("snooping-alert", {"link": 42}, "must be a link"),
    ],
)
def test_missing_extra_and_mistyped_parameters_are_refused(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        template(name).check(params)


@pytest.mark.parametrize(
    "link",
    [
        ALERT,
        RESET,
        f"{ORIGIN}/privacy/break-glass/{fixed_id(2)}",
        f"/portal/messages/{fixed_id(3).hex}",
        "/auth/reset#token=a1b2c3d4e5f6g7h8",
        "/privacy/alerts",
        # the shapes the team builds: password reset, break-glass review, snooping alert
        f"{ORIGIN}/portal/reset-password/{fixed_id(4)}#token={TOKEN}",
        f"/privacy/break-glass/{fixed_id(5)}",
    ],
)
def test_links_of_route_words_and_opaque_ids_pass(link: str) -> None:
    check_link(link)


@pytest.mark.parametrize(
    "link",
    [
        "/portal/messages?patient=alicia.q@example.org",  # an email
        "/portal/patients/quintero",  # a name
        "/portal/patients/AliciaMariaQuinter",  # run-together name, id-length
        "/privacy/alerts?token=1984-03-17",  # a birth date
        f"/privacy/alerts/{fixed_id(6)}?born=19840317",  # a date under an unknown key
        "/privacy/alerts?token=19840317abcdefghij",  # a date inside an id
        "/privacy/alerts?token=5550142abcdefghij",  # a phone number inside a short id
        "/privacy/alerts?id=55501421234567890",  # digits only: a record or card number
        "/portal/messages/12%20Lantern%20Row",  # encoded free text
        "/portal/messages/12 Lantern Row",
        "/portal/messages/Quintero\r\nBcc: x@evil.test",
        "//evil.test/privacy/alerts",
        "javascript:alert(1)",
        "mailto:someone@example.org",
        "https://user:pw@care.example.test/auth",
        "privacy/alerts",  # relative
        "/privacy/../../etc/passwd",
        "/" + "a1" * 300,
    ],
)
def test_links_that_could_carry_phi_are_refused(link: str) -> None:
    with pytest.raises(Invalid):
        check_link(link)


def test_the_refusal_does_not_echo_the_value() -> None:
    with pytest.raises(Invalid) as caught:
        check_link("/portal/patients/quintero")
    assert "quintero" not in caught.value.message


def test_a_url_outside_the_public_origin_is_refused_at_render() -> None:
    link = f"https://elsewhere.test/privacy/alerts/{fixed_id(7)}"
    check_link(link)  # well-formed, so enqueue accepts it; the origin is known at send time
    with pytest.raises(Invalid, match="public origin"):
        template("snooping-alert").render({"link": link}, tenant="N", origin=ORIGIN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Your result is ready, alicia.q@example.org", "email address"),
        ("Your visit on 2026-11-24 is confirmed", "a date"),
        ("Your visit on 11/24/2026 is confirmed", "a date"),
        ("Call us at 555-0142", "phone number"),
        ("Call us at (413) 555-0142", "phone number"),
        ("See https://elsewhere.test/x", "outside the public origin"),
    ],
)
def test_the_rendered_text_is_checked_again(text: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        check_rendered("Subject", text, None, ORIGIN)


def test_a_tenant_name_that_looks_like_phi_is_caught_in_the_rendered_text() -> None:
    with pytest.raises(Invalid, match="phone number"):
        template("new-sign-in").render({}, tenant="Dr Who 555-0142", origin=ORIGIN)


def _rendered() -> Rendered:
    return template("new-sign-in").render({}, tenant="North", origin=ORIGIN)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("To", {"to": "a@example.org\r\nBcc: spy@evil.test"}),
        ("From", {"sender": "notices@example.org\nBcc: spy@evil.test"}),
        ("From", {"display_name": "North\r\nBcc: spy@evil.test"}),
    ],
)
def test_a_line_break_in_any_header_value_is_refused(field: str, kwargs: dict[str, str]) -> None:
    base = {"to": "a@example.org", "sender": "n@example.org", "display_name": "North"}
    with pytest.raises(Invalid, match=f"the {field} header"):
        build_message(_rendered(), sent_at=datetime.now(UTC), **(base | kwargs))


def test_a_line_break_in_the_subject_is_refused() -> None:
    bad = Rendered("Hello\r\nBcc: spy@evil.test", "text", None)
    with pytest.raises(Invalid, match="Subject"):
        build_message(
            bad, to="a@example.org", sender="n@example.org", display_name="N",
            sent_at=datetime.now(UTC),
        )  # fmt: skip


def test_a_built_message_has_one_recipient_and_marks_itself_automatic() -> None:
    msg = build_message(
        _rendered(), to="a@example.org", sender="n@example.org", display_name="North Clinic",
        sent_at=datetime(2026, 11, 23, tzinfo=UTC),
    )  # fmt: skip
    assert msg["To"] == "a@example.org"
    assert msg["From"] == "North Clinic <n@example.org>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].endswith("@example.org>")


def test_a_marketing_template_cannot_be_queued_past_the_opt_out_check() -> None:
    # Only Preferences.send_marketing (which checks opt-outs and the suppression list) may.
    with pytest.raises(Invalid, match="send_marketing"):
        outbox.enqueue(
            None,  # type: ignore[arg-type]  (refused before the connection is touched)
            "tenant",
            kind=RecipientKind.USER,
            recipient="user",
            template="marketing-update",
            params={"link": "/unsubscribe?token=x"},
            now="2026-12-01T00:00:00+00:00",
        )
