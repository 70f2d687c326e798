"""One test per ComfyUI internal the context windows lean on, so a host change fails here, with a message that says
what changed and where we use it, instead of deep in sampling. Run on every host we support.

The stable contract (`comfy.context_windows.ContextHandlerABC`) is pinned too: it is what we implement.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from conftest import call_node, pack_module
from motion_helpers import SMALL_CONTEXT_DIM

import comfy.conds
import comfy.context_windows
import comfy.controlnet
import comfy.model_management
import comfy.patcher_extension
import comfy.sampler_helpers
import comfy.samplers
import comfy.utils

handler_module = pack_module("sampling.context_handler")
ContextOptions = pack_module("sampling.context_options").ContextOptions
execution = pack_module("host.execution")
host_sampling = pack_module("host.sampling")
wrappers = pack_module("host.wrappers")

USED_BY = "AnimateFlow's context windows (sampling/context_handler.py, sampling/context_conds.py) rely on it"


def host_changed(what: str) -> str:
    return f"ComfyUI changed: {what}. {USED_BY}; adapt there."



def ksampler(model, frames: int = 3, steps: int = 2):
    positive = [[torch.zeros(1, 77, SMALL_CONTEXT_DIM), {}]]
    negative = [[torch.ones(1, 77, SMALL_CONTEXT_DIM), {}]]
    return call_node("KSampler", model=model, seed=0, steps=steps, cfg=2.0, sampler_name="euler", scheduler="normal",
                     positive=positive, negative=negative, latent_image={"samples": torch.zeros(frames, 4, 4, 4)},
                     denoise=1.0)[0]["samples"]


class Probe(host_sampling.ContextHandlerABC):
    """Records what the host hands a context handler; evaluates without windows."""

    def __init__(self):
        super().__init__()
        self.seen: list[dict] = []

    def should_use_context(self, model, conds, x_in, timestep, model_options):
        self.seen.append({"model_options": model_options, "x": x_in, "timestep": timestep})
        return False

    def get_resized_cond(self, cond_in, x_in, window, device=None):
        return cond_in

    def execute(self, calc_cond_batch, model, conds, x_in, timestep, model_options):
        raise AssertionError("not used")


def test_context_handler_abc_is_the_contract_we_implement():
    abstract = set(comfy.context_windows.ContextHandlerABC.__abstractmethods__)
    assert abstract == {"should_use_context", "get_resized_cond", "execute"}, host_changed(
        f"ContextHandlerABC's abstract methods are now {sorted(abstract)}")
    expected = {"should_use_context": ["self", "model", "conds", "x_in", "timestep", "model_options"],
                "get_resized_cond": ["self", "cond_in", "x_in", "window", "device"],
                "execute": ["self", "calc_cond_batch", "model", "conds", "x_in", "timestep", "model_options"]}
    for name, params in expected.items():
        got = list(inspect.signature(getattr(comfy.context_windows.ContextHandlerABC, name)).parameters)
        assert got == params, host_changed(f"ContextHandlerABC.{name} takes {got}, not {params}")
    handler_module.AnimateFlowContextHandler(ContextOptions())  # instantiable: nothing abstract left


def test_calc_cond_batch_hands_evaluations_to_model_options_context_handler():
    """calc_cond_batch(model, conds, x_in, timestep, model_options) asks should_use_context, then calls
    execute(calc_cond_batch_fn, ...) where calc_cond_batch_fn takes the same five arguments."""
    params = list(inspect.signature(comfy.samplers.calc_cond_batch).parameters)
    assert params == ["model", "conds", "x_in", "timestep", "model_options"], host_changed(
        f"comfy.samplers.calc_cond_batch takes {params}")
    calls = []

    class Executes(Probe):
        def should_use_context(self, *args):
            return True

        def execute(self, calc_cond_batch, model, conds, x_in, timestep, model_options):
            calls.append((calc_cond_batch, model, conds, x_in, timestep, model_options))
            return ["windowed"]

    x, t = torch.zeros(3, 4, 2, 2), torch.ones(3)
    options = {host_sampling.CONTEXT_HANDLER: Executes()}
    out = comfy.samplers.calc_cond_batch("model", [None], x, t, options)
    assert out == ["windowed"] and len(calls) == 1, host_changed(
        'calc_cond_batch no longer hands evaluations to model_options["context_handler"].execute')
    inner, model, conds, x_in, timestep, model_options = calls[0]
    assert (model, conds, x_in, timestep, model_options) == ("model", [None], x, t, options)
    inner_params = list(inspect.signature(inner).parameters)
    assert inner_params == ["model", "conds", "x_in", "timestep", "model_options"], host_changed(
        f"the calc_cond_batch given to ContextHandlerABC.execute takes {inner_params}")


def test_sample_sigmas_are_in_transformer_options(small_model):
    """Our schedule shifts windows per step; the step is the sigma's index in transformer_options['sample_sigmas']."""
    probe = Probe()
    model = small_model.clone()
    model.model_options[host_sampling.CONTEXT_HANDLER] = probe
    model.set_model_unet_function_wrapper(lambda apply_model, args: args["input"])
    ksampler(model, steps=3)
    assert probe.seen, host_changed("the context handler was not consulted during KSampler")
    sigmas = probe.seen[0]["model_options"].get("transformer_options", {}).get("sample_sigmas")
    assert isinstance(sigmas, torch.Tensor) and sigmas.numel() == 4, host_changed(
        "model_options['transformer_options']['sample_sigmas'] (the run's sigmas) is missing during sampling")
    evaluated = [float(seen["timestep"].reshape(-1)[0]) for seen in probe.seen]
    assert evaluated == pytest.approx(sigmas[:-1].tolist()), host_changed("evaluations no longer run at sample_sigmas")


