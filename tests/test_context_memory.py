"""Peak memory of windowed sampling stays flat as the frame count grows (decisions.md, "Memory").

Each measurement runs in a fresh child process: the models are loaded first, then the peak-RSS counter
(VmHWM) is reset through /proc/self/clear_refs, so the peak covers the sampling step alone (with the
resident weights, as the decision defines it). The step's own growth over the resident baseline is
reported too, since the weights dominate the absolute numbers.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from memory_probe import PROBE

# Each child loads the full-size checkpoint: the host tier, though no fixture says so.
pytestmark = pytest.mark.host

TESTS_DIR = Path(__file__).resolve().parent

CHILD = PROBE + r"""
import json, sys
tests_dir, frames, size, windows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
sys.path.insert(0, tests_dir)
import conftest  # rewrites sys.argv for ComfyUI's argument parser
from conftest import call_node
from scripts import fixtures

fixtures.ensure_sd15_checkpoint(conftest.MODELS / "checkpoints")
model, clip, _ = call_node("CheckpointLoaderSimple", ckpt_name=fixtures.SD15_CHECKPOINT)
positive = call_node("CLIPTextEncode", clip=clip, text="a cat walking")[0]
negative = call_node("CLIPTextEncode", clip=clip, text="blurry")[0]
if windows:
    options = call_node("AnimateFlow_ContextOptions", context_length=16, context_stride=1, context_overlap=4,
                        closed_loop=False, schedule="uniform", fuse_method="pyramid")[0]
    model = call_node("AnimateFlow_SetContextOptions", model=model, context_options=options)[0]
latent = call_node("EmptyLatentImage", width=size, height=size, batch_size=frames)[0]

# Warm-up at the smallest size loads the weights onto the (CPU) device, so the measured step loads nothing.
call_node("KSampler", model=model, seed=0, steps=1, cfg=2.0, sampler_name="euler", scheduler="normal",
          positive=positive, negative=negative,
          latent_image=call_node("EmptyLatentImage", width=size, height=size, batch_size=1)[0], denoise=1.0)
reset_peak()
base = status("VmRSS")
out = call_node("KSampler", model=model, seed=0, steps=1, cfg=2.0, sampler_name="euler", scheduler="normal",
                positive=positive, negative=negative, latent_image=latent, denoise=1.0)[0]["samples"]
assert out.shape[0] == frames and bool(out.isfinite().all())
print("RESULT " + json.dumps({"base": base, "peak": status("VmHWM")}))
"""


def measure(frames: int, size: int = 32, windows: bool = True) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(TESTS_DIR), str(frames), str(size), "1" if windows else "0"],
                          cwd=TESTS_DIR.parent, capture_output=True, text=True, timeout=1200)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc/self/clear_refs")
def test_peak_memory_flat_from_32_to_200_frames():
    small, large = measure(32), measure(200)
    growth = large["peak"] / small["peak"] - 1
    step_small, step_large = small["peak"] - small["base"], large["peak"] - large["base"]
    print(f"peak RSS 32 frames {small['peak'] / 2**20:.0f} MiB, 200 frames {large['peak'] / 2**20:.0f} MiB "
          f"(+{growth:.1%}); step above resident: {step_small / 2**20:.0f} -> {step_large / 2**20:.0f} MiB")
    assert growth <= 0.10
