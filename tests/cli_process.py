"""Run the real `carevault` command in a child process against a test's data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from carevault.settings import Settings

CAREVAULT = Path(sys.executable).parent / "carevault"


def run_cli(
    settings: Settings, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`carevault ARGS` with only this test's CAREVAULT_* settings in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREVAULT_")}
    env |= {"CAREVAULT_HOME": str(settings.home), "COLUMNS": "200", "NO_COLOR": "1"}
    env["CAREVAULT_WARM_STRICT_VALIDATION"] = "false"
    if settings.database_url:
        env["CAREVAULT_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [str(CAREVAULT), *args], env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
