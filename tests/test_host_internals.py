"""One test per ComfyUI internal the pack leans on, so the next host change fails here, by name, not deep in a render.

The pack reaches ComfyUI only through host/ (one module per concern); each test below drives a bridge of host/ as the
pack does and checks the host did what the pack relies on: a name, a signature, a call convention, a class layout.
Context-window internals are pinned in test_host_internals_context.py, node replacements in
test_host_internals_node_replace.py, the start-up self-check in test_host_internals_self_check.py. Each test is
cheap (a small UNet, meta tensors) and runs on every host.
"""

from __future__ import annotations

import inspect
import os

import comfy.ldm.modules.diffusionmodules.openaimodel as openaimodel
import comfy.model_management
import comfy.ops
import comfy.patcher_extension
import folder_paths
import nodes
import pytest
import torch
from conftest import BASE_DIR, PACK, call_node, pack_module
from motion_helpers import SMALL_CONTEXT_DIM

from scripts import comfy_host, fixtures

pytestmark = pytest.mark.host

execution = pack_module("host.execution")
folders = pack_module("host.folders")
models = pack_module("host.models")
host_sampling = pack_module("host.sampling")
wrappers = pack_module("host.wrappers")


def _pins(what: str, user: str) -> str:
    return f"ComfyUI changed {what}, which {user} relies on: adapt the bridge in host/ (it is the one place)"



def _ksampler(model, frames: int = 2):
    positive = [[torch.zeros(1, 77, SMALL_CONTEXT_DIM), {}]]
    negative = [[torch.ones(1, 77, SMALL_CONTEXT_DIM), {}]]
    return call_node("KSampler", model=model, seed=0, steps=1, cfg=2.0, sampler_name="euler", scheduler="normal",
                     positive=positive, negative=negative, latent_image={"samples": torch.zeros(frames, 4, 4, 4)},
                     denoise=1.0)[0]["samples"]


def _unet_inputs(frames: int = 2):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(frames, 4, 8, 8, generator=gen)
    context = torch.randn(frames, 77, SMALL_CONTEXT_DIM, generator=gen)
    return x, torch.full((frames,), 500.0), context


def test_unet_block_layout_that_motion_modules_are_inserted_into():
    """motion/inject.py walks input/middle/output blocks (TimestepEmbedSequential lists), finds host/models.py's
    ResBlock (.out_channels, .in_layers[0] / .out_layers[0] GroupNorms), SpatialTransformer, Downsample and Upsample
    in them, and the final GroupNorm at unet.out[0]."""
    with torch.device("meta"):
        unet = openaimodel.UNetModel(**fixtures.sd15_unet_config(), device="meta",
                                     operations=comfy.ops.disable_weight_init)
    message = _pins("the SD1.5 UNet's block layout", "motion/inject.py's insertion points")
    blocks = [*unet.input_blocks, unet.middle_block, *unet.output_blocks]
    assert all(isinstance(b, openaimodel.TimestepEmbedSequential) for b in blocks), message
    res = [m for b in blocks for m in b if isinstance(m, models.ResBlock)]
    assert len(res) == 8 + 2 + 12, message
    assert {m.out_channels for m in res} == {320, 640, 1280}, message
    assert all(isinstance(m.in_layers[0], torch.nn.GroupNorm) and isinstance(m.out_layers[0], torch.nn.GroupNorm)
               for m in res), message
    assert isinstance(unet.out[0], torch.nn.GroupNorm), message
    assert sum(isinstance(b[0], models.Downsample) for b in unet.input_blocks) == 3, message
    assert [isinstance(b[-1], models.Upsample) for b in unet.output_blocks] == \
        [False, False, True] * 3 + [False] * 3, message
    assert any(isinstance(m, models.SpatialTransformer) for m in unet.middle_block), message


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


def test_diffusion_model_wrapper_call_is_read_by_name(small_model):
    """v1 GroupNorm's DIFFUSION_MODEL wrapper reads x and transformer_options through host/wrappers.WrappedCall,
    from the signature of the UNet forward the executor ends in, however the host passed them."""
    seen = []

    def wrapper(executor, *args, **kwargs):
        call = wrappers.WrappedCall(executor, args, kwargs)
        seen.append((call["x"].shape, call["transformer_options"].get("cond_or_uncond")))
        return call()

    x, t, context = _unet_inputs()
    options = {"cond_or_uncond": [1]}
    comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "pin", wrapper,
                                                 options)
    with torch.no_grad():
        small_model.model.diffusion_model(x, t, context, transformer_options=options)
    assert seen == [(x.shape, [1])], _pins("the DIFFUSION_MODEL wrapper's arguments", "the v1 GroupNorm wrapper")


