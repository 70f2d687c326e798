"""The foundation: the pack inside a real ComfyUI, the random-weight fixtures, the set-up."""

from __future__ import annotations

import os
import subprocess
import tomllib

import pytest
import torch
from conftest import REPO_ROOT, call_node

from scripts import fixtures


def test_random_checkpoint_is_detected_as_sd15(sd15):
    model, clip, vae = sd15
    assert type(model.model.model_config).__name__ == "SD15"
    assert model.model.diffusion_model.model_channels == 320


def test_random_checkpoint_samples_a_latent(sd15):
    model, clip, vae = sd15
    (positive,) = call_node("CLIPTextEncode", clip=clip, text="a red fox running through snow")
    (negative,) = call_node("CLIPTextEncode", clip=clip, text="")
    (latent,) = call_node("EmptyLatentImage", width=64, height=64, batch_size=1)
    (sampled,) = call_node("KSampler", model=model, seed=1, steps=1, cfg=7.5, sampler_name="euler",
                           scheduler="normal", positive=positive, negative=negative, latent_image=latent, denoise=1.0)
    assert sampled["samples"].shape == (1, 4, 8, 8)
    assert torch.isfinite(sampled["samples"]).all()
    (image,) = call_node("VAEDecode", samples=sampled, vae=vae)
    assert image.shape == (1, 64, 64, 3)
    assert torch.isfinite(image).all()


def test_fixtures_are_deterministic():
    # Every tensor comes from its key and the seed alone, whatever the channel count: a shrunk module proves it
    # without building two full-size ones (1.8 GB each).
    a = fixtures.motion_module_state_dict("v2", seed=3, shrink=10)
    b = fixtures.motion_module_state_dict("v2", seed=3, shrink=10)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    proj_out = [v for k, v in a.items() if k.endswith("proj_out.weight")]
    assert proj_out and all(v.abs().max() > 0 for v in proj_out), "a zero proj_out makes the module an identity"


@pytest.mark.parametrize("fmt, modules, pe_length", [("v1", 20, 24), ("v2", 21, 32), ("v3", 20, 32)])
def test_fixture_motion_modules_have_official_layout(fmt, modules, pe_length):
    sd = fixtures.motion_module_state_dict(fmt, meta=True)
    assert len(sd) == modules * 28
    pe = sd["down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"]
    assert pe.shape == (1, pe_length, 320)
    assert ("mid_block.motion_modules.0.temporal_transformer.proj_in.weight" in sd) == (fmt == "v2")


def test_server_lists_our_nodes_with_tooltips(server):
    info = server.object_info()
    ours = {name: spec for name, spec in info.items() if name.startswith("AnimateFlow_")}
    assert ours, "the pack's nodes are missing from /object_info"
    assert not any(name.startswith(("ADE_", "VHS_")) for name in ours)
    for name, spec in ours.items():
        assert spec["category"].split("/")[0] == "AnimateDiff", name  # the combined nodes: AnimateDiff/from other packs
        assert spec["description"], f"{name} has no description"
        assert "(AnimateFlow)" in spec["display_name"], name
        for section in ("required", "optional"):
            for input_name, entry in spec["input"].get(section, {}).items():
                options = entry[1] if len(entry) > 1 else {}
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_pyproject_has_registry_tables():
    """What the Comfy Registry reads, as the host's own parser of it (comfy_config) reads it: the classifiers it
    keeps, the URLs, the ComfyUI range, and an icon that is a file of this repository within the registry's size."""
    import re

    from comfy_config.config_parser import extract_node_configuration

    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert data["project"]["name"]
    assert data["tool"]["comfy"]["PublisherId"]
    assert "GNU GENERAL PUBLIC LICENSE" in (REPO_ROOT / "LICENSE").read_text()[:200]
    parsed = extract_node_configuration(str(REPO_ROOT))
    assert parsed.project.supported_os == ["OS Independent"]
    assert parsed.project.supported_accelerators == ["GPU :: NVIDIA CUDA"], "an unknown accelerator drops them all"
    assert parsed.project.supported_comfyui_version == ">=0.3.75"
    urls = parsed.project.urls
    assert all(u.startswith(urls.repository) for u in (urls.documentation, urls.issues)) and urls.repository
    icon = parsed.tool_comfy.icon
    prefix = urls.repository.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    assert icon.startswith(prefix), icon
    svg = (REPO_ROOT / icon.removeprefix(prefix)).read_text()
    width, height = (int(re.search(rf'{side}="(\d+)"', svg).group(1)) for side in ("width", "height"))
    assert width <= 800 and height <= 400, "the registry takes icons up to 800 × 400"


def test_setup_second_run_installs_nothing():
    host = os.environ.get("ANIMATEFLOW_HOST")
    if not host:
        pytest.skip("runs under scripts/test.sh, which set this host up (ANIMATEFLOW_HOST names it)")
    env = dict(os.environ)
    if host != "custom":  # a named host: set up by name, not as "your own ComfyUI"
        env.pop("COMFYUI_DIR", None)
        env["ANIMATEFLOW_HOSTS"] = host
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup.sh")], check=True, capture_output=True,
                          text=True, env=env)
    assert "installing" not in done.stderr and "fetching" not in done.stderr, done.stderr
    assert done.stdout.startswith(f"HOST={host}\t"), done.stdout


def test_readme_node_reference_is_current(server):
    from scripts import node_reference

    readme = (REPO_ROOT / "README.md").read_text()
    current = node_reference.replace_block(readme, node_reference.render(server.object_info()))
    assert readme == current, "README's node reference is stale: run scripts/node_reference.py"
