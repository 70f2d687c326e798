#!/usr/bin/env bash
# Sets up everything (idempotent) and runs the whole test suite inside the real ComfyUI.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_foundation.py -x`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh" --with-browser >/dev/null
VENV=${ANIMATEFLOW_VENV:-$ROOT/.work/venv}
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
