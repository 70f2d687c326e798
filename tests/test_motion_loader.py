"""Motion module files: safe loading, nesting/prefix tolerance, format detection from keys alone."""

from __future__ import annotations

import os
import pickle

import folder_paths
import pytest
import torch
from conftest import MODELS, call_node, pack_module

from motion_helpers import layout_state_dict

from scripts import fixtures

loader = pack_module("motion.loader")
formats = pack_module("motion.formats")
model = pack_module("motion.model")



EXPECTED = {
    "v1": ("v1", "SD1.5", False, 24, True),
    "v14": ("v1", "SD1.5", False, 24, True),
    "v2": ("v2", "SD1.5", True, 32, False),
    "v3": ("v3", "SD1.5", False, 32, False),
    "animatelcm": ("AnimateLCM", "SD1.5", True, 64, False),
    "sdxl": ("SDXL", "SDXL", False, 32, False),
    "hotshot": ("HotShot-XL", "SDXL", False, 24, False),
    # AnimateDiff-Lightning is laid out like v2 (its file name, not its keys, says Lightning: see
    # test_distilled_modules.py); its _diffusers file is diffusers' MotionAdapter layout of the same.
    "lightning4": ("v2", "SD1.5", True, 32, False),
    "lightning4_diffusers": ("v2", "SD1.5", True, 32, False),
}


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_every_format_detected_from_keys(fmt):
    name, family, mid, pe, over_frames = EXPECTED[fmt]
    sd, found = formats.canonical_state_dict(layout_state_dict(fmt, meta=True), "x")
    assert found.name.startswith(name)
    assert found.family == family
    assert found.layout.has_mid == mid
    assert found.layout.pe_length == pe
    assert found.groupnorm_over_frames == over_frames
    assert found.layout.down_channels == ((320, 640, 1280) if family == "SDXL" else (320, 640, 1280, 1280))
    assert all(".temporal_transformer." in k for k in sd)


def test_loaded_weights_match_file_and_missing_pe_is_recomputed(tmp_path):
    sd = layout_state_dict("v2", shrink=10)
    dropped = [k for k in sd if k.endswith("pos_encoder.pe")][:3]
    for k in dropped:
        del sd[k]
    mm = loader.build_motion_module(dict(sd), "v2-without-some-pe", dtype=torch.float32)
    loaded = mm.model.state_dict()
    for k, v in sd.items():
        assert torch.equal(loaded[k], v), k
    for k in dropped:
        assert torch.allclose(loaded[k], fixtures.sinusoidal_encoding(32, loaded[k].shape[-1]))


def test_animatelcm_encoding_is_recomputed_with_length_64():
    mm = loader.build_motion_module(layout_state_dict("animatelcm", shrink=10), "lcm", dtype=torch.float32)
    pe = mm.model.down_blocks[1].motion_modules[0].temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder.pe
    assert pe.shape == (1, 64, 64)
    assert torch.allclose(pe, fixtures.sinusoidal_encoding(64, 64))


@pytest.mark.parametrize("wrap", ["state_dict", "module", "prefix", "both"])
def test_nesting_and_module_prefix_are_unwrapped(tmp_path, wrap):
    sd = layout_state_dict("v3", shrink=10)
    if wrap in ("prefix", "both"):
        sd = {"module." + k: v for k, v in sd.items()}
    obj = {"state_dict": sd, "epoch": 3} if wrap in ("state_dict", "both") else sd
    if wrap == "module":
        obj = {"module": sd}
    path = tmp_path / "mm.ckpt"
    torch.save(obj, path)
    out = loader.read_state_dict(str(path))
    _, fmt = formats.canonical_state_dict(out, "mm.ckpt")
    assert fmt.name.startswith("v3")


class _Evil:
    """Unpickling this would run a shell command that leaves a marker file: a loader must refuse it."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/animateflow_pwned_marker",))


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker = "/tmp/animateflow_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil_motion.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {"x": _Evil()}}, f)
    with pytest.raises(loader.UnsafeCheckpointError, match="evil_motion.ckpt") as error:
        loader.read_state_dict(str(path))
    assert error.value.input == "model_name" and ".safetensors" in error.value.fix
    assert not os.path.exists(marker)


def test_not_a_motion_module_is_a_clear_error():
    with pytest.raises(formats.MotionFormatError, match="not an AnimateDiff motion module"):
        formats.canonical_state_dict({"something.else.weight": torch.ones(3)}, "other.safetensors")
    with pytest.raises(formats.MotionFormatError, match="sd15.safetensors is a full Stable Diffusion checkpoint.*"
                                                        "Load Checkpoint"):
        formats.canonical_state_dict({"model.diffusion_model.out.0.weight": torch.ones(3)}, "sd15.safetensors")


@pytest.mark.parametrize("fmt", ["v1", "v2", "animatelcm"])
def test_load_node_returns_module_and_description(motion_module_file, fmt):
    name = motion_module_file(fmt)
    module, description = call_node("AnimateFlow_LoadMotionModule", model_name=name)
    assert description == module.format.describe()
    assert EXPECTED[fmt][0] in description
    assert str(MODELS / "animatediff_models") in str(folder_paths.get_folder_paths("animatediff_models"))
