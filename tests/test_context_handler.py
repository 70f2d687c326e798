"""The context handler inside a real ComfyUI sampler, with cheap stand-ins where the full UNet would prove nothing.

Most tests sample the small SD1.5-shaped model (tests/motion_helpers.py) with a `model_function_wrapper` stand-in
in place of its UNet: it records what each call saw (frames, published indices, conditioning rows, ControlNet hints)
and mixes frames within each video the way a temporal layer does, so a wrong window boundary changes the output.
One test runs the real small UNet with a small motion module. Nothing here loads the SD1.5 fixture: no lock needed.
"""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import call_node, pack_module
from motion_helpers import SMALL_CONTEXT_DIM, small_motion

keys = pack_module("host.transformer_options")
handler_module = pack_module("sampling.context_handler")
fuse_module = pack_module("sampling.context_fuse")
schedules = pack_module("sampling.context_schedules")
conds_module = pack_module("sampling.context_conds")
ContextOptions = pack_module("sampling.context_options").ContextOptions
loader = pack_module("motion.loader")
apply = pack_module("nodes.motion_apply")



class StandIn:
    """A model_function_wrapper: records each call and returns 0.8·x + 0.2·(mean of its video) + a cond term."""

    def __init__(self, nan_frame: int | None = None):
        self.calls: list[dict] = []
        self.nan_frame = nan_frame

    def __call__(self, apply_model, args):
        x, c = args["input"], args["c"]
        options = c["transformer_options"]
        frames = options.get(keys.FRAMES_PER_VIDEO) or x.shape[0] // len(args["cond_or_uncond"])
        context = c["c_crossattn"]
        self.calls.append({"batch": x.shape[0], "frames_per_video": frames, "cond_or_uncond": list(args["cond_or_uncond"]),
                           "ad_params": copy.deepcopy(options.get(keys.AD_PARAMS)),
                           "windows": copy.deepcopy(options.get(keys.WINDOWS)),
                           "rows": context[:, 0, 0].round().long().tolist()})
        videos = x.reshape(-1, frames, *x.shape[1:])
        mixed = videos.mean(dim=1, keepdim=True).expand_as(videos).reshape(x.shape)
        out = 0.8 * x + 0.2 * mixed + 0.01 * context.mean(dim=(1, 2)).reshape(-1, 1, 1, 1)
        if self.nan_frame is not None and options.get(keys.AD_PARAMS):
            sub = options[keys.AD_PARAMS]["sub_idxs"]
            if self.nan_frame in sub:
                out[sub.index(self.nan_frame)] = float("nan")
        return out


def options(**kwargs) -> ContextOptions:
    return ContextOptions(**({"context_length": 16, "context_overlap": 4} | kwargs))


def windowed(small_model, stand_in: StandIn | None, **kwargs):
    opts = call_node("AnimateFlow_ContextOptions", **({"context_length": 16, "context_stride": 1,
                                                        "context_overlap": 4, "closed_loop": False,
                                                        "schedule": "uniform", "fuse_method": "pyramid"} | kwargs))[0]
    model = call_node("AnimateFlow_SetContextOptions", model=small_model, context_options=opts)[0]
    if stand_in is not None:
        model.set_model_unet_function_wrapper(stand_in)
    return model


def per_frame_prompt(frames: int) -> list:
    """Conditioning whose row f is the constant f (so a call's rows say which frames it got), like Prompt Travel."""
    return [[torch.arange(frames, dtype=torch.float32).reshape(frames, 1, 1).expand(frames, 77, SMALL_CONTEXT_DIM)
             .clone(), {}]]


def negative_prompt() -> list:
    return [[torch.full((1, 77, SMALL_CONTEXT_DIM), -1.0), {}]]


def sample(model, frames: int, steps: int = 1, positive=None, negative=None, seed: int = 3, sampler="euler"):
    latent = {"samples": torch.zeros(frames, 4, 4, 4)}
    out = call_node("KSampler", model=model, seed=seed, steps=steps, cfg=2.0, sampler_name=sampler,
                    scheduler="normal", positive=positive or per_frame_prompt(frames),
                    negative=negative or negative_prompt(), latent_image=latent, denoise=1.0)[0]["samples"]
    assert out.shape[0] == frames
    return out


