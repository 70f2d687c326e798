"""The fast path's persistent compile cache (motion/compile_cache.py) on CPU, with a stand-in for inductor's
saved artifacts: a shape compiled before loads instead of compiling, keys keep other torch/GPU/shapes apart, and a
corrupt or unsaveable entry costs a compile, never an error."""

from __future__ import annotations

import logging
import uuid

import torch
from conftest import pack_module
from test_motion_fast_path import StandInCompiler, bf16_layer

fast_path = pack_module("motion.fast_path")
compile_cache = pack_module("motion.compile_cache")


class StandInArtifacts:
    """Saves a token per graph and keeps the graph itself in memory, as a saved artifact would on disk."""

    def __init__(self, fail_save: bool = False):
        self.graphs, self.fail_save, self.loads = {}, fail_save, 0

    def can_save(self, compiled) -> bool:
        return True

    def save(self, compiled, path) -> None:
        token = uuid.uuid4().hex
        path.write_text("partial")
        if self.fail_save:
            raise OSError("No space left on device")
        self.graphs[token] = compiled
        path.write_text(token)

    def load(self, path):
        self.loads += 1
        return self.graphs[path.read_text()]


def cached_fast_path(tmp_path, compiler, artifacts):
    cache = compile_cache.CompileCache(tmp_path / "compiled", artifacts)
    return fast_path.FastPath("auto", compiler=compiler, device_types=("cpu",), cache=cache)


def render(fast, layer, x):
    with torch.no_grad():
        fast.forward(layer, x, 4)
        assert fast.wait(timeout=60) and fast.summary()["ready"] == 1
        return fast.forward(layer, x, 4)


def sample_input(layer, seed=3):
    return torch.randn(8, layer.channels, 3, 4, generator=torch.Generator().manual_seed(seed)).bfloat16()


def test_a_shape_compiled_in_an_earlier_session_loads_instead_of_compiling(tmp_path):
    layer, artifacts = bf16_layer(), StandInArtifacts()
    first, second = StandInCompiler(), StandInCompiler()
    x = sample_input(layer)
    before = render(cached_fast_path(tmp_path, first, artifacts), layer, x)
    assert len(first.compiled) == 1 and len(list((tmp_path / "compiled").iterdir())) == 1
    after = render(cached_fast_path(tmp_path, second, artifacts), layer, x)  # a new model, as after a restart
    assert second.compiled == [] and artifacts.loads == 1
    assert torch.equal(before, after)


def test_another_torch_gpu_or_shape_never_reuses_an_entry(tmp_path, monkeypatch):
    cache = compile_cache.CompileCache(tmp_path, StandInArtifacts())
    cpu = torch.device("cpu")
    names = {cache.entry(cpu, ("shape", 16)), cache.entry(cpu, ("shape", 24))}
    real = compile_cache.environment
    for field, value in (("torch", "9.9.9"), ("triton", "0.0.1"), ("gpu", "another GPU"), ("code", "edited")):
        monkeypatch.setattr(compile_cache, "environment", lambda device, f=field, v=value: {**real(device), f: v})
        names.add(cache.entry(cpu, ("shape", 16)))
    assert len(names) == 6


def test_a_corrupt_entry_is_removed_and_compiled_again(tmp_path, caplog):
    layer, artifacts = bf16_layer(), StandInArtifacts()
    x = sample_input(layer)
    render(cached_fast_path(tmp_path, StandInCompiler(), artifacts), layer, x)
    (entry,) = (tmp_path / "compiled").iterdir()
    entry.write_text("truncated")
    again = StandInCompiler()
    with caplog.at_level(logging.WARNING, logger=compile_cache.__name__):
        render(cached_fast_path(tmp_path, again, artifacts), layer, x)
    assert len(again.compiled) == 1, "compiled again"
    assert entry.read_text() != "truncated", "and saved anew"
    assert [r for r in caplog.records if "could not be read" in r.getMessage()]


def test_a_graph_that_cannot_be_saved_still_runs_and_leaves_no_half_entry(tmp_path, caplog):
    layer = bf16_layer()
    x = sample_input(layer)
    compiler = StandInCompiler()
    with caplog.at_level(logging.WARNING, logger=compile_cache.__name__):
        fast = cached_fast_path(tmp_path, compiler, StandInArtifacts(fail_save=True))
        out = render(fast, layer, x)
    assert torch.isfinite(out.float()).all() and len(compiler.compiled) == 1
    assert list((tmp_path / "compiled").iterdir()) == []
    assert len([r for r in caplog.records if "could not save" in r.getMessage()]) == 1


def test_the_cache_is_off_unless_turned_on(monkeypatch):
    monkeypatch.setattr(compile_cache, "_default", [])
    monkeypatch.delenv("ANIMATEFLOW_COMPILE_CACHE", raising=False)
    assert compile_cache.default_cache() is None
    monkeypatch.setattr(compile_cache, "_default", [])
    monkeypatch.setenv("ANIMATEFLOW_COMPILE_CACHE", "1")
    cache = compile_cache.default_cache()
    assert cache is not None and cache.folder.parts[-2:] == ("animateflow", "compiled")
