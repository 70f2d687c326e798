"""Our patched models through core's multigpu clone (ComfyUI 0.33.0's ModelPatcher.deepclone_multigpu and the
MultiGPU CFG Split node), on the CPU.

This machine has one device, so a second one is the CPU under another name: `torch.device("cpu", 0)` is a different
key to the host's per-device bookkeeping but places tensors on the CPU; where a test must see that layers moved with
their clone, the clone goes to the meta device. The small SD1.5-shaped model gets a `cached_patcher_init` like core's
checkpoint loader gives its models (it rebuilds the same random weights).
"""

from __future__ import annotations

import pytest
import torch

from conftest import call_node, pack_module
from scripts.inprocess import run_v3_node
from motion_helpers import SMALL_CONTEXT_DIM, layout_state_dict, small_sd15_model

import comfy.model_management
import comfy.model_patcher

if not hasattr(comfy.model_patcher.ModelPatcher, "deepclone_multigpu"):
    pytest.skip("this host has no multigpu cloning (ComfyUI 0.33.0 added it)", allow_module_level=True)

loader = pack_module("motion.loader")
apply = pack_module("nodes.motion_apply")
inject = pack_module("motion.inject")
scale_schedule = pack_module("motion.scale_schedule")
ContextOptions = pack_module("sampling.context_options").ContextOptions

SECOND = torch.device("cpu", 0)


_weights: dict[str, torch.Tensor] = {}


def small_base():
    """The small model, with a factory that builds it again from the same weights (as core's loaders re-read the
    file); the random weights are drawn once per module."""
    if not _weights:
        _weights.update(small_sd15_model().model.diffusion_model.state_dict())
    base = small_sd15_model(_weights)
    base.cached_patcher_init = (lambda **_: small_sd15_model(_weights), ())
    return base


@pytest.fixture(scope="module")
def motion():
    return loader.build_motion_module(layout_state_dict("v2", shrink=10), "small_v2", dtype=torch.float32)


def patched(motion, context_options=None, scale_schedule=None):
    return apply.apply_motion_module(small_base(), motion, beta_schedule="sd", fast_mode="off",
                                     context_options=context_options, scale_schedule=scale_schedule)


def motion_layers(unet) -> list:
    model_module = pack_module("motion.model")
    return [m for m in unet.modules() if isinstance(m, model_module.VanillaTemporalModule)]


def test_the_motion_module_has_a_multigpu_factory(motion):
    fresh = motion.patcher.cached_patcher_init[0](*motion.patcher.cached_patcher_init[1])
    assert fresh.model is not motion.model
    for (name, a), (_, b) in zip(motion.model.state_dict().items(), fresh.model.state_dict().items()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), name


def test_deep_clone_injects_its_own_motion_layers_on_its_own_device(motion):
    model = patched(motion)
    clone = model.deepclone_multigpu(new_load_device=torch.device("meta"))
    (original_motion,) = model.get_additional_models_with_key(inject.KEY)
    (clone_motion,) = clone.get_additional_models_with_key(inject.KEY)
    assert clone_motion.model is not original_motion.model
    assert clone_motion.load_device == torch.device("meta")

    clone_motion.patch_model(device_to=clone_motion.load_device)
    clone.patch_model(device_to=clone.load_device)
    try:
        layers = motion_layers(clone.model.diffusion_model)
        original_ids = {id(m) for m in motion_layers(original_motion.model)}
        assert len(layers) == len(motion_layers(clone_motion.model)) > 0
        assert {id(m) for m in layers} == {id(m) for m in motion_layers(clone_motion.model)}
        assert not original_ids & {id(m) for m in layers}
        assert all(p.device.type == "meta" for m in layers for p in m.parameters())
        assert all(p.device.type == "cpu" for p in original_motion.model.parameters())
        assert motion_layers(model.model.diffusion_model) == []  # the original UNet was not touched
    finally:
        clone.unpatch_model()
        clone_motion.unpatch_model()
    assert motion_layers(clone.model.diffusion_model) == []


def prompts(frames: int):
    positive = [[torch.arange(frames, dtype=torch.float32).reshape(frames, 1, 1).expand(
        frames, 77, SMALL_CONTEXT_DIM).clone(), {}]]
    negative = [[torch.full((1, 77, SMALL_CONTEXT_DIM), -1.0), {}]]
    return positive, negative


