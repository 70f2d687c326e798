"""Pins of the torch internals the fast path leans on (motion/compile_worker.py, motion/fast_path.py): a torch
upgrade that moves or changes one fails here, by name, instead of silently sending every shape to the plain path."""

from __future__ import annotations

import inspect

import torch


def test_inductor_compile_takes_a_graph_module_and_example_inputs():
    import torch._inductor

    params = list(inspect.signature(torch._inductor.compile).parameters)
    assert params[:2] == ["gm", "example_inputs"]


def test_make_fx_traces_a_function_on_fake_tensors_into_a_callable_graph():
    from torch.fx.experimental.proxy_tensor import make_fx

    def fn(x, scale, weight):
        return torch.nn.functional.linear(x, weight) * scale + x

    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(4, 8, generator=gen), torch.randn(4, 1, generator=gen), torch.randn(8, 8, generator=gen)]
    graph = make_fx(fn, tracing_mode="fake")(*inputs)
    assert isinstance(graph, torch.fx.GraphModule)
    out = graph(*inputs)
    assert torch.equal(out[0] if isinstance(out, (tuple, list)) else out, fn(*inputs))


def test_pytree_round_trips_the_nested_parameter_tuples():
    from torch.utils._pytree import tree_flatten, tree_unflatten

    params = ((torch.ones(2), None, 32, 1e-6), (torch.zeros(3), torch.ones(3)), ((torch.ones(1),),), 0.5)
    leaves, spec = tree_flatten(params)
    assert [type(leaf) for leaf in leaves] == [torch.Tensor, type(None), int, float, torch.Tensor, torch.Tensor,
                                               torch.Tensor, float]
    rebuilt = tree_unflatten(leaves, spec)
    assert rebuilt[0][2] == 32 and rebuilt[3] == 0.5 and rebuilt[2][0][0] is leaves[6]


def test_the_compiling_check_and_custom_ops_exist():
    assert torch.compiler.is_compiling() is False
    assert callable(torch.library.custom_op) and hasattr(torch.library.CustomOpDef, "register_fake")


def test_standalone_compile_and_its_saved_artifacts_exist():
    import torch._inductor
    from torch._inductor import CompiledArtifact

    params = inspect.signature(torch._inductor.standalone_compile).parameters
    assert list(params)[:2] == ["gm", "example_inputs"] and "dynamic_shapes" in params
    assert {"path", "format"} <= set(inspect.signature(CompiledArtifact.save).parameters)
    assert {"path", "format"} <= set(inspect.signature(CompiledArtifact.load).parameters)
