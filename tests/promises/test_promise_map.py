"""docs/promises.md is in step with the promise marks, and every test it cites exists."""

from __future__ import annotations

from pathlib import Path

from tests.promises.promise_map import MAP, marked_tests, rewrite


def test_the_map_is_in_step_with_the_promise_suite() -> None:
    text = MAP.read_text(encoding="utf-8")
    new, problems = rewrite(text, marked_tests())
    assert problems == []
    assert new == text, "run: python -m tests.promises.promise_map --write"


def test_a_marked_promise_missing_from_the_map_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        'import pytest\n\n@pytest.mark.promise("ZZ-99")\ndef test_y():\n    assert True\n'
    )
    _, problems = rewrite(MAP.read_text(encoding="utf-8"), marked_tests(tmp_path))
    assert "ZZ-99: marked in a test but not in the map" in problems


def test_a_cited_test_that_does_not_exist_is_a_problem() -> None:
    text = MAP.read_text(encoding="utf-8").replace(
        "| — |\n", "| ✅ tests/integration/test_smoke.py::test_nothing_by_that_name |\n", 1
    )
    _, problems = rewrite(text, marked_tests())
    assert any("does not exist" in p for p in problems)


def test_a_marked_test_fills_the_row_and_the_counts() -> None:
    text = MAP.read_text(encoding="utf-8")
    marks = marked_tests()
    unproven = next(
        line.split(" | ")[0].removeprefix("| ")
        for line in text.splitlines()
        if "planned: disclosure" in line and line.startswith("| ")
    )
    new, _ = rewrite(text, {**marks, unproven: ["promises/test_fake.py::test_fake"]})
    row = next(line for line in new.splitlines() if line.startswith(f"| {unproven} |"))
    assert "✅ promises/test_fake.py::test_fake" in row
    assert "planned: disclosure" not in row
    assert new != text
