#!/usr/bin/env bash
# Sets up everything (idempotent), starts a headless ComfyUI with this pack and renders the txt2vid example
# workflow to an MP4 and a GIF, printing their paths. Extra arguments go to scripts/demo.py.
# The demo runs on one host: the first of ANIMATEFLOW_HOSTS (default 0.33.0), or your own ComfyUI via COMFYUI_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
hosts=$(ANIMATEFLOW_HOSTS=${ANIMATEFLOW_HOSTS:-0.33.0} bash "$ROOT/scripts/setup.sh")
IFS=$'\t' read -r _ venv comfy <<< "${hosts%%$'\n'*}"
COMFYUI_DIR=${comfy#COMFYUI_DIR=} exec "${venv#VENV=}/bin/python" "$ROOT/scripts/demo.py" "$@"