def test_default_options_27_frames_20_steps_end_finite_with_every_frame_in_a_window(small_model):
    """Issue 17's black video: defaults (16 / overlap 4, uniform, pyramid) on 27 frames went all NaN by step 20."""
    stand_in = StandIn()
    out = sample(windowed(small_model, stand_in), 27, steps=20)
    assert torch.isfinite(out).all()
    steps: dict[int, set] = {}
    for call in stand_in.calls:
        steps.setdefault(call["windows"]["step"], set()).update(call["ad_params"]["sub_idxs"])
    assert sorted(steps) == list(range(20))
    assert all(frames == set(range(27)) for frames in steps.values())


def test_nan_from_the_model_fails_naming_the_node_and_settings(small_model):
    with pytest.raises(handler_module.ContextWindowError) as error:
        sample(windowed(small_model, StandIn(nan_frame=5)), 20)
    message = str(error.value)
    assert message.startswith("Set Context Options: the model returned NaN/inf for frames [5] at step 0 (20 frames, "
                              "context_length 16, context_overlap 4, context_stride 1, schedule uniform,")
    assert "check the inputs upstream" in error.value.fix


def test_each_call_publishes_its_frames_and_gets_its_slice_of_per_frame_conds(small_model):
    """ad_params as the leading pack fills it, our key beside it, and the per-frame conditioning rows of exactly
    those frames (the travel continues across windows, it never restarts)."""
    stand_in = StandIn()
    frames, steps = 30, 3
    sample(windowed(small_model, stand_in, max_batched_windows=1), frames, steps=steps)
    by_step: dict[int, list] = {}
    for call in stand_in.calls:
        ad, ours = call["ad_params"], call["windows"]
        assert ad["full_length"] == frames and ad["context_length"] == len(ad["sub_idxs"]) == 16
        assert ours["windows"] == [ad["sub_idxs"]] and ours["full_length"] == frames
        assert call["frames_per_video"] == 16
        # cond rows are the window's frames; the uncond is one prompt for all
        assert call["rows"] == [r for half in call["cond_or_uncond"] for r in (ad["sub_idxs"] if half == 0 else [-1] * 16)]
        by_step.setdefault(ours["step"], []).append(ad["sub_idxs"])
    for step, windows in by_step.items():
        assert windows == schedules.context_windows("uniform", frames, 16, 4, 1, step, False)


def test_windows_shift_with_the_steps_the_sampler_reports(small_model):
    """The layout follows the sampler's step count as the leading pack keeps it: dpm_2 reports a step after its
    first evaluation and evaluates again at a sigma between two steps, which then gets the next step's layout (a
    count by sigma would give it the earlier one)."""
    stand_in = StandIn()
    sample(windowed(small_model, stand_in, max_batched_windows=1), 30, steps=4, sampler="dpm_2")
    layouts = {step: schedules.context_windows("uniform", 30, 16, 4, 1, step, False) for step in range(5)}
    evaluations, i = [], 0
    while i < len(stand_in.calls):
        step = stand_in.calls[i]["windows"]["step"]
        count = len(layouts[step])
        assert [c["ad_params"]["sub_idxs"] for c in stand_in.calls[i:i + count]] == layouts[step]
        evaluations.append(step)
        i += count
    assert evaluations == [0, 1, 1, 2, 2, 3, 3]  # dpm_2's last step evaluates once (its next sigma is 0)


@pytest.mark.parametrize("schedule, stride", [("uniform", 1), ("looped", 2), ("static", 1)])
def test_batched_windows_equal_unbatched(small_model, schedule, stride):
    """Several windows per call, split at window boundaries: the same bits as one window per call."""
    one, several = StandIn(), StandIn()
    kwargs = {"schedule": schedule, "context_stride": stride, "context_length": 8, "context_overlap": 2}
    single = sample(windowed(small_model, one, max_batched_windows=1, **kwargs), 37, steps=3)
    batched = sample(windowed(small_model, several, max_batched_windows=4, **kwargs), 37, steps=3)
    assert torch.equal(single, batched)
    assert max(call["batch"] for call in several.calls) > 2 * 8
    for call in several.calls:
        ad, windows = call["ad_params"], call["windows"]["windows"]
        assert ad["sub_idxs"] == [i for w in windows for i in w] and 1 <= len(windows) <= 4
        assert call["batch"] == 2 * 8 * len(windows) and call["frames_per_video"] == 8


