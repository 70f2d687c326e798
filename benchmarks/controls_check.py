"""GPU checks of the sampling controls (issue 21), on the lent device (see NOTES.md for the command).

Prints, for a random SD1.5-architecture UNet in fp16 with a random v2 motion module, 16 frames at 512², euler:
- the fast path with a per-frame / per-pixel motion scale and with attention_key_scale against the eager path
  (one UNet evaluation, relative error; tolerance 1e-2 as for the fast path itself);
- the live preview's cost: seconds per step with it on and off (its sends going to a sink), and the time one
  preview takes;
- per-frame noise on CUDA: the first 16 frames of a 32-frame render against the 16-frame render, ComfyUI's noise
  and per-frame noise (euler_ancestral, no motion module, so frames are independent);
- FreeInit: three iterations cost about three samplings and stay finite.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.run import conditioning, random_unet, sample_steps  # noqa: E402
from scripts import fixtures, inprocess  # noqa: E402

log = logging.getLogger("controls")


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[controls] %(message)s")
    pack = inprocess.start(None, host_args=())
    call = inprocess.call_node
    import comfy.model_management as mm
    import comfy.sample
    import comfy.sd
    import folder_paths

    device = mm.get_torch_device()
    live_preview = inprocess.pack_module(pack, "sampling.live_preview")
    fast_path_of = inprocess.pack_module(pack, "motion.inject").fast_path_of
    scale_schedule = inprocess.pack_module(pack, "motion.scale_schedule")
    models_dir = Path(tempfile.mkdtemp(prefix="animateflow-controls-"))
    folder_paths.add_model_folder_path("animatediff_models", str(models_dir), is_default=True)
    fixtures.ensure_motion_module(models_dir, "v2")
    plain = comfy.sd.load_diffusion_model_state_dict(random_unet(fixtures.sd15_unet_config(), 0, device),
                                                     model_options={"dtype": torch.float16})
    (motion,) = call("AnimateFlow_LoadMotionModule", model_name=fixtures.MOTION_MODULE_FILES["v2"])[:1]
    cond = (conditioning(77, 768, device, seed=1), conditioning(77, 768, device, seed=2))
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}")

    yy, xx = torch.meshgrid(torch.linspace(0, 1, 512), torch.linspace(0, 1, 512), indexing="ij")
    schedule = scale_schedule.MotionScaleSchedule(keyframes=((0, 1.0), (8, 0.3), (15, 1.4)), down=0.8, up=1.2,
                                                  mask=(xx * 0.7 + yy * 0.3)[None])

    def apply(fast_path: str, **extra):
        return call("AnimateFlow_ApplyMotionModule", model=plain, motion_module=motion, motion_scale=1.0,
                    beta_schedule="auto", fast_path=fast_path, live_preview=False, **extra)[0]

    for label, extra in (("per-frame/per-pixel motion scale", {"motion_scale_schedule": schedule}),
                         ("attention_key_scale 1.5", {"attention_key_scale": 1.5})):
        _, _, reference = sample_steps(apply("off", **extra), 16, 512, 1, cond)
        fast = apply("auto", **extra)
        sample_steps(fast, 16, 512, 1, cond)  # its shapes start compiling
        fast_path_of(fast).wait()
        _, _, result = sample_steps(fast, 16, 512, 1, cond)
        _, _, unscaled = sample_steps(apply("off"), 16, 512, 1, cond)
        error = relative(result, reference)
        print(f"fast path, {label}: relative error to eager {error:.2e} (tolerance 1e-2), effect of the control "
              f"{relative(reference, unscaled):.2e}, finite {bool(torch.isfinite(result).all())}: "
              f"{'PASS' if error < 1e-2 else 'FAIL'}")

    class Sink:
        client_id, last_node_id = "bench", "1"

        def __init__(self):
            self.sizes = []

        def send_sync(self, event, data, sid=None):
            self.sizes.append(len(data["image"]))

    sink = Sink()
    inprocess.pack_module(pack, "host.server").prompt_server = lambda: sink
    fast = apply("off")  # eager: the preview's cost is the same on either path, and eager needs no compile
    previewed = call("AnimateFlow_ApplyMotionModule", model=plain, motion_module=motion, motion_scale=1.0,
                     beta_schedule="auto", fast_path="off", live_preview=True)[0]
    frames_x0 = torch.randn(16, 4, 64, 64, device=device)
    previewer = live_preview.previewer_for(previewed)
    for _ in range(3):
        live_preview.sheet(live_preview.render_frames(previewer, frames_x0))
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(10):
        live_preview.sheet(live_preview.render_frames(previewer, frames_x0))
    one_preview = (time.perf_counter() - started) / 10
    sample_steps(fast, 16, 512, 3, cond)
    sample_steps(previewed, 16, 512, 3, cond)
    rows = {}
    for label, model in (("off", fast), ("on", previewed), ("off again", fast), ("on again", previewed)):
        times, _, _ = sample_steps(model, 16, 512, 20, cond)
        rows[label] = statistics.median(times[2:])
    off = min(rows["off"], rows["off again"])
    on = min(rows["on"], rows["on again"])
    print(f"live preview (16 f 512², eager, 20 steps): s/step off {rows['off']:.4f} / {rows['off again']:.4f}, "
          f"on {rows['on']:.4f} / {rows['on again']:.4f} -> +{(on / off - 1) * 100:.1f}% per step; one preview "
          f"(16 frames, {type(previewer).__name__}, JPEG sheet) {one_preview * 1000:.1f} ms = "
          f"{one_preview / off * 100:.1f}% of a step; {len(sink.sizes)} previews sent, "
          f"~{statistics.median(sink.sizes) / 1024:.0f} KiB each")

    def render(model, frames: int, mode: str | None):
        m = model if mode is None else call("AnimateFlow_PerFrameNoise", model=model, mode=mode)[0]
        latent = torch.zeros(frames, 4, 64, 64)
        noise = comfy.sample.prepare_noise(latent, 7)
        return comfy.sample.sample(m, noise, 4, 7.5, "euler_ancestral", "normal", *cond, latent, denoise=1.0, seed=7,
                                   disable_pbar=True).float()

    for mode in ("comfyui", "per_frame"):
        short, long = render(plain, 16, mode), render(plain, 32, mode)
        print(f"noise mode {mode} on CUDA (euler_ancestral, plain UNet): first 16 of 32 frames vs the 16-frame "
              f"render, relative difference {relative(long[:16], short):.2e}")

    for iterations in (1, 3):
        model = call("AnimateFlow_FreeInit", model=fast, iterations=iterations, filter="butterworth", d_s=0.25,
                     d_t=0.25, order=4, coarse_to_fine=False)[0]
        torch.cuda.synchronize()
        started = time.perf_counter()
        _, _, out = sample_steps(model, 16, 512, 10, cond)
        print(f"FreeInit {iterations} iteration(s), 10 steps: {time.perf_counter() - started:.2f} s, "
              f"finite {bool(torch.isfinite(out).all())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
