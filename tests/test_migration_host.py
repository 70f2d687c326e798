"""Migration inside a real ComfyUI: our side of the table matches the server's schemas, the host lists our node
replacements (0.14+), workflows of theirs queue and render through the prompt API, the editor's endpoint gives
replaced nodes their values (equality with the leading pack: test_migration_equality.py).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import safetensors.torch
import torch
from PIL import Image

from migration.convert import convert_api
from migration.registration import replacement_fields
from migration.table import RULES
from migration.targets import TARGETS
from scripts import workflows

pytestmark = pytest.mark.host

REPO_ROOT = Path(__file__).resolve().parent.parent
FRAMES = 10
SIZE = 64


def _host_has_replacements() -> bool:
    from comfy_api.latest import io as comfy_io

    return hasattr(comfy_io, "NodeReplace")


def test_targets_match_the_servers_schemas(server):
    """The converter lays out widgets and sockets from migration/targets.py; they must be the server's."""
    info = server.object_info()
    for name, target in TARGETS.items():
        specs = workflows._input_specs(info[name])
        widgets = [(n, e) for n, e in specs if workflows._is_widget(e) and not (len(e) > 1 and e[1].get("forceInput"))]
        assert [n for n, _ in widgets] == list(target.widget_names()), name
        for (widget, entry), (_, default) in zip(widgets, target.widgets):
            if default is not None:
                assert entry[1].get("default") == default, (name, widget)
            assert not workflows._has_control(entry), (name, widget)  # no hidden control_after_generate value
        sockets = [(n, e[0]) for n, e in specs if not workflows._is_widget(e)]
        assert sockets == list(target.sockets), name
        assert list(zip(info[name]["output_name"], info[name]["output"])) == list(target.outputs), name


def test_node_replacements_are_listed(server):
    """On 0.14+ the host serves every rule at /node_replacements, as the editor's missing-nodes dialog reads it;
    on older hosts nothing is registered and the pack loads as before."""
    try:
        with urllib.request.urlopen(server.url + "/node_replacements", timeout=30) as resp:
            listed = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        assert not _host_has_replacements() and err.code == 404
        return
    assert _host_has_replacements()
    for old, rule in RULES.items():
        ours = [_sorted_mappings(entry) for entry in listed.get(old, []) if entry["new_node_id"] == rule.target]
        assert ours == [_sorted_mappings(replacement_fields(rule))], old


def test_editor_endpoint_gives_each_replaced_node_its_values(server):
    """POST /animateflow/migrate (web/migration_values.js asks it when a workflow with their nodes loads): our type
    and widget values by name for each node of theirs, VideoHelperSuite's by-name values included; a body that is
    no workflow is a 400 naming the problem, and the server keeps serving."""
    workflow = json.loads((REPO_ROOT / "tests" / "migration_workflows" / "marsh000596_wf2.json").read_text("utf-8"))
    answer = server.request("/animateflow/migrate", workflow)
    nodes = answer["nodes"]
    assert set(nodes) == {"33", "34", "35", "36"}
    assert nodes["36"]["type"] == "AnimateFlow_VideoCombine"
    assert (nodes["36"]["widgets"]["save_mp4"], nodes["36"]["widgets"]["save_gif"]) == (True, False)
    assert nodes["36"]["widgets"]["filename_prefix"] == "aaa_readme_cn"
    assert nodes["35"]["widgets"]["folder"] == "3d"
    assert (nodes["35"]["widgets"]["frame_load_cap"], nodes["35"]["widgets"]["select_every_nth"]) == (48, 1)
    assert nodes["35"]["notes"] == []
    assert answer["workflow"]["nodes"] and answer["lines"][0].startswith("Replaced 4 node(s)")
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.request("/animateflow/migrate", {"hello": 1})
    assert refused.value.code == 400 and "not a ComfyUI workflow" in refused.value.read().decode()
    with pytest.raises(urllib.error.HTTPError) as odd:
        server.request("/animateflow/migrate", {"nodes": [1, {"id": 2, "type": "VHS_VideoCombine",
                                                              "inputs": "x"}], "links": [None]})
    assert odd.value.code == 400 and "cannot read" in odd.value.read().decode()
    assert server.object_info()


def _sorted_mappings(entry: dict) -> dict:
    """One replacement with its input mappings in a fixed order (the host keeps them in the order registered)."""
    inputs = entry.get("input_mapping")
    return {**entry, "input_mapping": sorted(inputs, key=lambda m: json.dumps(m, sort_keys=True)) if inputs else inputs}


