"""The migration table and converter (pure Python), over every rule, every saved shape and published workflows.

Property-style: values are drawn at random (seeded) for every widget of every version of every node of theirs, so
a widget added to the table without a mapping, a layout read wrongly or a link left dangling fails here.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from migration import vocab
from migration.convert import convert_api, convert_ui, convert_workflow, read_widgets, translate
from migration.registration import replacement_fields
from migration.table import RULES, is_theirs
from migration.targets import TARGETS

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "migration_workflows"
PUBLISHED = sorted(FIXTURES.glob("*.json"))
# The node types issue 25 names; each must have a rule.
REQUIRED = ("VHS_VideoCombine", "VHS_LoadVideo", "VHS_LoadVideoPath", "VHS_LoadImages", "VHS_LoadImagesPath",
            "ADE_AnimateDiffUniformContextOptions", "ADE_StandardUniformContextOptions",
            "ADE_LoopedUniformContextOptions", "ADE_StandardStaticContextOptions", "ADE_AnimateDiffLoaderWithContext",
            "ADE_AnimateDiffLoaderGen1", "ADE_LoadAnimateDiffModel", "ADE_ApplyAnimateDiffModel",
            "ADE_ApplyAnimateDiffModelSimple", "ADE_UseEvolvedSampling", "ADE_AnimateDiffLoRALoader",
            "ADE_MultivalDynamic", "ADE_AnimateDiffSamplingSettings", "ADE_EmptyLatentImageLarge")
# Widgets whose only possible value is the one every version saves (the legacy context node's one-option combo).
SINGLE_VALUED = {("ADE_AnimateDiffUniformContextOptions", "context_schedule")}


def _other_value(value, rng: random.Random):
    """A value of the same kind as `value` that differs from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.randint(1, 7)
    if isinstance(value, float):
        return round(value + rng.uniform(0.05, 0.9), 3)
    return f"{value}_other{rng.randint(0, 99)}"


def test_every_listed_node_type_has_a_rule():
    assert set(REQUIRED) <= set(RULES)
    assert all(is_theirs(name) for name in RULES)


@pytest.mark.parametrize("name", sorted(RULES))
def test_no_setting_is_dropped_silently(name):
    """Changing any widget of theirs away from its default changes our node's values or adds a note."""
    rule, rng = RULES[name], random.Random(name)
    base = translate(rule, {}, set())
    for widget in rule.widget_names():
        if widget in rule.ui_only or (name, widget) in SINGLE_VALUED:
            continue
        default = rule.defaults.get(widget, "")
        for _ in range(3):
            changed = translate(rule, {widget: _other_value(default, rng)}, set())
            assert changed.new != base.new or len(changed.notes) > len(base.notes), (name, widget)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_connected_input_goes_somewhere_or_is_reported(name):
    rule = RULES[name]
    target = TARGETS[rule.target]
    ours = {n for n, _ in target.sockets} | set(target.widget_names())
    for link in rule.links:
        ctx = translate(rule, {}, {link})
        dest = ctx.links.get(link)
        assert dest in ours or any(n.startswith(f"{link}:") for n in ctx.notes) or dest is None, (name, link)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_saved_layout_reads_back(name):
    """Random values laid out as each version saved them are read back under the right names."""
    rule, rng = RULES[name], random.Random(f"layout-{name}")
    for layout in rule.layouts:
        for _ in range(20):
            values = {}
            for widget in layout:
                current = rule.aliases.get(widget, widget)
                default = rule.defaults.get(current)
                values[current] = ({"hidden": False} if current == "videopreview" else
                                   "image" if default is None else _other_value(default, rng))
            named, notes = read_widgets(rule, [values[rule.aliases.get(w, w)] for w in layout])
            assert not notes, (name, layout, notes)
            for widget in layout:
                current = rule.aliases.get(widget, widget)
                assert named[current] == values[current], (name, layout, widget)


