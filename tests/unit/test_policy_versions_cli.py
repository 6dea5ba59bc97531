"""`carevault policy post`, `policy versions` and `policy render` (no file): the real command in a
child process on the test's data folder. A bad file exits 2, names each problem, stores nothing."""

from __future__ import annotations

from pathlib import Path

from carevault.policy import policies_dir
from carevault.runtime import initialize
from carevault.settings import Settings
from tests.cli_process import run_cli


def _lines(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line.strip()]


def test_post_list_and_render_the_deployments_versions(settings: Settings, tmp_path: Path) -> None:
    initialize(settings)
    text = (policies_dir() / "default.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("    kind: phi\n", "    kind: phi\n    colour: red\n", 1))
    refused = run_cli(settings, "policy", "post", str(bad))
    assert refused.returncode == 2, refused
    assert "categories.phi.colour: Extra inputs are not permitted" in refused.stderr
    same = run_cli(settings, "policy", "post", str(policies_dir() / "default.yaml"))
    assert same.returncode == 2, same
    assert "the same policy as version 0" in same.stderr
    listed = run_cli(settings, "policy", "versions")
    assert listed.returncode == 0, listed
    assert [row[:2] for row in _lines(listed.stdout)] == [["0", "in-effect"]]  # nothing stored

    good = tmp_path / "good.yaml"
    good.write_text(text.replace("name: CareVault default\n", "name: CareVault revised\n", 1))
    posted = run_cli(settings, "policy", "post", str(good))
    assert posted.returncode == 0, posted
    assert posted.stdout.startswith("posted: CareVault revised version 1")
    rows = _lines(run_cli(settings, "policy", "versions").stdout)
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("0", "superseded", "CareVault default"),
        ("1", "in-effect", "CareVault revised"),  # the default promises no delay
    ]
    assert rows[1][6] == "system:policy post (command line)"
    notice = run_cli(settings, "policy", "render")
    assert notice.returncode == 0, notice
    assert notice.stdout.startswith("# CareVault revised privacy notice")
    assert f"Version 1, posted {rows[1][2][:10]}" in notice.stdout
    old = run_cli(settings, "policy", "render", "--version", "0")
    assert old.stdout.startswith("# CareVault default privacy notice")
    both = run_cli(settings, "policy", "render", str(good), "--version", "1")
    assert both.returncode == 2
