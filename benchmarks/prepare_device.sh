#!/usr/bin/env bash
# Builds .device/ (ignored by git), what the GPU benchmark carries to the lent device machine, which has
# Python 3.12 with torch but no network: the ComfyUI tree without its tests, API nodes and large tokenizers
# (about 7 MB), cp312 wheels of the packages it lacks (av, torchsde, trampoline), imageio-ffmpeg's Python
# sources without the ffmpeg binary (the benchmark encodes no video; the carry limit is 64 MiB), and the leading
# pack's source archive (anchors/, ~0.2 MB; the device cannot see ../shared).
#
# Usage: bash benchmarks/prepare_device.sh [DEST]      DEST defaults to <this checkout>/.device
#   ANIMATEFLOW_CARRY_PACK=1 also copies this checkout's pack into DEST/pack, for a helper whose worktree is not the
#   checkout the device tool sends: the device then runs `python3 .device/pack/benchmarks/run.py`.
#   COMFYUI_DIR names the ComfyUI tree to carry (default <this checkout>/.work/comfyui, made by scripts/setup.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${1:-$ROOT/.device}
COMFY=${COMFYUI_DIR:-$ROOT/.work/comfyui}
[ -d "$COMFY" ] || bash "$ROOT/scripts/setup.sh" >/dev/null
SITE=$(ls -d "$(dirname "$COMFY")"/venv/lib/python3*/site-packages 2>/dev/null || ls -d "$ROOT"/.work/venv/lib/python3*/site-packages)
ANCHOR=${ANIMATEFLOW_ANCHOR:-$ROOT/../shared/anchors/comfyui-animatediff-evolved-d8d163c.tar.gz}
[ -f "$ANCHOR" ] || ANCHOR=/work/shared/anchors/comfyui-animatediff-evolved-d8d163c.tar.gz

rm -rf "$DEST" && mkdir -p "$DEST/whl" "$DEST/pysrc" "$DEST/anchors"
cp -a "$COMFY" "$DEST/comfyui"
rm -rf "$DEST"/comfyui/{tests,tests-unit,comfy_api_nodes} "$DEST"/comfyui/comfy/text_encoders/*_tokenizer
find "$DEST/comfyui" -name __pycache__ -prune -exec rm -rf {} +
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DEST/whl" av==16.1.0 torchsde trampoline
cp -r "$SITE/imageio_ffmpeg" "$DEST/pysrc/"
rm -rf "$DEST"/pysrc/imageio_ffmpeg/binaries/*ffmpeg* "$DEST"/pysrc/imageio_ffmpeg/__pycache__
cp "$ANCHOR" "$DEST/anchors/"
if [ "${ANIMATEFLOW_CARRY_PACK:-0}" = 1 ]; then
    mkdir -p "$DEST/pack"
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard | grep -zv '^tests/artifacts/' |
        (cd "$ROOT" && xargs -0 cp --parents -t "$DEST/pack")
fi
du -sh "$DEST"
