#!/usr/bin/env bash
# Builds .device/ (ignored by git), what the GPU benchmarks carry to the lent device machine (Python 3.12 with
# torch 2.11 and no network; one call carries at most 64 MiB):
#   hosts.tar.xz   the ComfyUI trees as new/ (COMFYUI_NEW, default 0.33.0) and old/ (COMFYUI_OLD, default 0.3.75),
#                  without tests, API nodes, subgraph blueprints and other families' tokenizers (~3 MB packed);
#   site312.tar.xz cp312 builds of what those hosts need and the device lacks, unpacked as a site folder (~37 MB
#                  packed): comfy-aimdo (dynamic VRAM), PyAV 18, kornia, pydantic(-settings), SQLAlchemy, alembic,
#                  blake3, simpleeval, torchsde, trampoline, …; comfy-kitchen without its compiled CUDA/HIP
#                  backends (176 MB + 59 MB; ComfyUI imports it but uses it only for fp8/fp4 weights and
#                  --use-ck-attention, which these runs never ask for); imageio-ffmpeg without its ffmpeg binary;
#   anchors/       the leading pack's source archive (the device cannot see ../shared);
#   pack/          with ANIMATEFLOW_CARRY_PACK=1, this checkout's files (for a helper whose worktree is not the
#                  checkout the device tool sends).
# On the device: unpack both archives into one folder, PYTHONPATH=<folder>/site312, run the benchmark from pack/
# (benchmarks/NOTES.md has the commands).
#
# Usage: bash benchmarks/prepare_device.sh [DEST]      DEST defaults to <this checkout>/.device
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${1:-$ROOT/.device}
NEW=${COMFYUI_NEW:-$ROOT/.work/comfyui-0.33.0}
OLD=${COMFYUI_OLD:-$ROOT/.work/comfyui}
SITE_SRC=$(ls -d "$(dirname "$NEW")"/venv-0.33.0/lib/python3*/site-packages 2>/dev/null | head -1)
ANCHOR=${ANIMATEFLOW_ANCHOR:-$ROOT/../shared/anchors/comfyui-animatediff-evolved-d8d163c.tar.gz}
[ -f "$ANCHOR" ] || ANCHOR=/work/shared/anchors/comfyui-animatediff-evolved-d8d163c.tar.gz
WHEELS="comfy-kitchen==0.2.31 comfy-aimdo==0.4.13 av==18.1.0 blake3==1.0.11 simpleeval==1.0.8
pydantic-settings==2.16.3 pydantic==2.14.4 pydantic-core==2.50.5 sqlalchemy==2.1.9 alembic==1.20.1 mako==1.4.3
torchsde==0.2.6 trampoline==0.1.2 python-dotenv==1.2.4 typing-inspection==0.4.5 annotated-types==0.8.0
greenlet==3.5.6 kornia==0.9.0 kornia-rs==0.2.0"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DEST/anchors" "$work/whl" "$work/site312" "$work/trees"
cp -a "$NEW" "$work/trees/new"
cp -a "$OLD" "$work/trees/old"
for tree in "$work"/trees/*; do
    rm -rf "$tree"/{tests,tests-unit,comfy_api_nodes,blueprints,.git,.github} "$tree"/comfy/text_encoders/*_tokenizer
    find "$tree" -name __pycache__ -prune -exec rm -rf {} +
done
tar -C "$work/trees" -cf - new old | xz -T0 -6 > "$DEST/hosts.tar.xz"

# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
    -d "$work/whl" $WHEELS
for wheel in "$work"/whl/*.whl; do
    unzip -q -o "$wheel" -d "$work/site312" -x 'comfy_kitchen/backends/cuda/_C.abi3.so' \
        'comfy_kitchen/backends/hip/_C.abi3.so'
done
if [ -n "$SITE_SRC" ] && [ -d "$SITE_SRC/imageio_ffmpeg" ]; then
    cp -r "$SITE_SRC/imageio_ffmpeg" "$work/site312/"
    rm -rf "$work"/site312/imageio_ffmpeg/binaries/*ffmpeg* "$work"/site312/imageio_ffmpeg/__pycache__
fi
tar -C "$work" -cf - site312 | xz -T0 -6 > "$DEST/site312.tar.xz"
cp "$ANCHOR" "$DEST/anchors/"
if [ "${ANIMATEFLOW_CARRY_PACK:-0}" = 1 ]; then
    rm -rf "$DEST/pack" && mkdir -p "$DEST/pack"
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard | grep -zv '^tests/artifacts/' |
        (cd "$ROOT" && xargs -0 cp --parents -t "$DEST/pack")
fi
du -sh "$DEST"
