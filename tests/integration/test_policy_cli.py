"""`carevault policy check` and `carevault policy render`, run as a user would: the real command
in a child process. A bad file exits 2 and names each offending path; the rendered notice
states each profile's promises, in Markdown and in escaped HTML."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from carevault.policy import policies_dir
from tests.cli_process import CAREVAULT

PROFILES = ["default", "healthsoft", "practice-fusion", "allmeds", "lifeimage", "ihr-health"]


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """Both streams, with line wrapping undone."""
        return " ".join((self.out + " " + self.err).split())


def carevault(*args: str, cwd: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREVAULT_")}
    env |= {"CAREVAULT_HOME": str(cwd / "no-data-folder"), "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run(
        [str(CAREVAULT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    run = Run(done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in run.out + run.err, run
    return run


def shipped(name: str) -> str:
    return str(policies_dir() / f"{name}.yaml")


def render(name: str, tmp_path: Path, fmt: str = "markdown") -> str:
    run = carevault("policy", "render", shipped(name), "--format", fmt, cwd=tmp_path)
    assert run.code == 0, run
    return " ".join(run.out.split())


@pytest.mark.parametrize("name", PROFILES)
def test_check_ok_for_every_profile(name: str, tmp_path: Path) -> None:
    run = carevault("policy", "check", shipped(name), cwd=tmp_path)
    assert run.code == 0, run
    assert run.out.startswith("ok: ")
    assert "categories" in run.out
    assert "bases allowed" in run.out
    assert not (tmp_path / "no-data-folder").exists()  # a policy check opens no data folder


def test_check_a_bad_file_exits_2_and_names_each_path(tmp_path: Path) -> None:
    text = Path(shipped("lifeimage")).read_text(encoding="utf-8")
    text = text.replace("never_shared: []", "never_shared: [phi]")
    text = text.replace(
        "    purpose_of_use: HRESCH\n", "    purpose_of_use: HRESCH\n    colour: red\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    run = carevault("policy", "check", str(bad), cwd=tmp_path)
    assert run.code == 2, run
    assert run.out == ""
    assert "bad.yaml" in run.err
    assert "purposes.health-trends.colour" in run.err
    bad.write_text(text.replace("    colour: red\n", ""), encoding="utf-8")
    run = carevault("policy", "check", str(bad), cwd=tmp_path)
    assert run.code == 2, run
    assert "recipients.chosen-recipients.shares" in run.err
    assert "recipients.family.shares" in run.err
    assert "never_shared" in run.err


def test_check_invalid_yaml_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("policy: 1\nname: [x,\n  y\nsummary: z\n", encoding="utf-8")
    run = carevault("policy", "check", str(broken), cwd=tmp_path)
    assert run.code == 2, run
    assert "broken.yaml: not valid YAML at line" in run.err, run
    run = carevault("policy", "check", str(tmp_path / "absent.yaml"), cwd=tmp_path)
    assert run.code == 2, run
    assert "absent.yaml: cannot read" in run.err, run
    run = carevault("policy", "render", str(broken), cwd=tmp_path)
    assert run.code == 2, run
    assert run.out == "", run


def test_render_markdown_healthsoft_states_its_promises(tmp_path: Path) -> None:
    text = render("healthsoft", tmp_path)
    assert text.startswith("# Healthsoft privacy notice")
    for promise in (
        "Effective 2023-01-01. Last updated 2024-05-31.",  # HS-07, HS-35
        "used and disclosed only as your provider instructs",  # HS-01
        "Global Privacy Control",  # HS-14
        "The portals use no third-party cookies or trackers.",  # HS-10
        "Never sold, leased or traded.",  # HS-25
        "3 years (1095 days) after your last interaction",  # HS-26
        "on any date of deletion the law requires",
        "kept until the provider asks for its deletion",  # HS-27
        "de-identified only as your provider authorized",  # HS-32
        "At most 2 requests in any 12 months.",
        "Answered within 45 days; if we need more time, at most 45 more days",
        "Your provider decides on the request",  # HS-03
        "357 Crystal Downs Way",  # HS-36
        "We do not knowingly collect personal information from children under 18.",
    ):
        assert promise in text, promise


def test_render_html_lifeimage_states_its_promises(tmp_path: Path) -> None:
    page = render("lifeimage", tmp_path, "html")
    assert page.startswith("<!DOCTYPE html>")
    text = visible_text(page)
    for promise in (
        "Nothing is released to a third party without your express consent",  # LI-01
        "signing in again with your second factor",  # LI-04
        "Members of your own family - only with your Express Consent.",  # LI-07
        "Only with your express consent on file.",
        "When the law or a court order requires it (only what the order names). You are told "
        "in advance, unless the law or the order forbids it",  # LI-15, LI-33
        "It is never released, even where the law would permit it without your consent",
        "to another health care provider for your treatment",
        "See and get a copy of your health information",  # LI-02, LI-44
        "If we deny the request, we explain why in writing.",  # LI-45
        "Cost: at most what it costs us to retrieve, prepare and send it.",  # LI-50
        "The order and the information released under it: promptly afterwards.",  # LI-34
        "A security breach that may have exposed your information: promptly afterwards.",
        "Changes take effect 7 days after they are first posted.",  # LI-52
        "privacy@lifeimage.com",  # LI-03
    ):
        assert promise in text, promise


def test_render_allmeds_states_its_promises(tmp_path: Path) -> None:
    text = render("allmeds", tmp_path)
    for promise in (
        "Last updated 2019-08-12.",  # AM-01
        "Whenever we share with a third party, we share only the minimum necessary",  # AM-02
        "Only with a business associate agreement and a binding agreement",  # AM-10
        "We do not sell your personal information.",  # AM-08
        "1 year (365 days) after your account is closed",  # AM-17
        "after the provider is offered an archived copy",  # AM-19
        "needs the permission of a parent or legal guardian",  # AM-37
        "At most 1 request in any 12 months.",  # AM-35
    ):
        assert promise in text, promise


def test_render_practice_fusion_states_its_promises(tmp_path: Path) -> None:
    text = render("practice-fusion", tmp_path)
    for promise in (
        "Effective 2026-12-01.",  # PF-14
        "The account administrator who issued your account sees your account information.",
        "Only with a confidentiality agreement on file.",  # PF-09, PF-10
        "Never stored by us: passed directly to the processor.",  # PF-04
        "Receives: De-identified information.",  # PF-06
    ):
        assert promise in text, promise


def test_render_ihr_health_states_its_promises(tmp_path: Path) -> None:
    text = render("ihr-health", tmp_path)
    for promise in (
        "Last updated 2026-12-01.",  # IH-28
        "We do not sell your personal information.",  # IH-01
        "That we do not sell your personal information: in advance.",
        "we keep your address only to make sure we never write again",  # IH-07
        "Never shared with anyone: Marketing suppression, Request data.",  # IH-27
        "Answered within 45 days; if we need more time, at most 45 more days",  # IH-25
        "You do not need an account to ask.",  # IH-26
        "An authorized agent with your written permission or power of attorney",  # IH-24
        "To delete the Product Personal Data you submitted with your own account.",  # IH-08
        "A material change applies only to information collected after it takes effect.",
    ):
        assert promise in text, promise


def test_render_follows_the_file(tmp_path: Path) -> None:
    """A change to the policy is a change to the notice: nothing is written twice (HS-06)."""
    text = Path(shipped("healthsoft")).read_text(encoding="utf-8")
    changed = text.replace("updated: 2024-05-31", "updated: 2025-02-03").replace(
        "    keep_days: 1095\n", "    keep_days: 730\n"
    )
    copy = tmp_path / "changed.yaml"
    copy.write_text(changed, encoding="utf-8")
    run = carevault("policy", "render", str(copy), cwd=tmp_path)
    assert run.code == 0, run
    assert "Last updated 2025-02-03." in run.text
    assert "2 years (730 days)" in run.text
    assert "1095" not in run.text


def test_render_escapes_html_and_writes_to_a_file(tmp_path: Path) -> None:
    text = Path(shipped("default")).read_text(encoding="utf-8")
    text = text.replace("name: CareVault default", 'name: "<script>alert(1)</script> & Co"')
    source = tmp_path / "hostile.yaml"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "notice.html"
    run = carevault("policy", "render", str(source), "--format", "html", "--out", str(out),
                    cwd=tmp_path)  # fmt: skip
    assert run.code == 0, run
    assert str(out) in run.text
    page = out.read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    markdown = tmp_path / "notice.md"
    run = carevault("policy", "render", shipped("default"), "--out", str(markdown), cwd=tmp_path)
    assert run.code == 0, run
    assert markdown.read_text(encoding="utf-8").startswith("# CareVault default privacy notice")


def test_render_refuses_an_unknown_format(tmp_path: Path) -> None:
    run = carevault("policy", "render", shipped("default"), "--format", "pdf", cwd=tmp_path)
    assert run.code == 2, run
    assert "pdf" in run.err, run


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())