def original_api(ckpt: str, v2: str, v3: str, lora: str) -> dict:
    """A workflow made for the leading pack and VHS, as its API export: Gen1 and Gen2 side by side."""
    sampler = {"seed": 3, "steps": 1, "cfg": 2.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
               "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0]}
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}},
        "latent": {"class_type": "ADE_EmptyLatentImageLarge",
                   "inputs": {"width": SIZE, "height": SIZE, "batch_size": FRAMES}},
        "ctx1": {"class_type": "ADE_StandardUniformContextOptions",
                 "inputs": {"context_length": 8, "context_stride": 1, "context_overlap": 2, "fuse_method": "pyramid"}},
        "lora": {"class_type": "ADE_AnimateDiffLoRALoader", "inputs": {"name": lora, "strength": 0.8}},
        "effect": {"class_type": "ADE_MultivalDynamic", "inputs": {"float_val": 0.7}},
        "settings": {"class_type": "ADE_AnimateDiffSamplingSettings",
                     "inputs": {"batch_offset": 0, "noise_type": "default", "seed_gen": "comfy", "seed_offset": 0}},
        "gen1": {"class_type": "ADE_AnimateDiffLoaderGen1",
                 "inputs": {"model": ["ckpt", 0], "model_name": v2, "beta_schedule": "autoselect",
                            "context_options": ["ctx1", 0], "motion_lora": ["lora", 0],
                            "effect_multival": ["effect", 0], "sample_settings": ["settings", 0]}},
        "ctx2": {"class_type": "ADE_StandardStaticContextOptions",
                 "inputs": {"context_length": 8, "context_overlap": 2, "fuse_method": "flat"}},
        "load": {"class_type": "ADE_LoadAnimateDiffModel", "inputs": {"model_name": v3}},
        "scale": {"class_type": "ADE_MultivalDynamic", "inputs": {"float_val": 1.2}},
        "apply": {"class_type": "ADE_ApplyAnimateDiffModel",
                  "inputs": {"motion_model": ["load", 0], "start_percent": 0.0, "end_percent": 1.0,
                             "effect_multival": ["scale", 0]}},
        "gen2": {"class_type": "ADE_UseEvolvedSampling",
                 "inputs": {"model": ["ckpt", 0], "beta_schedule": "sqrt_linear (AnimateDiff)",
                            "m_models": ["apply", 0], "context_options": ["ctx2", 0]}},
        "k1": {"class_type": "KSampler", "inputs": {**sampler, "model": ["gen1", 0]}},
        "k2": {"class_type": "KSampler", "inputs": {**sampler, "model": ["gen2", 0]}},
    }


def _with_outputs(api: dict) -> dict:
    """The Gen1 half with VHS outputs and a VHS video load (the Gen2 half samples in the equality test)."""
    api = {k: v for k, v in api.items() if k not in ("ctx2", "load", "scale", "apply", "gen2", "k2")}
    return {
        **api,
        "dec1": {"class_type": "VAEDecode", "inputs": {"samples": ["k1", 0], "vae": ["ckpt", 2]}},
        "out1": {"class_type": "VHS_VideoCombine",
                 "inputs": {"images": ["dec1", 0], "frame_rate": 8, "loop_count": 0, "filename_prefix": "mig/gen1",
                            "format": "image/gif", "pingpong": True, "save_output": True}},
        "out2": {"class_type": "VHS_VideoCombine",  # VHS decodes latents itself when given a vae
                 "inputs": {"images": ["k1", 0], "vae": ["ckpt", 2], "frame_rate": 8, "loop_count": 0,
                            "filename_prefix": "mig/gen2", "format": "video/h264-mp4", "pix_fmt": "yuv420p",
                            "crf": 19, "save_metadata": True, "pingpong": False, "save_output": True}},
        "out4": {"class_type": "VHS_VideoCombine",  # a vae beside decoded images: VHS ignores it
                 "inputs": {"images": ["dec1", 0], "vae": ["ckpt", 2], "frame_rate": 8, "loop_count": 0,
                            "filename_prefix": "mig/decoded", "format": "image/gif", "pingpong": False,
                            "save_output": True}},
        "video": {"class_type": "VHS_LoadVideo",
                  "inputs": {"video": "vid2vid_source.mp4", "force_rate": 0, "custom_width": 0, "custom_height": 0,
                             "frame_load_cap": 4, "skip_first_frames": 0, "select_every_nth": 1}},
        "out3": {"class_type": "VHS_VideoCombine",
                 "inputs": {"images": ["video", 0], "audio": ["video", 2], "frame_rate": 8, "loop_count": 0,
                            "filename_prefix": "mig/copy", "format": "video/webm", "pingpong": False,
                            "save_output": True}},
    }


