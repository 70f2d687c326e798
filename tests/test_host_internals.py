"""One test per ComfyUI internal the pack leans on, so the next host change fails here, by name, not deep in a render.

The pack prefers the host's public extension points (the V3 node schema, ModelPatcher's patch/wrapper/injection
API); where it relies on more than a name, on a signature, a call convention or a class layout, the assumption is
pinned below with the pack code that depends on it. Context-window internals are pinned in
test_host_internals_context.py. Each test is cheap (a small UNet, meta tensors) and runs on every host.
"""

from __future__ import annotations

import asyncio
import inspect

import comfy.ldm.modules.attention as attention
import comfy.ldm.modules.diffusionmodules.openaimodel as openaimodel
import comfy.model_management
import comfy.model_patcher
import comfy.model_sampling
import comfy.ops
import comfy.patcher_extension
import folder_paths
import nodes
import pytest
import torch
from conftest import BASE_DIR, PACK, pack_module
from motion_helpers import SMALL_CONTEXT_DIM

from scripts import comfy_host, fixtures

pytestmark = pytest.mark.host

host_compat = pack_module("host_compat")


def _pins(what: str, user: str) -> str:
    return f"ComfyUI changed {what}, which {user} relies on: adapt it (and host_compat.py if hosts now differ)"



def _unet_inputs(frames: int = 2):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(frames, 4, 8, 8, generator=gen)
    context = torch.randn(frames, 77, SMALL_CONTEXT_DIM, generator=gen)
    return x, torch.full((frames,), 500.0), context


def test_unet_block_layout_that_motion_modules_are_inserted_into():
    """motion/inject.py walks input/middle/output blocks (TimestepEmbedSequential lists), finds ResBlock
    (.out_channels, .in_layers[0] / .out_layers[0] GroupNorms), SpatialTransformer, Downsample and Upsample in them,
    and the final GroupNorm at unet.out[0]."""
    with torch.device("meta"):
        unet = openaimodel.UNetModel(**fixtures.sd15_unet_config(), device="meta",
                                     operations=comfy.ops.disable_weight_init)
    message = _pins("the SD1.5 UNet's block layout", "motion/inject.py's insertion points")
    blocks = [*unet.input_blocks, unet.middle_block, *unet.output_blocks]
    assert all(isinstance(b, openaimodel.TimestepEmbedSequential) for b in blocks), message
    res = [m for b in blocks for m in b if isinstance(m, openaimodel.ResBlock)]
    assert len(res) == 8 + 2 + 12, message
    assert {m.out_channels for m in res} == {320, 640, 1280}, message
    assert all(isinstance(m.in_layers[0], torch.nn.GroupNorm) and isinstance(m.out_layers[0], torch.nn.GroupNorm)
               for m in res), message
    assert isinstance(unet.out[0], torch.nn.GroupNorm), message
    assert sum(isinstance(b[0], openaimodel.Downsample) for b in unet.input_blocks) == 3, message
    assert [isinstance(b[-1], openaimodel.Upsample) for b in unet.output_blocks] == \
        [False, False, True] * 3 + [False] * 3, message
    assert any(isinstance(m, attention.SpatialTransformer) for m in unet.middle_block), message


def test_forward_timestep_embed_patch_hands_layers_transformer_options(small_model):
    """motion/inject.py registers its layer class with set_model_forward_timestep_embed_patch; the UNet calls
    handler(layer, x, emb, context, transformer_options, ...) for each such layer in a block."""
    seen = []

    class Marker(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("the patch handler, not the layer, must run")

    def handler(layer, x, emb, context, transformer_options, *rest):
        seen.append((layer, x.shape, transformer_options.get("cond_or_uncond")))
        return x

    model = small_model.clone()
    model.set_model_forward_timestep_embed_patch((Marker, handler))
    patches = model.model_options["transformer_options"]["patches"]["forward_timestep_embed_patch"]
    marker = Marker()
    unet = model.model.diffusion_model
    unet.input_blocks[1].append(marker)
    try:
        x, t, context = _unet_inputs()
        options = {"cond_or_uncond": [0], "patches": {"forward_timestep_embed_patch": patches}}
        with torch.no_grad():
            unet(x, t, context, transformer_options=options)
    finally:
        del unet.input_blocks[1][-1]
    assert len(seen) == 1 and seen[0][0] is marker and seen[0][2] == [0], \
        _pins("forward_timestep_embed_patch's call", "the motion layers' handler")


def test_diffusion_model_wrapper_gets_x_first_and_transformer_options_sixth(small_model):
    """motion/inject.py's v1 GroupNorm wrapper (WrappersMP.DIFFUSION_MODEL) reads args[0] (x) and args[5]."""
    seen = []

    def wrapper(executor, *args, **kwargs):
        seen.append((args[0].shape, args[5].get("cond_or_uncond")))
        return executor(*args, **kwargs)

    x, t, context = _unet_inputs()
    options = {"cond_or_uncond": [1]}
    comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "pin", wrapper,
                                                 options)
    with torch.no_grad():
        small_model.model.diffusion_model(x, t, context, transformer_options=options)
    assert seen == [(x.shape, [1])], _pins("the DIFFUSION_MODEL wrapper's arguments", "the v1 GroupNorm wrapper")


