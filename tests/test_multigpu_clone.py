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
from motion_helpers import SMALL_CONTEXT_DIM, layout_state_dict, small_sd15_model

import comfy.model_management
import comfy.model_patcher

if not hasattr(comfy.model_patcher.ModelPatcher, "deepclone_multigpu"):
    pytest.skip("this host has no multigpu cloning (ComfyUI 0.33.0 added it)", allow_module_level=True)

import comfy.multigpu  # noqa: E402

loader = pack_module("motion.loader")
apply = pack_module("motion.apply")
inject = pack_module("motion.inject")
ContextOptions = pack_module("sampling.context_options").ContextOptions

SECOND = torch.device("cpu", 0)


def small_base():
    base = small_sd15_model()
    base.cached_patcher_init = (lambda **_: small_sd15_model(), ())
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
    (out,) = call_node("MultiGPU_WorkUnits", model=model, max_gpus=max_gpus)
    return out


def clones_seen(model) -> list:
    """The device clones a sampling of `model` would use."""
    return [m.load_device for m in model.get_additional_models_with_key("multigpu")]


def test_multigpu_cfg_split_node_samples_the_same_frames(motion, two_cpus):
    model = patched(motion)
    reference = sample(model, 8)
    split_model = split(model)
    assert clones_seen(split_model) == [SECOND]
    assert torch.equal(sample(split_model, 8), reference)


def test_split_before_apply_motion_module_also_clones_the_motion_module(motion, two_cpus):
    """MultiGPU CFG Split placed before Apply Motion Module: the host matches the clones when sampling starts."""
    reference = sample(patched(motion), 8)
    split_first = apply.apply_motion_module(split(small_base()), motion, beta_schedule="sd", fast_mode="off")
    assert torch.equal(sample(split_first, 8), reference)


@pytest.mark.parametrize("cfg", [1.0, 2.0])
def test_windows_spread_over_devices_give_the_frames_of_one_device(motion, two_cpus, cfg):
    """20 frames in windows of 8 (4 windows per step), spread over the two devices: the same bits as one device,
    at cfg 1 (one cond per window, which core's own split cannot spread) as well."""
    one = sample(patched(motion, ContextOptions(context_length=8, context_overlap=2)), 20, cfg=cfg, steps=2)
    model = split(patched(motion, ContextOptions(context_length=8, context_overlap=2, spread_over_gpus=True)))
    handler = model.model_options["context_handler"]
    assert torch.equal(sample(model, 20, cfg=cfg, steps=2), one)
    assert handler._spread.meter is not None and all(s is not None for s in handler._spread.meter.speeds)