def test_queued_workflow_of_theirs_renders(server, sd15_file, motion_module_file, motion_lora_file, example_inputs,
                                          base_dir):
    """Queue an ADE + VHS API workflow as it is, on a server that has neither pack: the server converts it
    (migration/server_hooks.py, before ComfyUI 0.14+'s own replacement, which fails on inputs an API file leaves
    out) and every output node writes its file, with a picture in it."""
    original = _with_outputs(original_api(sd15_file, motion_module_file("v2"), motion_module_file("v3"),
                                           motion_lora_file))
    converted, report = convert_api(original)
    assert not report.unknown and len(report.converted) == 11
    assert "closed_loop" not in original["ctx1"]["inputs"]  # an input left out, as API files do
    shutil.rmtree(base_dir / "output" / "mig", ignore_errors=True)  # files of an earlier run
    entry = server.run(original)
    assert set(entry["outputs"]) >= {"out1", "out2", "out3", "out4"}
    written = {p.name for p in (base_dir / "output" / "mig").iterdir()}
    assert any(n.startswith("gen1") and n.endswith(".gif") for n in written)
    assert any(n.startswith("gen2") and n.endswith(".mp4") for n in written)  # from latents, through the vae
    assert any(n.startswith("copy") and n.endswith(".webm") for n in written)
    assert any(n.startswith("decoded") and n.endswith(".gif") for n in written)
    gif = next(p for p in sorted((base_dir / "output" / "mig").iterdir()) if p.name.startswith("gen1"))
    with Image.open(gif) as image:
        assert image.n_frames == 2 * FRAMES - 2  # pingpong without repeating the ends
        assert image.convert("L").getextrema()[0] < image.convert("L").getextrema()[1]  # NaN decodes flat


def test_batch_helpers_of_theirs_run_as_comfyuis_own_nodes(server, sd15_file, base_dir):
    """VideoHelperSuite's Duplicate Images/Latents, VAE Encode/Decode Batched and Get Image Count, queued as they
    are: each runs as the ComfyUI node that gives the same tensors (VHS repeats the whole batch, its batched VAE
    nodes are the plain ones a chunk at a time, its count is the batch size)."""
    prompt = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": sd15_file}},
        "img": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 3, "color": 0x3366CC}},
        "dup": {"class_type": "VHS_DuplicateImages", "inputs": {"images": ["img", 0], "multiply_by": 2}},
        "count": {"class_type": "VHS_GetImageCount", "inputs": {"images": ["dup", 0]}},
        "enc": {"class_type": "VHS_VAEEncodeBatched", "inputs": {"pixels": ["dup", 0], "vae": ["ckpt", 2],
                                                                 "per_batch": 4}},
        "duplat": {"class_type": "VHS_DuplicateLatents", "inputs": {"latents": ["enc", 0], "multiply_by": 2}},
        "dec": {"class_type": "VHS_VAEDecodeBatched", "inputs": {"samples": ["duplat", 0], "vae": ["ckpt", 2],
                                                                 "per_batch": 5}},
        "empty": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": ["count", 0]}},
        "save_lat": {"class_type": "SaveLatent", "inputs": {"samples": ["duplat", 0], "filename_prefix": "vhsb/lat"}},
        "save_cnt": {"class_type": "SaveLatent", "inputs": {"samples": ["empty", 0], "filename_prefix": "vhsb/cnt"}},
        "save_img": {"class_type": "SaveImage", "inputs": {"images": ["dec", 0], "filename_prefix": "vhsb/img"}},
        # Select Every Nth: to ours. Latent frames 2 and 7 of 12; the masks' and images' counts as batch sizes.
        "sel_lat": {"class_type": "VHS_SelectEveryNthLatent",
                    "inputs": {"latents": ["duplat", 0], "select_every_nth": 5, "skip_first_latents": 2}},
        "save_sel": {"class_type": "SaveLatent", "inputs": {"samples": ["sel_lat", 0], "filename_prefix": "vhsb/sel"}},
        "mask": {"class_type": "ImageToMask", "inputs": {"image": ["dup", 0], "channel": "red"}},
        "sel_mask": {"class_type": "VHS_SelectEveryNthMask",
                     "inputs": {"mask": ["mask", 0], "select_every_nth": 2, "skip_first_masks": 1}},
        "sel_img": {"class_type": "VHS_SelectEveryNthImage",
                    "inputs": {"images": ["dup", 0], "select_every_nth": 3}},
        "empty_msk": {"class_type": "EmptyLatentImage",
                      "inputs": {"width": 32, "height": 32, "batch_size": ["sel_mask", 1]}},
        "save_msk": {"class_type": "SaveLatent", "inputs": {"samples": ["empty_msk", 0],
                                                             "filename_prefix": "vhsb/msk"}},
        "empty_img": {"class_type": "EmptyLatentImage",
                      "inputs": {"width": 32, "height": 32, "batch_size": ["sel_img", 1]}},
        "save_nth": {"class_type": "SaveLatent", "inputs": {"samples": ["empty_img", 0],
                                                             "filename_prefix": "vhsb/nth"}},
    }
    converted, report = convert_api(prompt)
    assert {converted[k]["class_type"] for k in ("dup", "count", "enc", "duplat", "dec")} == {
        "RepeatImageBatch", "GetImageSize", "VAEEncode", "RepeatLatentBatch", "VAEDecode"}
    assert converted["empty"]["inputs"]["batch_size"] == ["count", 2]
    assert converted["sel_mask"] == {"class_type": "AnimateFlow_SelectEveryNthMask",
                                     "inputs": {"masks": ["mask", 0], "select_every_nth": 2, "skip_first_frames": 1}}
    assert any("per_batch = 4" in note for entry in report.converted for note in entry.notes)
    shutil.rmtree(base_dir / "output" / "vhsb", ignore_errors=True)
    entry = server.run(prompt)
    folder = base_dir / "output" / "vhsb"
    latents = safetensors.torch.load_file(str(next(folder.glob("lat*.latent"))))["latent_tensor"]
    assert latents.shape == (12, 4, 4, 4)
    assert torch.equal(latents[:6], latents[6:]) and torch.equal(latents[:3], latents[3:6])
    assert safetensors.torch.load_file(str(next(folder.glob("cnt*.latent"))))["latent_tensor"].shape[0] == 6
    assert len(entry["outputs"]["save_img"]["images"]) == 12
    selected = safetensors.torch.load_file(str(next(folder.glob("sel*.latent"))))["latent_tensor"]
    assert torch.equal(selected, latents[[2, 7]])
    counted = {name: safetensors.torch.load_file(str(next(folder.glob(f"{name}*.latent"))))["latent_tensor"].shape[0]
               for name in ("msk", "nth")}
    assert counted == {"msk": 3, "nth": 2}  # masks 1, 3, 5 of 6; images 0 and 3 of 6