def test_batched_windows_equal_unbatched_through_the_small_unet_and_motion_module(small_model):
    """The real UNet with a v2-layout motion module: its temporal attention must see each window on its own."""
    motion = small_motion("v2")

    def model(limit):
        opts = options(context_length=8, context_overlap=2, max_batched_windows=limit)
        return apply.apply_motion_module(small_model, motion, beta_schedule="sd", context_options=opts, fast_mode="off")

    single = sample(model(1), 20, steps=2)
    batched = sample(model(3), 20, steps=2)
    assert torch.isfinite(single).all()
    assert torch.equal(batched, single)


def test_auto_batching_keeps_the_estimated_peak_within_three_percent(small_model, monkeypatch):
    import comfy.model_management

    model = small_model.model
    x = torch.zeros(64, 4, 4, 4)
    conds = [object(), object()]
    auto = handler_module.AnimateFlowContextHandler(options(max_batched_windows=0))
    per_window = model.memory_required([2 * 16, 4, 4, 4])
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    k = auto.windows_per_call(model, x, conds, windows=100)
    assert weights + k * per_window <= 1.03 * (weights + per_window)
    assert weights + (k + 1) * per_window > 1.03 * (weights + per_window)
    raised = handler_module.AnimateFlowContextHandler(options(max_batched_windows=50))
    assert raised.windows_per_call(model, x, conds, windows=100) == 50
    assert raised.windows_per_call(model, x, conds, windows=7) == 7
    monkeypatch.setattr(comfy.model_management, "get_free_memory", lambda *a, **k: 2.5 * per_window)
    assert raised.windows_per_call(model, x, conds, windows=100) == 1  # free memory caps even a raised limit


def test_per_frame_conditioning_of_another_length_fails_before_the_first_step(small_model):
    stand_in = StandIn()
    with pytest.raises(conds_module.FrameCountError) as error:
        sample(windowed(small_model, stand_in), 20, positive=per_frame_prompt(16))
    assert str(error.value) == (
        "Set Context Options: the positive conditioning holds 16 per-frame entries (cross_attn) but the latent batch "
        "has 20 frames; make the per-frame conditioning (a prompt schedule's frames) 20 frames long, or the latent "
        "batch size 16.")
    assert error.value.input == "positive"
    assert stand_in.calls == []


class HintRecorder(torch.nn.Module):
    """A ControlNet model that records the hint each call gets and adds nothing."""

    def __init__(self):
        super().__init__()
        self.dtype = torch.float32
        self.hints: list[list[int]] = []

    def forward(self, x, hint, timesteps, context, **kwargs):
        self.hints.append((hint[:, 0, 0, 0] * 100).round().long().tolist())
        return {}


def controlled(frames: int, hint_frames: int):
    import comfy.controlnet
    recorder = HintRecorder()
    control = comfy.controlnet.ControlNet(recorder, load_device=torch.device("cpu"))
    images = (torch.arange(hint_frames, dtype=torch.float32) / 100).reshape(hint_frames, 1, 1, 1).expand(
        hint_frames, 32, 32, 3).clone()
    positive, negative = call_node("ControlNetApplyAdvanced", positive=per_frame_prompt(frames),
                                   negative=negative_prompt(), control_net=control, image=images, strength=1.0,
                                   start_percent=0.0, end_percent=1.0)
    return recorder, positive, negative


@pytest.mark.parametrize("limit", [1, 3])
def test_controlnet_hints_are_prepared_once_per_frame_and_cut_per_call(small_model, monkeypatch, limit):
    import comfy.utils

    preparations = []
    upscale = comfy.utils.common_upscale

    def counting(samples, *args, **kwargs):
        preparations.append(samples.shape[0])
        return upscale(samples, *args, **kwargs)

    monkeypatch.setattr(comfy.utils, "common_upscale", counting)
    frames, steps = 30, 4
    recorder, positive, negative = controlled(frames, frames)
    stand_in = StandIn()
    out = sample(windowed(small_model, stand_in, max_batched_windows=limit), frames, steps=steps, positive=positive,
                 negative=negative)
    assert torch.isfinite(out).all()
    assert len(recorder.hints) == len(stand_in.calls)
    for hint, call in zip(recorder.hints, stand_in.calls):
        assert hint == call["ad_params"]["sub_idxs"] * 2  # cond and uncond halves get the call's frames
    first_step = [c for c in stand_in.calls if c["windows"]["step"] == 0]
    assert len(preparations) == len(first_step), "hints are prepared in the first step only, once per call"
    assert positive[0][1]["control"].cond_hint_original.shape[0] == frames  # the user's conditioning is untouched