def test_model_options_transformer_options_reach_the_model_call(small_model):
    """Our per-call keys (frames per video, window indices) are put in model_options['transformer_options'] and must
    arrive in the transformer_options the UNet (and the motion module in it) gets."""
    seen = []

    def wrapper(apply_model, args):
        seen.append(dict(args["c"]["transformer_options"]))
        return args["input"]

    model = small_model.clone()
    model.set_model_unet_function_wrapper(wrapper)
    model.model_options.setdefault("transformer_options", {})["animateflow_probe"] = 7
    ksampler(model, steps=1)
    assert seen and all(s.get("animateflow_probe") == 7 for s in seen), host_changed(
        "model_options['transformer_options'] entries no longer reach the model call's transformer_options")
    assert all("cond_or_uncond" in s for s in seen), host_changed("transformer_options lost 'cond_or_uncond'")


def test_prepare_sampling_wrapper_gets_noise_shape_conds_and_model_options(small_model):
    """Our PREPARE_SAMPLING wrapper reads (model, noise_shape, conds, model_options) by name (host/wrappers.py's
    WrappedCall), checks per-frame conds and shrinks noise_shape to one window for the memory estimate."""
    seen = []

    def wrapper(executor, *args, **kwargs):
        call = wrappers.WrappedCall(executor, args, kwargs)
        seen.append({name: call.get(name) for name in ("model", "noise_shape", "conds", "model_options")})
        return call()

    model = small_model.clone()
    wrappers.add(model, wrappers.PREPARE_SAMPLING, "probe", wrapper)
    model.set_model_unet_function_wrapper(lambda apply_model, args: args["input"])
    ksampler(model, frames=5, steps=1)
    assert len(seen) == 1, host_changed("PREPARE_SAMPLING wrappers are not called once per sampling run")
    arguments = seen[0]
    assert list(arguments["noise_shape"])[0] == 5 and isinstance(arguments["model_options"], dict)
    assert {"positive", "negative"} <= set(arguments["conds"]), host_changed("prepare_sampling's conds changed form")


def test_outer_sample_wrapper_sees_the_guider_noise_and_seed(small_model):
    """Our OUTER_SAMPLE wrapper finds the handler in the guider's model_options (WrappedCall.host_object), reads
    noise, seed and callback by name; the noise it passes on is the noise sampled from (FreeNoise reorders it there)
    and the callback it passes on is called once per sampler step with the step first (the windows shift by it)."""
    seen, steps = [], []

    def wrapper(executor, *args, **kwargs):
        call = wrappers.WrappedCall(executor, args, kwargs)
        seen.append((call.host_object, call["seed"]))
        return call.replace(noise=torch.zeros_like(call["noise"]), callback=lambda step, *rest: steps.append(step))()

    model = small_model.clone()
    wrappers.add(model, wrappers.OUTER_SAMPLE, "probe", wrapper)
    model.set_model_unet_function_wrapper(lambda apply_model, args: torch.zeros_like(args["input"]))
    out = ksampler(model, steps=3)
    guider, seed = seen[0]
    assert isinstance(getattr(guider, "model_options", None), dict), host_changed(
        "OUTER_SAMPLE's executor.class_obj has no model_options")
    assert seed == 0, host_changed("OUTER_SAMPLE's seed argument is not the sampler's seed")
    assert torch.count_nonzero(out) == 0, host_changed("noise passed on by an OUTER_SAMPLE wrapper is not used")
    assert steps == [0, 1, 2], host_changed("OUTER_SAMPLE's callback is no longer called once per step with the step "
                                            "first (the windows shift by it)")


class HintModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dtype = torch.float32
        self.hints = []

    def forward(self, x, hint, timesteps, context, **kwargs):
        self.hints.append(hint.clone())
        return {}


def test_controlnet_hint_attributes_and_reuse_of_a_prepared_hint(small_model, monkeypatch):
    """We cut `cond_hint_original` / `extra_concat_orig` per window, walk `previous_controlnet`, and hand a prepared
    hint in `cond_hint`: get_control must prepare from cond_hint_original when cond_hint is None, keep a cond_hint
    whose size fits the latent, and broadcast an n-frame hint to a cond+uncond batch of 2n as two copies."""
    control = comfy.controlnet.ControlNet(HintModel(), load_device=torch.device("cpu"))
    for name in ("cond_hint_original", "cond_hint", "extra_concat_orig", "previous_controlnet"):
        assert hasattr(control, name), host_changed(f"ControlNet has no attribute {name!r}")
    assert hasattr(comfy.controlnet.T2IAdapter(None, 3, 8, "nearest-exact", torch.device("cpu")), "control_input"), host_changed(
        "T2IAdapter has no control_input (we reset it when we hand it a prepared hint)")
    prepared = []
    upscale = comfy.utils.common_upscale
    monkeypatch.setattr(comfy.utils, "common_upscale", lambda s, *a, **k: prepared.append(1) or upscale(s, *a, **k))
    control.set_cond_hint(torch.rand(3, 3, 16, 16))
    control.pre_run(small_model.model, lambda percent: 1000.0 * (1 - percent))
    x = torch.zeros(6, 4, 2, 2)
    control.get_control(x, torch.full((6,), 10.0), {"c_crossattn": torch.zeros(6, 77, SMALL_CONTEXT_DIM)}, 2, {})
    assert len(prepared) == 1 and control.cond_hint.shape[0] == 6, host_changed("ControlNet hint preparation")
    assert torch.equal(control.cond_hint[:3], control.cond_hint[3:]), host_changed("hint broadcast to cond+uncond")
    mine = torch.full((3, 3, 16, 16), 0.25)
    control.cond_hint = mine
    control.get_control(x, torch.full((6,), 10.0), {"c_crossattn": torch.zeros(6, 77, SMALL_CONTEXT_DIM)}, 2, {})
    assert len(prepared) == 1, host_changed("ControlNet re-prepares a cond_hint that already fits the latent")
    assert torch.equal(control.control_model.hints[-1], mine.repeat(2, 1, 1, 1)), host_changed(
        "ControlNet no longer uses the cond_hint it was given")
    control.cleanup()


def test_model_conds_copy_with_a_new_tensor():
    """Per-frame CONDCrossAttn (Prompt Travel) is cut per window through `.cond` and `_copy_with`."""
    cond = comfy.conds.CONDCrossAttn(torch.zeros(4, 77, 8))
    part = torch.ones(2, 77, 8)
    copy = cond._copy_with(part)
    assert type(copy) is comfy.conds.CONDCrossAttn and copy.cond is part, host_changed("CONDCrossAttn._copy_with")


def test_memory_estimates_and_interrupts_we_call(small_model):
    """windows_per_call weighs BaseModel.memory_required(shape) against host/sampling.free_memory(device); the window
    loop checks host/execution.check_interrupt between calls."""
    small = small_model.model.memory_required([16, 4, 8, 8])
    large = small_model.model.memory_required([32, 4, 8, 8])
    assert 0 < small < large, host_changed("BaseModel.memory_required(input_shape) no longer grows with the batch")
    free = host_sampling.free_memory(torch.device("cpu"))
    assert isinstance(free, (int, float)) and free > 0, host_changed("model_management.get_free_memory(device)")
    execution.check_interrupt()
