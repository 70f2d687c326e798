#!/usr/bin/env bash
# Sets up everything (idempotent), starts a headless ComfyUI with this pack and renders the txt2vid
# example workflow to an MP4 and a GIF, printing their paths. Extra arguments go to scripts/demo.py.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh" >/dev/null
VENV=${ANIMATEFLOW_VENV:-$ROOT/.work/venv}
exec "$VENV/bin/python" "$ROOT/scripts/demo.py" "$@"