def test_injections_run_on_load_and_eject_on_unload(small_model):
    """motion/inject.py puts the motion layers in with a PatcherInjection: inject when the clone loads, eject when
    it unloads (so the shared UNet is untouched outside a render); the motion module rides along as an
    additional model."""
    calls = []
    extra = comfy.model_patcher.ModelPatcher(torch.nn.Linear(2, 2), load_device=torch.device("cpu"),
                                             offload_device=torch.device("cpu"))
    model = small_model.clone()
    model.set_injections("pin", [comfy.patcher_extension.PatcherInjection(inject=lambda p: calls.append("inject"),
                                                                          eject=lambda p: calls.append("eject"))])
    model.set_additional_models("pin", [extra])
    message = _pins("ModelPatcher injections / additional models", "Apply Motion Module")
    assert model.get_additional_models_with_key("pin") == [extra], message
    assert extra in model.get_nested_additional_models(), message
    comfy.model_management.load_models_gpu([model] + model.get_nested_additional_models())
    assert calls == ["inject"], message
    comfy.model_management.unload_all_models()
    assert calls == ["inject", "eject"], message


def test_model_sampling_betas_from_register_schedule(small_model):
    """motion/inject.py builds the AnimateDiff beta schedule with ModelSamplingDiscrete._register_schedule
    ("sqrt_linear" = β linear in t) and patches it in as the `model_sampling` object."""
    current = small_model.get_model_object("model_sampling")
    assert isinstance(current, comfy.model_sampling.ModelSamplingDiscrete)
    sampling = type(current)(small_model.model.model_config)
    sampling._register_schedule(beta_schedule="sqrt_linear", linear_start=0.00085, linear_end=0.012)
    betas = torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64)
    cumprod = torch.cumprod(1 - betas, 0)
    expected = ((1 - cumprod) / cumprod).sqrt().float()
    torch.testing.assert_close(sampling.sigmas.float(), expected, rtol=1e-5, atol=0,
                               msg=_pins("_register_schedule / 'sqrt_linear'", "the animatediff beta schedule"))
    patched = small_model.clone()
    patched.add_object_patch("model_sampling", sampling)
    assert patched.get_model_object("model_sampling") is sampling


def test_lcm_model_sampling_classes():
    """motion/inject.py composes ModelSamplingDiscreteDistilled with LCM (nodes_model_advanced) for AnimateLCM."""
    import comfy_extras.nodes_model_advanced as advanced

    message = _pins("nodes_model_advanced's LCM sampling classes", "the 'lcm' beta schedule")
    assert issubclass(advanced.ModelSamplingDiscreteDistilled, comfy.model_sampling.ModelSamplingDiscrete), message
    assert inspect.isclass(advanced.LCM), message


def test_lora_adapter_patches_a_weight():
    """motion/lora.py patches motion module weights with LoRAAdapter(set(), (up, down, alpha, mid, dora, reshape))
    through ModelPatcher.add_patches; alpha None means scale 1."""
    from comfy.weight_adapter.lora import LoRAAdapter

    model = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False))
    layer = model[0]
    before = layer.weight.detach().clone()
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"),
                                               offload_device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    up, down = torch.randn(3, 2, generator=gen), torch.randn(2, 4, generator=gen)
    message = _pins("LoRAAdapter / add_patches", "the Motion LoRA Loader")
    added = patcher.add_patches({"0.weight": LoRAAdapter(set(), (up, down, None, None, None, None))},
                                strength_patch=0.5)
    assert added == ["0.weight"], message
    patcher.patch_model()
    try:
        torch.testing.assert_close(layer.weight.detach(), before + 0.5 * up @ down, msg=message)
    finally:
        patcher.unpatch_model()
    assert torch.equal(layer.weight.detach(), before), message