def test_wrappers_run_in_order_added_and_outermost_goes_first(small_model):
    """host/wrappers.add: the host runs a kind's wrappers in the order of its dict, the first outermost; per-frame
    noise goes first (`outermost`) so a wrapper that rearranges noise (FreeNoise) sees per-frame noise."""
    order = []

    def recorder(name):
        def wrapper(executor, *args, **kwargs):
            order.append(name)
            return executor(*args, **kwargs)
        return wrapper

    model = small_model.clone()
    model.set_model_unet_function_wrapper(lambda apply_model, args: torch.zeros_like(args["input"]))
    wrappers.add(model, wrappers.OUTER_SAMPLE, "pin_a", recorder("a"))
    wrappers.add(model, wrappers.OUTER_SAMPLE, "pin_b", recorder("b"))
    wrappers.add(model, wrappers.OUTER_SAMPLE, "pin_first", recorder("first"), outermost=True)
    wrappers.add(model, wrappers.OUTER_SAMPLE, "pin_a", recorder("a"))  # re-adding replaces, never stacks
    _ksampler(model)
    assert order == ["first", "b", "a"], _pins("the order wrappers run in", "per-frame noise (sampling/noise.py)")
    wrappers.remove(model, wrappers.OUTER_SAMPLE, "pin_first")
    order.clear()
    _ksampler(model)
    assert order == ["b", "a"], _pins("remove_wrappers_with_key", "every wrapper of ours")


def test_wrapped_call_replaces_arguments_the_way_they_came(small_model):
    """WrappedCall.replace passes a replaced argument by position when it came by position and by keyword when it
    came by keyword, so another pack's wrapper inside ours reads it as the host passed it."""
    outer_seen, inner = [], []

    def outer(executor, *args, **kwargs):
        outer_seen.append((len(args), sorted(kwargs)))
        call = wrappers.WrappedCall(executor, args, kwargs)
        assert call["seed"] == 0
        return call.replace(noise=torch.zeros_like(call["noise"]), seed=5)()

    def inside(executor, *args, **kwargs):
        inner.append((len(args), sorted(kwargs)))
        call = wrappers.WrappedCall(executor, args, kwargs)
        assert torch.count_nonzero(call["noise"]) == 0 and call["seed"] == 5
        return call()

    model = small_model.clone()
    model.set_model_unet_function_wrapper(lambda apply_model, args: torch.zeros_like(args["input"]))
    wrappers.add(model, wrappers.OUTER_SAMPLE, "pin_outer", outer)
    wrappers.add(model, wrappers.OUTER_SAMPLE, "pin_inside", inside)
    _ksampler(model)
    assert outer_seen[0][0] >= 8, _pins("OUTER_SAMPLE's positional arguments", "WrappedCall")
    assert inner == outer_seen, "replaced arguments must be passed on as they came"


def test_injections_run_on_load_and_eject_on_unload(small_model):
    """motion/inject.py puts the motion layers in with host/wrappers.injection: inject when the clone loads, eject
    when it unloads (so the shared UNet is untouched outside a render); the motion module rides along as an
    additional model in a patcher of host/models.patcher_for."""
    calls = []
    extra = models.patcher_for(torch.nn.Linear(2, 2))
    model = small_model.clone()
    model.set_injections("pin", [wrappers.injection(lambda p: calls.append("inject"), lambda p: calls.append("eject"))])
    model.set_additional_models("pin", [extra])
    message = _pins("ModelPatcher injections / additional models", "Apply Motion Module")
    assert model.get_additional_models_with_key("pin") == [extra], message
    assert extra in model.get_nested_additional_models(), message
    comfy.model_management.load_models_gpu([model] + model.get_nested_additional_models())
    assert calls == ["inject"], message
    comfy.model_management.unload_all_models()
    assert calls == ["inject", "eject"], message


def test_model_sampling_betas_from_register_schedule(small_model):
    """host/sampling.with_betas builds the AnimateDiff beta schedule with ModelSamplingDiscrete._register_schedule
    ("sqrt_linear" = β linear in t); motion/beta_schedules.py patches it in as the `model_sampling` object."""
    current = small_model.get_model_object("model_sampling")
    assert host_sampling.is_discrete(current)
    sampling = host_sampling.with_betas(current, small_model.model.model_config, "sqrt_linear", 0.00085, 0.012)
    betas = torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64)
    cumprod = torch.cumprod(1 - betas, 0)
    expected = ((1 - cumprod) / cumprod).sqrt().float()
    torch.testing.assert_close(sampling.sigmas.float(), expected, rtol=1e-5, atol=0,
                               msg=_pins("_register_schedule / 'sqrt_linear'", "the animatediff beta schedule"))
    assert type(sampling) is type(current)
    patched = small_model.clone()
    patched.add_object_patch("model_sampling", sampling)
    assert patched.get_model_object("model_sampling") is sampling


