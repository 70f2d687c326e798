"""Distilled motion modules (AnimateDiff-Lightning, AnimateLCM) load, are recognised where the files allow it, and
Load Motion Module recommends the sampling they were trained for; files of other families are named in the error
with the node to use instead."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from conftest import MODELS, call_node, pack_module
from motion_helpers import SHRINK, layout_state_dict, small_motion

from scripts import family_fixtures, fixtures

loader = pack_module("motion.loader")
formats = pack_module("motion.formats")



def test_lightning_comfyui_files_are_v2_laid_out():
    lightning = layout_state_dict("lightning4", meta=True)
    v2 = layout_state_dict("v2", meta=True)
    assert {k: tuple(v.shape) for k, v in lightning.items()} == {k: tuple(v.shape) for k, v in v2.items()}
    assert len(lightning) == 588


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_lightning_is_recognised_by_file_name_and_recommends_its_sampling(steps):
    module = small_motion("lightning4", name=f"animatediff_lightning_{steps}step_comfyui.safetensors")
    fmt = module.format
    assert fmt.name.startswith(f"AnimateDiff-Lightning {steps}-step") and "file name" in fmt.name
    assert fmt.default_betas == "animatediff" and fmt.layout.has_mid and fmt.layout.pe_length == 32
    text = fmt.describe()
    assert "sampler euler, scheduler sgm_uniform" in text and "cfg 1.0" in text
    assert f"{steps if steps != 2 else '2 (3 also works well)'} steps" in text


def test_lightning_by_metadata_and_a_plain_v2_stays_v2():
    renamed = small_motion("lightning4", name="my_motion.safetensors",
                           metadata={"modelspec.title": "AnimateDiff-Lightning 8-step"})
    assert renamed.format.name.startswith("AnimateDiff-Lightning 8-step") and "metadata" in renamed.format.name
    plain = small_motion("v2", name="mm_sd_v15_v2.safetensors", metadata={"animateflow_fixture": "lightning 4 step"})
    assert plain.format.name == "v2 (mm_sd_v15_v2 layout)" and plain.format.recommendation is None


def test_diffusers_layout_loads_as_the_same_weights():
    """A diffusers MotionAdapter file (Lightning's _diffusers files) converts to exactly its official twin."""
    official = small_motion("lightning4", name="animatediff_lightning_4step_comfyui.safetensors")
    converted = small_motion("lightning4_diffusers", name="animatediff_lightning_4step_diffusers.safetensors")
    assert converted.format.name.startswith("AnimateDiff-Lightning 4-step")
    theirs, ours = converted.model.state_dict(), official.model.state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)


def test_a_real_diffusers_motion_adapter_state_dict_converts_completely():
    diffusers = pytest.importorskip("diffusers")
    adapter = diffusers.MotionAdapter(block_out_channels=(32, 64, 128, 128), motion_norm_num_groups=32,
                                      use_motion_mid_block=True, motion_max_seq_length=32)
    sd = {k: v.detach() for k, v in adapter.state_dict().items()}
    module = loader.build_motion_module(sd, "diffusion_pytorch_model.safetensors", dtype=torch.float32)
    assert module.format.name == "v2 (mm_sd_v15_v2 layout)"
    ours = module.model.state_dict()
    key = "down_blocks.1.motion_modules.1.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_k.weight"
    assert torch.equal(ours[key], sd["down_blocks.1.motion_modules.1.transformer_blocks.0.attn2.to_k.weight"])
    key = "up_blocks.0.motion_modules.2.temporal_transformer.transformer_blocks.0.ff_norm.weight"
    assert torch.equal(ours[key], sd["up_blocks.0.motion_modules.2.transformer_blocks.0.norm3.weight"])


def test_animatelcm_recommends_lcm_sampling():
    fmt = small_motion("animatelcm", name="AnimateLCM_sd15_t2v.ckpt").format
    assert fmt.name == "AnimateLCM" and fmt.default_betas == "lcm" and fmt.layout.has_mid
    assert "sampler lcm, scheduler sgm_uniform, 4-8 steps, cfg 1.0-2.0" in fmt.describe()


FAMILY_ERRORS = {
    "cameractrl": ("CameraCtrl", "Load AnimateDiff+CameraCtrl Model"),
    "pia": ("PIA", "Apply AnimateDiff-PIA Model"),
    "sparsectrl": ("SparseCtrl", "Load SparseCtrl Model"),
    "animatelcm_i2v": ("AnimateLCM-I2V", "Apply AnimateLCM-I2V Model"),
    "v3_adapter": ("v3_sd15_adapter", "LoraLoaderModelOnly"),
    "image_lora": ("an image LoRA", "LoraLoaderModelOnly"),
    "motion_lora": ("a motion LoRA", "motion LoRA loader"),
    "checkpoint": ("Stable Diffusion checkpoint", "Load Checkpoint"),
}


@pytest.mark.parametrize("family", family_fixtures.FAMILIES)
def test_other_families_are_named_with_the_node_to_use(family):
    family_name, instead = FAMILY_ERRORS[family]
    sd = family_fixtures.family_state_dict(family, meta=True)
    with pytest.raises(formats.MotionFormatError) as err:
        formats.canonical_state_dict(sd, family_fixtures.FILES[family])
    message = str(err.value)
    assert family_name in message and instead in message and family_fixtures.FILES[family] in message


def _write(name: str, sd: dict[str, torch.Tensor]) -> str:
    path = MODELS / "animatediff_models" / name
    if not path.exists():
        safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, str(path),
                                    metadata=fixtures.STAND_IN_METADATA)
    return name


def test_load_motion_module_node_reports_recommendations_and_family_errors():
    name = _write("animatediff_lightning_2step_comfyui.safetensors",
                  {k: v.half() for k, v in layout_state_dict("lightning4", shrink=SHRINK).items()})
    module, text = call_node("AnimateFlow_LoadMotionModule", model_name=name)
    assert "AnimateDiff-Lightning 2-step" in text and "sampler euler, scheduler sgm_uniform" in text
    assert module.format.recommendation is not None
    pia = _write(family_fixtures.FILES["pia"], family_fixtures.family_state_dict("pia", shrink=SHRINK))
    with pytest.raises(formats.MotionFormatError, match="PIA model.*Apply AnimateDiff-PIA Model"):
        call_node("AnimateFlow_LoadMotionModule", model_name=pia)