@pytest.mark.parametrize("name", sorted(RULES))
def test_api_file_without_defaults_means_the_defaults(name):
    """An API file lists only what differs from the defaults; leaving an input out must mean its default."""
    rule = RULES[name]
    sparse = translate(rule, {}, set())
    full = translate(rule, {k: v for k, v in rule.defaults.items() if k in rule.widget_names()}, set())
    assert sparse.new == full.new and sparse.notes == full.notes


# What the editor's Replace cannot express (it copies and sets values, never translates): VHS's format and its
# save_output, which our Video Combine spreads over several switches. README says to use the converter for VHS.
EDITOR_CANNOT = {("VHS_VideoCombine", w) for w in ("save_gif", "save_mp4", "save_webm", "save_png", "extra_format",
                                                  "preview_only", "crf", "extra_crf", "bit_depth", "webp_quality")}
EDITOR_CANNOT |= {("ADE_AnimateDiffCombine", w) for _, w in EDITOR_CANNOT}


@pytest.mark.parametrize("name", sorted(RULES))
def test_editor_replacement_agrees_with_the_converter(name):
    """Simulate the editor's Replace (copy by old_widget_ids position, set values) on the newest saved shape: it
    gives the converter's values, except where the converter's report says why, or where the editor cannot."""
    rule, rng = RULES[name], random.Random(f"editor-{name}")
    fields = replacement_fields(rule)
    target = TARGETS[rule.target]
    widget_ids = fields["old_widget_ids"] or []
    for _ in range(20):
        saved = [_other_value(rule.defaults.get(w, "x"), rng) if rng.random() < 0.5 else rule.defaults.get(w, "x")
                 for w in widget_ids]
        editor = dict(target.widgets)
        for entry in fields["input_mapping"] or []:
            if "set_value" in entry:
                editor[entry["new_id"]] = entry["set_value"]
            elif entry["old_id"] in widget_ids:
                editor[entry["new_id"]] = saved[widget_ids.index(entry["old_id"])]
        named, _ = read_widgets(rule, saved)
        ctx = translate(rule, named, set())
        for ours, value in ctx.new.items():
            if (name, ours) not in EDITOR_CANNOT:
                assert editor.get(ours) == value or ctx.notes, (name, ours, editor.get(ours), value)


@pytest.mark.parametrize("name", sorted(RULES))
def test_replacement_fields_name_real_inputs(name):
    rule = RULES[name]
    fields = replacement_fields(rule)
    target = TARGETS[rule.target]
    ours = {n for n, _ in target.sockets} | set(target.widget_names())
    theirs = set(rule.widget_names()) | set(rule.links)
    assert fields["old_widget_ids"] == (list(rule.layouts[0]) or None)
    for entry in fields["input_mapping"]:
        assert entry["new_id"] in ours
        assert "set_value" in entry or entry["old_id"] in theirs
    for entry in fields["output_mapping"] or []:
        assert 0 <= entry["new_idx"] < len(target.outputs)


def test_vocabularies():
    for name, ours in vocab.BETA_SCHEDULES.items():
        got, warning = vocab.beta_schedule(name)
        assert got == (ours or "auto") and (warning is None) == (ours is not None and "lcm[" not in name
                                                               and ">>" not in name)
    assert set(vocab.COMBINED_BETA_OPTIONS) >= set(vocab.OUR_BETA_SCHEDULES)
    assert vocab.vhs_force_size("512x?", 1, 1)[:2] == (512, 0)
    assert vocab.vhs_force_size("?x768", 1, 1)[:2] == (0, 768)
    assert vocab.vhs_force_size("Custom", 320, 240)[:2] == (320, 240)
    assert vocab.vhs_force_size("Custom Height", 320, 240)[:2] == (0, 240)
    assert vocab.vhs_force_size("bogus", 1, 1)[2]


