#!/usr/bin/env bash
# Sets up every host (idempotent) and runs the tests inside each real ComfyUI: the whole suite on the first host
# of ANIMATEFLOW_HOSTS (default "0.33.0,0.3.75"), the host tier (`-m host`) on each further one. Extra arguments go
# to pytest on every host, e.g. `bash scripts/test.sh tests/test_foundation.py -x` or `bash scripts/test.sh -m
# "not host"` (the fast tier). ANIMATEFLOW_HOSTS=0.3.75 runs the whole suite on that host alone; COMFYUI_DIR=<tree>
# on your own ComfyUI. Hosts share the generated models (.work/test-models); each has its own test base folder.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${ANIMATEFLOW_WORK:-$ROOT/.work}
cd "$ROOT"

ready=$(bash scripts/setup.sh --with-browser)
mapfile -t hosts <<< "$ready"
[ -n "$ready" ] || { echo "[test] no host was set up" >&2; exit 1; }

models=$WORK/test-models
mkdir -p "$models"
failed=()
summary=()
for i in "${!hosts[@]}"; do
    IFS=$'\t' read -r name venv comfy <<< "${hosts[$i]}"
    name=${name#HOST=} venv=${venv#VENV=} comfy=${comfy#COMFYUI_DIR=}
    base=${ANIMATEFLOW_TEST_BASE:-$WORK/test-base}
    [ "$i" = 0 ] || base=$base-$name
    mkdir -p "$base"
    [ -e "$base/models" ] || ln -s "$models" "$base/models"
    tier=()
    [ "$i" = 0 ] || tier=(-m host)
    echo "[test] ComfyUI $name ($comfy): pytest ${tier[*]} $*" >&2
    started=$SECONDS
    code=0
    COMFYUI_DIR=$comfy ANIMATEFLOW_TEST_BASE=$base ANIMATEFLOW_HOST=$name \
        "$venv/bin/python" -m pytest "${tier[@]}" "$@" || code=$?
    # A further host's tier may select none of the tests asked for (exit 5): that is not a failure.
    if [ "$code" != 0 ] && { [ "$i" = 0 ] || [ "$code" != 5 ]; }; then
        failed+=("$name")
    fi
    summary+=("ComfyUI $name: ${tier[*]:-whole suite}, exit $code, $((SECONDS - started)) s")
done
printf '[test] %s\n' "${summary[@]}" >&2
if [ "${#failed[@]}" -gt 0 ]; then
    echo "[test] failed on: ${failed[*]}" >&2
    exit 1
fi
