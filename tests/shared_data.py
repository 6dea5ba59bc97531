"""Where the team's shared test data (Synthea, PhysioNet) lives: $CAREVAULT_SHARED_DATA, else
`shared/data` beside the repository, else the workplace's copy at /work/shared/data."""

from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = (
    os.environ.get("CAREVAULT_SHARED_DATA", ""),
    str(Path(__file__).resolve().parents[2] / "shared" / "data"),
    "/work/shared/data",
)

DATA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), Path(_CANDIDATES[1]))