def _check_ui_graph(graph: dict) -> None:
    """Every link's ends exist and agree with the nodes' inputs and outputs, as the editor requires."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    for link in graph["links"]:
        link_id, origin, origin_slot, target, target_slot, kind = link
        out = nodes[origin]["outputs"][origin_slot]
        inp = nodes[target]["inputs"][target_slot]
        assert link_id in out["links"] and inp["link"] == link_id, link
        if nodes[target]["type"] in TARGETS or nodes[origin]["type"] in TARGETS:
            assert kind in (out["type"], inp["type"]), link
    ids = {link[0] for link in graph["links"]}
    for node in graph["nodes"]:
        for inp in node.get("inputs") or []:
            assert inp.get("link") is None or inp["link"] in ids, (node["id"], inp)
        for out in node.get("outputs") or []:
            assert set(out.get("links") or []) <= ids, (node["id"], out)


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.stem)
def test_published_workflows_convert(path):
    original = json.loads(path.read_text(encoding="utf-8"))
    converted, report = convert_ui(original)
    theirs = {str(n["id"]) for n in original["nodes"] if is_theirs(n["type"])}
    assert {n.node_id for n in report.nodes} == theirs, "a node of theirs was neither replaced nor reported"
    left = {str(n["id"]) for n in converted["nodes"] if is_theirs(n["type"])}
    assert left == {n.node_id for n in report.unknown}
    for node in converted["nodes"]:
        if node["type"] in TARGETS and str(node["id"]) in theirs:
            assert len(node["widgets_values"]) == len(TARGETS[node["type"]].widgets)
    _check_ui_graph(converted)
    assert len(converted["links"]) + sum(1 for n in report.nodes for note in n.notes if "link" in note) >= \
        len(original["links"])


def test_widgets_driven_by_links_keep_them():
    """VHS's own test: frame_rate comes from Video Info's fps and frame_load_cap from a Primitive node; both now
    drive our widgets, under our names."""
    original = json.loads((FIXTURES / "vhs_converted-input.json").read_text(encoding="utf-8"))
    converted, _ = convert_ui(original)
    nodes = {n["id"]: n for n in converted["nodes"]}
    links = {link[0]: link for link in converted["links"]}
    for kind, name, source in (("AnimateFlow_VideoCombine", "fps", "AnimateFlow_VideoInfo"),
                               ("AnimateFlow_LoadVideoPath", "frame_load_cap", "PrimitiveNode")):
        node = next(n for n in converted["nodes"] if n["type"] == kind)
        slot = next(i for i in node["inputs"] if i["name"] == name)
        assert slot["widget"] == {"name": name} and slot["link"] in links
        origin = nodes[links[slot["link"]][1]]
        assert origin["type"] == source
        if source == "PrimitiveNode":
            assert origin["outputs"][links[slot["link"]][2]]["widget"] == {"name": name}


def test_vhs_dict_and_list_forms_agree():
    """The same Video Combine saved by a current VHS (dict by name) and an old one (positional list)."""
    dict_form = {"frame_rate": 12, "loop_count": 2, "filename_prefix": "clip", "format": "video/h264-mp4",
                 "pix_fmt": "yuv420p", "crf": 23, "save_metadata": True, "trim_to_audio": False, "pingpong": True,
                 "save_output": False, "videopreview": {"hidden": False}}
    list_form = [12, 2, "clip", "video/h264-mp4", True, False, "yuv420p", 23, True, False, {"hidden": False}]
    rule = RULES["VHS_VideoCombine"]
    a, b = (translate(rule, read_widgets(rule, form)[0], set()) for form in (dict_form, list_form))
    assert a.new == b.new and a.notes == b.notes
    assert a.new["save_mp4"] and not a.new["save_gif"] and a.new["crf"] == 23 and a.new["fps"] == 12.0
    assert a.new["reverse"] and a.new["remove_head"] and a.new["remove_tail"] and a.new["preview_only"]
    old = [8, 0, "AnimateDiff", "video/h264-mp4", False, True, 17, {"hidden": False}]  # before pix_fmt existed
    named, _ = read_widgets(rule, old)
    assert translate(rule, named, set()).new["crf"] == 17


def _api_workflow() -> dict:
    """An API-format workflow as people write them: string ids, only some inputs, links as [id, slot]."""
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "model.safetensors"}},
        "ctx": {"class_type": "ADE_StandardUniformContextOptions", "inputs": {"context_length": 8}},
        "lora": {"class_type": "ADE_AnimateDiffLoRALoader", "inputs": {"lora_name": "pan.ckpt", "strength": 0.5}},
        "ad": {"class_type": "ADE_AnimateDiffLoaderGen1",
               "inputs": {"model": ["ckpt", 0], "model_name": "mm.ckpt", "context_options": ["ctx", 0],
                          "motion_lora": ["lora", 0], "ad_keyframes": ["kf", 0]}},
        "kf": {"class_type": "ADE_AnimateDiffKeyframe", "inputs": {"start_percent": 0.5}},
        "video": {"class_type": "VHS_LoadVideoPath", "inputs": {"video": "in.mp4", "force_size": "512x?"}},
        "info": {"class_type": "VHS_VideoInfo", "inputs": {"video_info": ["video", 3]}},
        "out": {"class_type": "VHS_VideoCombine",
                "inputs": {"images": ["video", 0], "frame_rate": ["info", 0], "format": "video/webm",
                           "audio": ["video", 2]}},
    }


def test_api_workflow_converts():
    converted, report = convert_api(_api_workflow())
    assert converted["ctx"] == {"class_type": "AnimateFlow_ContextOptions",
                                "inputs": {**dict(TARGETS["AnimateFlow_ContextOptions"].widgets),
                                           "context_length": 8}}
    assert converted["lora"]["inputs"] == {"name": "pan.ckpt", "strength": 0.5}
    ad = converted["ad"]["inputs"]
    assert ad["model"] == ["ckpt", 0] and ad["context_options"] == ["ctx", 0] and ad["motion_lora"] == ["lora", 0]
    assert "ad_keyframes" not in ad and ad["beta_schedule"] == "autoselect"
    assert converted["video"]["inputs"]["custom_width"] == 512
    assert converted["out"]["inputs"]["audio"] == ["video", 3]  # their audio output 2 is our 3
    assert converted["out"]["inputs"]["save_webm"] is True and converted["out"]["inputs"]["save_gif"] is False
    assert converted["info"] == {"class_type": "AnimateFlow_VideoInfo", "inputs": {"video_info": ["video", 6]}}
    assert converted["out"]["inputs"]["fps"] == ["info", 0]
    assert {n.old_type for n in report.unknown} == {"ADE_AnimateDiffKeyframe"}
    assert "ad_keyframes" in "\n".join(report.lines())


def test_installed_node_types_stay_theirs():
    """On a server where one of their packs is installed, its nodes run as its own: only missing types convert."""
    api, _ = convert_workflow(_api_workflow(), installed={"VHS_LoadVideoPath", "VHS_VideoCombine"})
    assert api["video"] == _api_workflow()["video"] and api["out"]["class_type"] == "VHS_VideoCombine"
    assert api["ctx"]["class_type"] == "AnimateFlow_ContextOptions"
    ui = json.loads((FIXTURES / "ade_vhs_txt2vid.json").read_text(encoding="utf-8"))
    converted, report = convert_workflow(ui, installed={"VHS_VideoCombine"})
    types = {n["id"]: n["type"] for n in converted["nodes"]}
    assert (types[33], types[51], types[52]) == ("AnimateFlow_AnimateDiffLoader", "VHS_VideoCombine",
                                                 "VHS_VideoCombine")
    assert {n.old_type for n in report.nodes} == {"ADE_AnimateDiffLoaderWithContext",
                                                   "ADE_AnimateDiffUniformContextOptions"}


def test_vae_beside_images_decodes_only_latents():
    """VideoHelperSuite decodes what arrives on `images` with a connected vae only when it is latents (it ignores
    the vae beside images): a decoded picture stays on our `images`, latents go to `latents`, and where an API
    file alone cannot say what arrives, latents (what a vae is connected for)."""
    ui = json.loads((FIXTURES / "ade_vhs_txt2vid.json").read_text(encoding="utf-8"))
    combine = next(n for n in convert_ui(ui)[0]["nodes"] if n["id"] == 51)  # VAE Decode → images, vae connected
    assert {i["name"]: i["link"] for i in combine["inputs"] if i["link"] is not None} == {"images": 72, "vae": 76}
    api = {"dec": {"class_type": "VAEDecode", "inputs": {}}, "k": {"class_type": "KSampler", "inputs": {}},
           "vae": {"class_type": "VAELoader", "inputs": {}},
           "a": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["dec", 0], "vae": ["vae", 0]}},
           "b": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["k", 0], "vae": ["vae", 0]}}}
    types = {"VAEDecode": "IMAGE", "KSampler": "LATENT", "VAELoader": "VAE"}
    known = convert_api(api, output_type=lambda kind, slot: types.get(kind))[0]
    assert known["a"]["inputs"]["images"] == ["dec", 0] and "latents" not in known["a"]["inputs"]
    assert known["b"]["inputs"]["latents"] == ["k", 0] and "images" not in known["b"]["inputs"]
    unknown = convert_api(api)[0]
    assert unknown["a"]["inputs"]["latents"] == ["dec", 0]


def test_not_a_workflow():
    with pytest.raises(ValueError, match="not a ComfyUI workflow"):
        convert_workflow({"hello": 1})


def _cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    # -E -s: no PYTHONPATH, no user site: a plain Python that cannot import ComfyUI (checked below).
    return subprocess.run([sys.executable, "-E", "-s", "-m", "migration", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_cli_environment_has_no_comfyui():
    probe = subprocess.run([sys.executable, "-E", "-s", "-c", "import comfy"], cwd=REPO_ROOT, capture_output=True)
    assert probe.returncode != 0


def test_cli_converts_a_ui_file_without_comfyui(tmp_path):
    source = tmp_path / "wf.json"
    source.write_text((FIXTURES / "marsh000596_wf2.json").read_text(encoding="utf-8"), encoding="utf-8")
    result = _cli(str(source), "--report-json", str(tmp_path / "report.json"))
    assert result.returncode == 0, result.stderr
    assert "ADE_AnimateDiffLoaderWithContext → AnimateFlow_AnimateDiffLoader" in result.stdout
    out = json.loads((tmp_path / "wf.animateflow.json").read_text(encoding="utf-8"))
    assert not any(is_theirs(n["type"]) for n in out["nodes"])
    assert json.loads((tmp_path / "report.json").read_text())["nodes"]
    assert out == convert_ui(json.loads(source.read_text()))[0]


def test_cli_converts_an_api_file_and_reports_leftovers(tmp_path):
    source = tmp_path / "api.json"
    source.write_text(json.dumps(_api_workflow()), encoding="utf-8")
    result = _cli(str(source), "-o", str(tmp_path / "out.json"))
    assert result.returncode == 1  # a node of theirs has no replacement
    assert "ADE_AnimateDiffKeyframe has no replacement" in result.stdout
    assert json.loads((tmp_path / "out.json").read_text()) == convert_api(_api_workflow())[0]


def test_cli_refuses_bad_input(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert _cli(str(bad)).returncode == 2
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"nodes": [1, {"id": 2, "type": "VHS_VideoCombine", "inputs": "x"}]}), encoding="utf-8")
    result = _cli(str(odd))
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "odd.animateflow.json").exists()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_api_workflow()), encoding="utf-8")
    before = good.read_text()
    result = _cli(str(good), "-o", str(good))
    assert result.returncode == 2 and "refusing to overwrite" in result.stderr and good.read_text() == before


def test_conversion_is_pure():
    """The input is not changed, and converting twice gives the same result."""
    original = json.loads((FIXTURES / "camenduru_ipadapter_animatediff_gen2.json").read_text(encoding="utf-8"))
    keep = copy.deepcopy(original)
    first, _ = convert_ui(original)
    assert original == keep and convert_ui(keep)[0] == first
