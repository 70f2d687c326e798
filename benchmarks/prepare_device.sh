#!/usr/bin/env bash
# Builds .device/ (ignored by git), what the GPU benchmark carries to the lent device machine, which has
# Python 3.12 with torch but no network: the ComfyUI tree without its tests, API nodes and large tokenizers
# (about 7 MB), cp312 wheels of the packages it lacks (av, torchsde, trampoline), and imageio-ffmpeg's Python
# sources without the ffmpeg binary (the benchmark encodes no video; the carry limit is 64 MiB).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh" >/dev/null
DEST=$ROOT/.device
SITE=$(ls -d "$ROOT"/.work/venv/lib/python3*/site-packages)
COMFY=${COMFYUI_DIR:-$ROOT/.work/comfyui}

rm -rf "$DEST" && mkdir -p "$DEST/whl" "$DEST/pysrc"
cp -a "$COMFY" "$DEST/comfyui"
rm -rf "$DEST"/comfyui/{tests,tests-unit,comfy_api_nodes} "$DEST"/comfyui/comfy/text_encoders/*_tokenizer
find "$DEST/comfyui" -name __pycache__ -prune -exec rm -rf {} +
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DEST/whl" av==16.1.0 torchsde trampoline
cp -r "$SITE/imageio_ffmpeg" "$DEST/pysrc/"
rm -rf "$DEST"/pysrc/imageio_ffmpeg/binaries/*ffmpeg* "$DEST"/pysrc/imageio_ffmpeg/__pycache__
du -sh "$DEST"
