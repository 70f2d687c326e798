"""Motion LoRAs: a v2 LoRA on mid-less modules (mid block skipped and reported), MotionDirector's layout, the raw
and PEFT forms, and clear errors for a LoRA that patches nothing or has other shapes. Small modules (channels
divided by 10) in a real ComfyUI UNet; the full-size files go through the prompt API in test_bad_inputs.py."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from conftest import MODELS, pack_module
from motion_helpers import SHRINK, run_unet, small_lora_state_dict, small_motion

import nodes
from scripts import fixtures

loader = pack_module("motion.loader")
apply = pack_module("nodes.motion_apply")
lora = pack_module("motion.lora")
formats = pack_module("motion.formats")

NODE = "AnimateFlow_MotionLoRALoader"


def patched_weights(module) -> dict[str, torch.Tensor]:
    module.patcher.patch_model()
    try:
        return {k: v.clone() for k, v in module.model.state_dict().items()}
    finally:
        module.patcher.unpatch_model()


def motion_director_targets(sd: dict[str, torch.Tensor]) -> dict[str, tuple[str, str]]:
    """Module weight → (up key, down key), written out by hand from AnimateDiff-MotionDirector's naming."""
    targets = {}
    for down in (k for k in sd if k.endswith(".down.weight")):
        up = down[: -len("down.weight")] + "up.weight"
        layer = down[: -len(".down.weight")]
        for saved, original in ((".to_out.processor.0_lora", ".to_out.0"), (".ff.net.0.processor.proj_lora", ".ff.net.0.proj"),
                                (".ff.net.processor.2_lora", ".ff.net.2")):
            if layer.endswith(saved):
                layer = layer[: -len(saved)] + original
                break
        else:
            parent, name = layer.rsplit(".processor.", 1)
            layer = f"{parent}.{name[: -len('_lora')]}"
        targets[layer + ".weight"] = (up, down)
    return targets



@pytest.mark.parametrize("fmt", ["v1", "v3"])
def test_v2_lora_on_a_mid_less_module_skips_the_mid_block_and_says_so(fmt, small_model):
    motion, lora_sd = small_motion(fmt), small_lora_state_dict(SHRINK)
    fit = lora.fit_lora(motion, lora_sd, "v2_lora_PanLeft.ckpt")
    assert len(fit.skipped) == 8 and all(k.startswith("mid_block.") for k in fit.skipped)
    assert len(fit.pairs) == 20 * 8
    assert "skipped 8 mid-block layers" in fit.describe() and "160 layers patched" in fit.describe()
    patched = lora.apply_fit(motion, fit, 0.7)
    weights, original = patched_weights(patched), motion.model.state_dict()
    key = "up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.attention_blocks.0.to_out.0.weight"
    proc = "up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.attention_blocks.0.processor."
    want = original[key] + 0.7 * lora_sd[proc + "to_out_lora.up.weight"] @ lora_sd[proc + "to_out_lora.down.weight"]
    torch.testing.assert_close(weights[key], want)
    x = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(4, 77, 32, generator=torch.Generator().manual_seed(1))
    plain = run_unet(apply.apply_motion_module(small_model, motion, beta_schedule="sd"), x, context, [0])
    moved = run_unet(apply.apply_motion_module(small_model, patched, beta_schedule="sd"), x, context, [0])
    assert torch.isfinite(moved).all() and not torch.allclose(plain, moved)


@pytest.mark.parametrize("fmt", ["v3", "v2"])
def test_motion_director_lora_patches_attention_and_feed_forward(fmt):
    motion = small_motion(fmt)
    lora_sd = fixtures.motion_director_lora_state_dict("v3", rank=4, shrink=SHRINK)
    targets = motion_director_targets(lora_sd)
    assert len(targets) == 20 * 10  # per module: q, k, v, out of two attentions, the feed-forward's two layers
    fit = lora.fit_lora(motion, lora_sd, "motion_director.safetensors")
    assert fit.skipped == () and set(fit.pairs) == set(targets)
    weights, original = patched_weights(lora.apply_fit(motion, fit, -0.5)), motion.model.state_dict()
    for key, (up, down) in targets.items():
        torch.testing.assert_close(weights[key], original[key] - 0.5 * lora_sd[up] @ lora_sd[down], msg=key)
    untouched = [k for k in original if k not in targets]
    assert all(torch.equal(weights[k], original[k]) for k in untouched)