def small_controlnet():
    """A real (cldm) ControlNet of the small UNet's shape, random weights: cheap, and rounds like the real one."""
    import comfy.cldm.cldm
    import comfy.controlnet
    import comfy.ops
    from motion_helpers import small_unet_config

    config = {k: v for k, v in small_unet_config().items()
              if k not in ("out_channels", "transformer_depth_output", "use_temporal_attention",
                           "use_temporal_resblock")}
    net = comfy.cldm.cldm.ControlNet(hint_channels=3, operations=comfy.ops.disable_weight_init, device="cpu",
                                     dtype=torch.float32, **config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) / max(1, param[0].numel()) ** 0.5)
    return comfy.controlnet.ControlNet(net, load_device=torch.device("cpu"))


def test_reusing_prepared_hints_gives_the_same_bits_as_preparing_every_call(small_model, monkeypatch):
    frames = 20
    images = torch.rand(frames, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    positive, negative = call_node("ControlNetApplyAdvanced", positive=per_frame_prompt(frames),
                                   negative=negative_prompt(), control_net=small_controlnet(), image=images,
                                   strength=1.0, start_percent=0.0, end_percent=1.0)
    model = windowed(small_model, None, max_batched_windows=1)
    reused = sample(model, frames, steps=2, positive=positive, negative=negative)
    monkeypatch.setattr(conds_module._Prepared, "lookup", lambda self, window: None)
    prepared_every_call = sample(model, frames, steps=2, positive=positive, negative=negative)
    assert torch.isfinite(reused).all()
    assert torch.equal(reused, prepared_every_call)


def test_window_slices_keep_the_memory_layout():
    """Apply ControlNet hands hints as a channels-last view of the IMAGE batch; a contiguous copy would make the
    ControlNet's convolutions round differently from the unwindowed run."""
    images = torch.rand(20, 8, 8, 3).movedim(-1, 1)
    part = fuse_module.FrameWindow([3, 4, 5, 5]).get_tensor(images)
    assert torch.equal(part, images[[3, 4, 5, 5]])
    assert part.is_contiguous(memory_format=torch.channels_last) and not part.is_contiguous()


def test_controlnet_hint_batch_of_another_length_fails_before_the_first_step(small_model):
    recorder, positive, negative = controlled(20, 12)
    stand_in = StandIn()
    with pytest.raises(conds_module.FrameCountError) as error:
        sample(windowed(small_model, stand_in), 20, positive=positive, negative=negative)
    message = str(error.value)
    assert message.startswith("Set Context Options: a ControlNet image batch (") and "holds 12 frames" in message
    assert error.value.fix == "give the ControlNet 20 images (one per frame) or a single image for all frames."
    assert stand_in.calls == [] and recorder.hints == []


PATCHING_NODES = {
    "Apply Motion Module": ("AnimateFlow_ApplyMotionModule", lambda: {
        "motion_module": small_motion("v2"), "motion_scale": 1.0, "beta_schedule": "sd", "fast_path": "off"}),
    "Per-Frame Noise": ("AnimateFlow_PerFrameNoise", lambda: {"mode": "per_frame"}),
    "FreeInit": ("AnimateFlow_FreeInit", lambda: {"iterations": 2, "filter": "butterworth", "d_s": 0.25,
                                                  "d_t": 0.25, "order": 4, "coarse_to_fine": False}),
}


@pytest.mark.parametrize("name", list(PATCHING_NODES))
def test_per_frame_batches_are_checked_without_windows_too(small_model, name):
    """Issue 26: without windows the host repeats a 16-entry Prompt Travel over 24 frames (`repeat_to_batch_size`),
    frames 16-23 getting frames 0-7's prompts, and reports success. Every model a node of ours patched refuses it
    before the first step, naming the node; a batch of the right length gives each frame its own row."""
    node_id, inputs = PATCHING_NODES[name]
    patched = call_node(node_id, model=small_model, **inputs())[0]
    stand_in = StandIn()
    patched.set_model_unet_function_wrapper(stand_in)
    with pytest.raises(conds_module.FrameCountError) as error:
        sample(patched, 24, positive=per_frame_prompt(16))
    assert str(error.value) == (
        f"{name}: the positive conditioning holds 16 per-frame entries (cross_attn) but the latent batch has 24 "
        "frames; make the per-frame conditioning (a prompt schedule's frames) 24 frames long, or the latent batch "
        "size 16.")
    assert stand_in.calls == []
    assert torch.isfinite(sample(patched, 24)).all()
    assert stand_in.calls
    for call in stand_in.calls:
        positive = call["cond_or_uncond"].index(0)
        assert call["rows"][24 * positive:24 * (positive + 1)] == list(range(24))


def _execute(handler, x: torch.Tensor, outputs):
    """Run the handler directly with a calc_cond_batch that returns `outputs(call_number, sub_x)`."""
    calls = []

    def calc_cond_batch(model, conds, sub_x, timestep, model_options):
        calls.append(sub_x)
        return [outputs(len(calls) - 1, sub_x)]

    sigmas = torch.tensor([10.0, 5.0, 0.0])
    result = handler.execute(calc_cond_batch, None, [None], x, torch.full((x.shape[0],), 10.0),
                             {"transformer_options": {"sample_sigmas": sigmas}})
    return result[0], calls


def test_overwrite_fuse_is_the_originals_later_window_wins():
    """The original extension (animatediff_infv2v.py): x_out[window] = model(x[window]) for each window in order."""
    x = torch.randn(40, 4, 2, 2)
    for schedule, stride in (("uniform", 1), ("uniform", 3), ("looped", 2), ("static", 1)):
        handler = handler_module.AnimateFlowContextHandler(
            options(fuse_method="overwrite", schedule=schedule, context_stride=stride, max_batched_windows=1))
        result, calls = _execute(handler, x, lambda n, sub: sub * (n + 2))
        reference = torch.zeros_like(x)
        for n, window in enumerate(schedules.context_windows(schedule, 40, 16, 4, stride, 0, False)):
            reference[window] = x[window] * (n + 2)
        assert torch.equal(result, reference), (schedule, stride)


def test_weighted_fuse_is_the_indexed_sum_bit_for_bit():
    """Where windows hold no frame twice, index_add gives exactly the leading pack's `sums[idx] += out * w`."""
    x = torch.randn(40, 4, 8, 8)
    handler = handler_module.AnimateFlowContextHandler(options(max_batched_windows=1))
    result, _ = _execute(handler, x, lambda n, sub: torch.sin(sub * (n + 1)))
    sums, counts = torch.zeros_like(x), torch.zeros(40, 1, 1, 1)
    weights = torch.Tensor(schedules.fuse_weights("pyramid", 16)).reshape(16, 1, 1, 1)
    for n, window in enumerate(schedules.context_windows("uniform", 40, 16, 4, 1, 0, False)):
        sums[window] += torch.sin(x[window] * (n + 1)) * weights
        counts[window] += weights
    assert torch.equal(result, sums / counts)


def test_a_frame_twice_in_a_window_counts_twice():
    """Dilated windows longer than the video hold frames twice; indexed `+=` would drop one contribution."""
    fuse = fuse_module.WindowFuse("flat", torch.zeros(4, 1), 1)
    fuse.add(fuse_module.FrameWindow([0, 1, 1, 3]), [torch.tensor([[1.0], [2.0], [4.0], [8.0]])])
    fuse.add(fuse_module.FrameWindow([1, 2]), [torch.tensor([[6.0], [5.0]])])
    assert fuse.result()[0].flatten().tolist() == [1.0, 4.0, 5.0, 8.0]  # frame 1: (2 + 4 + 6) / 3


def test_a_frame_in_no_window_is_refused_not_divided_by_zero():
    fuse = fuse_module.WindowFuse("pyramid", torch.zeros(5, 1), 1)
    fuse.add(fuse_module.FrameWindow([0, 1, 2]), [torch.ones(3, 1)])
    with pytest.raises(fuse_module.UncoveredFramesError, match=r"\[3, 4\]"):
        fuse.result()
