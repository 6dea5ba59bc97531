#!/usr/bin/env bash
# Create .venv and install CareVault (with the extras named in $1, e.g. "test") into it.
# Sourced by scripts/demo and scripts/test so that a fresh clone needs nothing else.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=${1:-}
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "CareVault needs Python 3.11 or newer ($py is older)" >&2
  exit 2
fi
if [ ! -x "$root/.venv/bin/python" ]; then
  "$py" -m venv "$root/.venv"
fi
stamp="$root/.venv/.installed-${extras:-core}"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$root/.venv/bin/pip" install -q --upgrade pip >/dev/null
  spec="$root"
  [ -n "$extras" ] && spec="$root[$extras]"
  "$root/.venv/bin/pip" install -q -e "$spec"
  touch "$stamp"
fi