def test_a_beta_schedule_leaves_the_shared_model_when_its_clone_is_only_detached(small_model):
    """Dynamic VRAM swaps clones of one model with `detach(unpatch_all=False)` (model_management.load_models_gpu),
    which leaves object patches on the shared model; host/models.undo_object_patches_on_detach (ON_DETACH) takes
    the beta schedule off there too, so the next plain render samples with the model's own betas, and the clone
    puts it back when it loads again."""
    beta_schedules = pack_module("motion.beta_schedules")
    original = small_model.model.model_sampling
    patched = small_model.clone()
    beta_schedules.apply(patched, "animatediff")
    comfy.model_management.load_models_gpu([patched])
    ours = small_model.model.model_sampling
    assert ours is not original and ours is patched.get_model_object("model_sampling")
    patched.detach(unpatch_all=False)
    assert small_model.model.model_sampling is original, _pins("detach / ON_DETACH", "beta schedules' undo")
    comfy.model_management.load_models_gpu([patched])
    assert small_model.model.model_sampling is ours
    comfy.model_management.load_models_gpu([small_model])
    assert small_model.model.model_sampling is original
    comfy.model_management.unload_all_models()


def test_lcm_model_sampling_classes(small_model):
    """host/sampling.lcm_sampling composes nodes_model_advanced's ModelSamplingDiscreteDistilled with LCM, as the
    host's ModelSamplingDiscrete node does for "lcm" (AnimateLCM): a discrete schedule of 50 distilled steps whose
    denoised output is LCM's boundary-conditioned one."""
    import comfy_extras.nodes_model_advanced as advanced

    message = _pins("nodes_model_advanced's LCM sampling classes", "the 'lcm' beta schedule")
    sampling = host_sampling.lcm_sampling(small_model.model.model_config)
    assert isinstance(sampling, advanced.LCM) and host_sampling.is_discrete(sampling), message
    assert sampling.sigmas.numel() == 50, message
    node = advanced.ModelSamplingDiscrete().patch(small_model, "lcm", False)[0].get_model_object("model_sampling")
    torch.testing.assert_close(sampling.sigmas, node.sigmas, msg=message)


def test_sampler_option_for_samplers_that_draw_noise():
    """host/sampling.sampler_accepts / sampler_with_option: per-frame noise hands ancestral and SDE samplers (host
    KSAMPLERs whose function takes `noise_sampler`) its own noise sampler, and leaves others alone."""
    import comfy.samplers

    message = _pins("KSAMPLER's sampler_function / extra_options", "per-frame noise of ancestral samplers")
    ancestral = comfy.samplers.sampler_object("euler_ancestral")
    assert host_sampling.sampler_accepts(ancestral, "noise_sampler"), message
    assert not host_sampling.sampler_accepts(comfy.samplers.sampler_object("euler"), "noise_sampler"), message
    given = host_sampling.sampler_with_option(ancestral, "noise_sampler", len)
    assert isinstance(given, comfy.samplers.KSAMPLER) and given.extra_options["noise_sampler"] is len, message
    assert given.sampler_function is ancestral.sampler_function and "noise_sampler" not in ancestral.extra_options
    assert not host_sampling.sampler_accepts(given, "noise_sampler"), "a sampler given one keeps it"


def test_lora_adapter_patches_a_weight():
    """motion/lora.py patches motion module weights with host/models.lora_patches (LoRAAdapter with alpha None:
    scale 1) through ModelPatcher.add_patches."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False))
    layer = model[0]
    before = layer.weight.detach().clone()
    patcher = models.patcher_for(model)
    gen = torch.Generator().manual_seed(0)
    up, down = torch.randn(3, 2, generator=gen), torch.randn(2, 4, generator=gen)
    message = _pins("LoRAAdapter / add_patches", "the Motion LoRA Loader")
    added = patcher.add_patches(models.lora_patches({"0.weight": (up, down)}), strength_patch=0.5)
    assert added == ["0.weight"], message
    patcher.patch_model()
    try:
        torch.testing.assert_close(layer.weight.detach(), before + 0.5 * up @ down, msg=message)
    finally:
        patcher.unpatch_model()
    assert torch.equal(layer.weight.detach(), before), message


def test_manual_cast_ops_and_cast_bias_weight():
    """motion/model.py builds its layers from host/models.OPS (manual_cast: weights cast to the input's dtype at run
    time); the fast path reads weights through cast_bias_weight(layer, x) -> (weight, bias) and run_every_op()."""
    message = _pins("comfy.ops.manual_cast / cast_bias_weight", "the motion module's layers and fast path")
    layer = models.OPS.Linear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(2, 4))
    x = torch.randn(3, 4, dtype=torch.bfloat16)
    assert layer(x).dtype == torch.bfloat16, message
    weight, bias = models.cast_bias_weight(layer, x)
    assert weight.dtype == torch.bfloat16 and bias.dtype == torch.bfloat16, message
    for name in ("GroupNorm", "LayerNorm", "Linear", "Conv2d"):
        assert hasattr(models.OPS, name), message
    models.run_every_op()


def test_optimized_attention_signature():
    """host/models.attention(q, k, v, heads) is the host's optimized attention over (batch, tokens, heads·dim)."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 5, 16, generator=gen) for _ in range(3))
    out = models.attention(q, k, v, 2)
    split = [t.view(3, 5, 2, 8).transpose(1, 2) for t in (q, k, v)]
    reference = torch.softmax(split[0] @ split[1].transpose(-1, -2) / 8 ** 0.5, -1) @ split[2]
    torch.testing.assert_close(out, reference.transpose(1, 2).reshape(3, 5, 16), rtol=1e-4, atol=1e-5,
                               msg=_pins("optimized_attention's layout", "temporal attention"))