def test_video_info_of_theirs_reads_our_load_video(server, example_inputs, base_dir):
    """VHS Load Video → Video Info (Source) / (Loaded) / Video Info, queued as they are: the facts come from our
    Load Video's video_info (the 12-frame, 8 fps source; every 2nd frame loaded), counted into batch sizes."""
    prompt = {
        "video": {"class_type": "VHS_LoadVideo", "inputs": {"video": "vid2vid_source.mp4", "select_every_nth": 2}},
        "source": {"class_type": "VHS_VideoInfoSource", "inputs": {"video_info": ["video", 3]}},
        "loaded": {"class_type": "VHS_VideoInfoLoaded", "inputs": {"video_info": ["video", 3]}},
        "both": {"class_type": "VHS_VideoInfo", "inputs": {"video_info": ["video", 3]}},
        **{f"empty_{name}": {"class_type": "EmptyLatentImage",
                             "inputs": {"width": 32, "height": 32, "batch_size": [node, slot]}}
           for name, node, slot in (("source", "source", 1), ("loaded", "loaded", 1), ("both", "both", 6))},
        **{f"save_{name}": {"class_type": "SaveLatent", "inputs": {"samples": [f"empty_{name}", 0],
                                                                    "filename_prefix": f"vinfo/{name}"}}
           for name in ("source", "loaded", "both")},
    }
    converted, report = convert_api(prompt)
    assert not report.unknown and converted["loaded"]["inputs"]["video_info"] == ["video", 6]
    assert converted["empty_loaded"]["inputs"]["batch_size"] == ["loaded", 6]
    shutil.rmtree(base_dir / "output" / "vinfo", ignore_errors=True)
    server.run(prompt)
    counts = {name: safetensors.torch.load_file(str(next((base_dir / "output" / "vinfo").glob(f"{name}*.latent"))))
              ["latent_tensor"].shape[0] for name in ("source", "loaded", "both")}
    assert counts == {"source": 12, "loaded": 6, "both": 6}