def test_raw_and_peft_forms_name_the_same_layers():
    lora_sd = fixtures.motion_director_lora_state_dict("v3", rank=4, shrink=SHRINK)
    targets = motion_director_targets(lora_sd)
    raw, peft = {}, {}
    for key, (up, down) in targets.items():
        layer = key[: -len(".weight")]
        raw[f"{layer}.lora_up.weight"], raw[f"{layer}.lora_down.weight"] = lora_sd[up], lora_sd[down]
        peft[f"{layer}.lora_B.weight"], peft[f"{layer}.lora_A.weight"] = lora_sd[up], lora_sd[down]
    motion = small_motion("v3")
    for sd in (raw, peft):
        assert set(lora.fit_lora(motion, sd, "lora.safetensors").pairs) == set(targets)


def test_loras_that_fit_nothing_fail_clearly():
    motion = small_motion("v3")
    mid_only = {k: v for k, v in small_lora_state_dict(SHRINK).items() if k.startswith("mid_block.")}
    with pytest.raises(formats.MotionFormatError, match=r"^mid\.safetensors patches none of the layers of the "
                                                         r"motion module small_v3") as error:
        lora.fit_lora(motion, mid_only, "mid.safetensors")
    assert error.value.input == "lora_name" and "v2 LoRAs fit v1, v2 and v3" in error.value.fix
    with pytest.raises(formats.MotionFormatError, match=r"does not fit .* other shapes .* made for SD1\.5"):
        lora.fit_lora(small_motion("v2"), small_lora_state_dict(SHRINK // 2), "big.safetensors")
    with pytest.raises(formats.MotionFormatError, match="is not a motion LoRA"):
        lora.fit_lora(motion, {"lora_unet_down_blocks_0.alpha": torch.ones(1)}, "sd_lora.safetensors")
    with pytest.raises(formats.MotionFormatError, match="damaged"):
        half = {k: v for k, v in small_lora_state_dict(SHRINK).items() if k.endswith("down.weight")}
        lora.fit_lora(motion, half, "half.safetensors")


@pytest.fixture
def small_lora_files():
    folder = MODELS / "animatediff_motion_lora"
    files = {"v2": folder / "test_small_v2_lora.safetensors", "md": folder / "test_small_md_lora.safetensors"}
    safetensors.torch.save_file(small_lora_state_dict(SHRINK), str(files["v2"]))
    safetensors.torch.save_file(fixtures.motion_director_lora_state_dict("v3", rank=4, shrink=SHRINK), str(files["md"]))
    yield {k: p.name for k, p in files.items()}
    for path in files.values():
        path.unlink(missing_ok=True)


def test_node_reports_what_it_skipped(small_lora_files, caplog):
    cls = nodes.NODE_CLASS_MAPPINGS[NODE].PREPARE_CLASS_CLONE({})
    v3 = small_motion("v3")
    with caplog.at_level("WARNING"):
        result = cls.EXECUTE_NORMALIZED(motion_module=v3, lora_name=small_lora_files["v2"], strength=1.0)
    text = result.ui.as_dict()["text"][0]
    assert "test_small_v2_lora.safetensors: 160 layers patched on small_v3; skipped 8 mid-block layers" in text
    assert text in caplog.text
    assert result.args[0].name == "small_v3 + test_small_v2_lora.safetensors"
    result = cls.EXECUTE_NORMALIZED(motion_module=v3, lora_name=small_lora_files["md"], strength=1.0)
    assert result.ui.as_dict()["text"][0] == "test_small_md_lora.safetensors: 200 layers patched on small_v3"