def test_model_management_calls():
    """Load Motion Module stores the module in host/models.storage_dtype on the UNet's devices; long video work
    checks host/execution.check_interrupt, which raises the host's interrupt exception after Cancel."""
    message = _pins("model_management's device / dtype / interrupt calls", "Load Motion Module and Video Combine")
    assert models.storage_dtype() in (torch.float16, torch.bfloat16, torch.float32), message
    patcher = models.patcher_for(torch.nn.Linear(2, 2))
    assert isinstance(patcher, models.ModelPatcher), message
    assert patcher.load_device == comfy.model_management.get_torch_device(), message
    assert patcher.offload_device == comfy.model_management.unet_offload_device(), message
    execution.check_interrupt()
    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            execution.check_interrupt()
    finally:
        comfy.model_management.interrupt_current_processing(False)


def test_folder_paths_model_folders_and_save_paths(tmp_path):
    """host/folders.add_model_folder appends folders and widens the extension set in folder_names_and_paths;
    Video Combine names files with save_path (the host's get_save_image_path)."""
    message = _pins("folder_paths' folder table / save paths", "the motion model folders and Video Combine")
    (tmp_path / "a.ckpt").write_bytes(b"")
    try:
        folders.add_model_folder("animateflow_pin", [str(tmp_path)], (".ckpt",))
        paths, extensions = folder_paths.folder_names_and_paths["animateflow_pin"]
        assert str(tmp_path) in paths and ".ckpt" in extensions, message
        assert folders.model_names("animateflow_pin") == ["a.ckpt"], message
        assert folders.model_path("animateflow_pin", "a.ckpt") == str(tmp_path / "a.ckpt"), message
    finally:
        folder_paths.folder_names_and_paths.pop("animateflow_pin", None)
    folder, name, counter, subfolder, _ = folders.save_path("pin/clip", str(tmp_path), 8, 8)
    assert (name, subfolder) == ("clip", "pin") and folder == str(tmp_path / "pin"), message
    assert isinstance(counter, int), message
    assert folders.input_dir() == folder_paths.get_input_directory() and os.path.isabs(folders.output_dir())
    assert os.path.isabs(folders.temp_dir()) and os.path.isabs(folders.models_dir()), message


def test_disable_metadata_flag():
    """Video Combine embeds the workflow unless ComfyUI runs with --disable-metadata (comfy.cli_args.args)."""
    assert execution.metadata_disabled() is False, _pins("the --disable-metadata flag", "Video Combine's metadata")


def test_progress_and_blocked_outputs():
    """Load Video and Video Combine report progress with host/execution.progress (the host's ProgressBar, which
    reaches the editor through its global hook) and block an unused output with blocked_output (ExecutionBlocker)."""
    import comfy.utils
    from comfy_execution.graph_utils import ExecutionBlocker

    seen = []
    hook = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        execution.progress(4)(3, 4)
    finally:
        comfy.utils.set_progress_bar_global_hook(hook)
    assert seen == [(3, 4)], _pins("ProgressBar.update_absolute", "the progress of Load Video and Video Combine")
    blocked = execution.blocked_output("why")
    assert isinstance(blocked, ExecutionBlocker) and blocked.message == "why", _pins("ExecutionBlocker", "Load Video")


def test_v3_executor_class_clone_sets_hidden_inputs():
    """host/execution.executor_class_clone bridges PREPARE_CLASS_CLONE's argument (hidden dict vs V3Data)."""
    from comfy_api.latest import io

    node = nodes.NODE_CLASS_MAPPINGS["AnimateFlow_VideoCombine"]
    clone = execution.executor_class_clone(node, {io.Hidden.prompt: {"1": {}}})
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