def test_manual_cast_ops_and_cast_bias_weight():
    """motion/model.py builds its layers from comfy.ops.manual_cast (weights cast to the input's dtype at run time);
    motion/fast_path.py reads weights through cast_bias_weight(layer, x) -> (weight, bias) and calls run_every_op()."""
    message = _pins("comfy.ops.manual_cast / cast_bias_weight", "the motion module's layers and fast path")
    layer = comfy.ops.manual_cast.Linear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(2, 4))
    x = torch.randn(3, 4, dtype=torch.bfloat16)
    assert layer(x).dtype == torch.bfloat16, message
    cast = comfy.ops.cast_bias_weight(layer, x)
    assert len(cast) == 2 and cast[0].dtype == torch.bfloat16, message
    for name in ("GroupNorm", "LayerNorm", "Linear", "Conv2d"):
        assert hasattr(comfy.ops.manual_cast, name), message
    comfy.ops.run_every_op()


def test_optimized_attention_signature():
    """motion/model.py calls attention.optimized_attention(q, k, v, heads) with (batch, tokens, heads·dim)."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 5, 16, generator=gen) for _ in range(3))
    out = attention.optimized_attention(q, k, v, 2)
    split = [t.view(3, 5, 2, 8).transpose(1, 2) for t in (q, k, v)]
    reference = torch.softmax(split[0] @ split[1].transpose(-1, -2) / 8 ** 0.5, -1) @ split[2]
    torch.testing.assert_close(out, reference.transpose(1, 2).reshape(3, 5, 16), rtol=1e-4, atol=1e-5,
                               msg=_pins("optimized_attention's layout", "temporal attention"))


def test_model_management_calls():
    """motion/loader.py picks the module's dtype and devices; the video nodes poll for interrupts."""
    message = _pins("model_management's device / dtype / interrupt calls", "Load Motion Module and Video Combine")
    assert comfy.model_management.unet_dtype(supported_dtypes=[torch.float16, torch.bfloat16, torch.float32]) \
        in (torch.float16, torch.bfloat16, torch.float32), message
    assert isinstance(comfy.model_management.get_torch_device(), torch.device), message
    assert isinstance(comfy.model_management.unet_offload_device(), torch.device), message
    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            comfy.model_management.throw_exception_if_processing_interrupted()
    finally:
        comfy.model_management.interrupt_current_processing(False)


def test_folder_paths_model_folders_and_save_paths(tmp_path):
    """motion/loader.py appends folders with add_model_folder_path and widens the extension set in
    folder_names_and_paths[name] = (paths, extensions); Video Combine names files with get_save_image_path."""
    message = _pins("folder_paths' folder table / save paths", "the motion model folders and Video Combine")
    folder_paths.add_model_folder_path("animateflow_pin", str(tmp_path))
    try:
        paths, extensions = folder_paths.folder_names_and_paths["animateflow_pin"]
        assert str(tmp_path) in paths and isinstance(extensions, set), message
    finally:
        folder_paths.folder_names_and_paths.pop("animateflow_pin", None)
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path("pin/clip", str(tmp_path), 8, 8)
    assert (name, subfolder) == ("clip", "pin") and folder == str(tmp_path / "pin"), message
    assert isinstance(counter, int), message


def test_disable_metadata_flag():
    """Video Combine embeds the workflow unless ComfyUI runs with --disable-metadata (comfy.cli_args.args)."""
    from comfy.cli_args import args

    assert args.disable_metadata is False, _pins("the --disable-metadata flag", "Video Combine's metadata")


def test_v3_executor_class_clone_sets_hidden_inputs():
    """host_compat.executor_class_clone bridges PREPARE_CLASS_CLONE's argument (hidden dict vs V3Data)."""
    from comfy_api.latest import io

    node = nodes.NODE_CLASS_MAPPINGS["AnimateFlow_VideoCombine"]
    clone = host_compat.executor_class_clone(node, {io.Hidden.prompt: {"1": {}}})
    assert clone.hidden.prompt == {"1": {}}, _pins("ComfyNode.PREPARE_CLASS_CLONE", "the in-process node runner")


def test_custom_node_loading_and_web_directory():
    """The in-process host loads the pack with nodes.load_custom_node (async; module named by path, '.' -> '_x_'),
    and the editor extension is served from WEB_DIRECTORY under the pack's folder name."""
    message = _pins("custom node loading / EXTENSION_WEB_DIRS", "the test host and the editor extension")
    assert inspect.iscoroutinefunction(nodes.load_custom_node), message
    folder = BASE_DIR / "custom_nodes" / comfy_host.PACK_DIR_NAME
    assert PACK.__name__ == str(folder).replace(".", "_x_"), message
    served = {name: path for name, path in nodes.EXTENSION_WEB_DIRS.items() if "AnimateFlow" in name
              or "animateflow" in name}
    assert served == {comfy_host.PACK_DIR_NAME: str(folder / "web")}, \
        f"the editor extension must be served once, under the pack's folder name: {served}"