def sample(model, frames: int, cfg: float = 2.0, steps: int = 1) -> torch.Tensor:
    positive, negative = prompts(frames)
    latent = {"samples": torch.zeros(frames, 4, 4, 4)}
    out = call_node("KSampler", model=model, seed=5, steps=steps, cfg=cfg, sampler_name="euler", scheduler="normal",
                    positive=positive, negative=negative, latent_image=latent, denoise=1.0)[0]["samples"]
    assert torch.isfinite(out).all()
    return out


@pytest.fixture
def two_cpus(monkeypatch):
    """The host sees two devices: the CPU and the CPU under a second name."""
    monkeypatch.setattr(comfy.model_management, "get_all_torch_devices",
                        lambda exclude_current=False: [torch.device("cpu"), SECOND])
    yield
    comfy.model_management.unload_all_models()


def split(model, max_gpus: int = 2):
    """Core's MultiGPU CFG Split node (MultiGPU_WorkUnits; a built-in extra node, which the in-process host does not
    register, so it runs by its class)."""
    from comfy_extras.nodes_multigpu import MultiGPUCFGSplitNode

    return run_v3_node(MultiGPUCFGSplitNode, model=model, max_gpus=max_gpus).result[0]


def clones_seen(model) -> list:
    """The device clones a sampling of `model` would use."""
    return [m.load_device for m in model.get_additional_models_with_key("multigpu")]


def count_calls(motion_model) -> list[int]:
    """How often the motion layers of this motion model instance ran (a forward hook; nothing else changes)."""
    calls = [0]

    def seen(*_):
        calls[0] += 1

    for layer in motion_layers(motion_model):
        layer.register_forward_hook(seen)
    return calls


def device_motion_models(split_model) -> list:
    (clone,) = split_model.get_additional_models_with_key("multigpu")
    return [m.get_additional_models_with_key(inject.KEY)[0].model for m in (split_model, clone)]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.fixture(scope="module")
def reference(motion):
    """8 frames of the patched model on one device."""
    return sample(patched(motion), 8)


def test_multigpu_cfg_split_node_samples_the_same_frames(motion, reference, two_cpus):
    """Cond on one device, uncond on the other, each through its own clone's motion layers: the frames of one
    device up to rounding (cond and uncond run as separate calls of half the batch)."""
    split_model = split(patched(motion))
    assert clones_seen(split_model) == [SECOND]
    main_motion, clone_motion = device_motion_models(split_model)
    assert main_motion is not clone_motion
    main_calls, clone_calls = count_calls(main_motion), count_calls(clone_motion)
    out = sample(split_model, 8)
    assert main_calls[0] > 0 and clone_calls[0] > 0
    assert relative_error(out, reference) < 1e-5


def test_split_before_apply_motion_module_also_clones_the_motion_module(motion, reference, two_cpus):
    """MultiGPU CFG Split placed before Apply Motion Module: the host matches the clones when sampling starts."""
    split_first = apply.apply_motion_module(split(small_base()), motion, beta_schedule="sd", fast_mode="off")
    assert relative_error(sample(split_first, 8), reference) < 1e-5
    main_motion, clone_motion = device_motion_models(split_first)  # the clone got its own copy when sampling began
    assert main_motion is not clone_motion


@pytest.mark.parametrize("cfg", [1.0, 2.0])
def test_windows_spread_over_devices_give_the_frames_of_one_device(motion, two_cpus, cfg):
    """12 frames in windows of 8 (two windows per step), spread over the two devices, each window through its
    device's own motion layers: the same bits as one device, at cfg 1 (one cond per window, which core's own split
    cannot spread) as well; per-block motion scales apply to each clone's layers as to the original's."""
    blocks = scale_schedule.MotionScaleSchedule(down=0.0, up=2.0)  # per-block scales must follow the clone's layers
    one = sample(patched(motion, ContextOptions(context_length=8, context_overlap=4), blocks), 12, cfg=cfg)
    model = split(patched(motion, ContextOptions(context_length=8, context_overlap=4, spread_over_gpus=True), blocks))
    counts = [count_calls(m) for m in device_motion_models(model)]
    assert torch.equal(sample(model, 12, cfg=cfg), one)
    assert all(c[0] > 0 for c in counts)
    meter = model.model_options["context_handler"]._spread.meter
    assert meter is not None and all(s is not None for s in meter.speeds)  # each device was timed
