"""The leading pack's original workflow and our conversion of it, sampled in a process of their own.

tests/test_migration_host.py runs this file: importing the leading pack patches ComfyUI's sampling functions for
good, which must not reach the rest of the suite's in-process tests, and this process holds the full-size
checkpoint with one pack's copy of a motion module at a time, beside a server that holds nothing then, which keeps
the run inside CI's memory budget.

    python tests/leading_pack_worker.py OUT.pt LEADING_PACK_FOLDER CHECKPOINT V2 V3 LORA

writes {sampler id: {"theirs", "ours": latents, "applied": bool, "notes": [...]}} to OUT.pt. The environment is
the test run's (ANIMATEFLOW_TEST_BASE, COMFYUI_DIR), so the host and the model files are the suite's.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

ARGS = sys.argv[1:]  # before the host starts: it reads its own arguments into sys.argv
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from conftest import call_node, pack_module  # noqa: E402  (starts the in-process host on the test base)
from test_migration_host import original_api  # noqa: E402

from migration.convert import convert_api  # noqa: E402

SAMPLERS = ("k1", "k2")


def evaluate(api: dict, wanted: str, given: dict[str, tuple]) -> dict[str, tuple]:
    """Run an API-format graph node by node through ComfyUI's own node functions; every output computed on the
    way, by node id."""
    done = dict(given)

    def value(v):
        if isinstance(v, list) and len(v) == 2 and isinstance(v[1], int):
            return run(str(v[0]))[v[1]]
        return v

    def run(node_id: str) -> tuple:
        if node_id not in done:
            node = api[node_id]
            done[node_id] = call_node(node["class_type"], **{k: value(v) for k, v in node["inputs"].items()})
        return done[node_id]

    run(wanted)
    return done


def free_memory() -> None:
    import comfy.model_management

    comfy.model_management.unload_all_models()
    gc.collect()


def main(out: Path, leading_pack: Path, ckpt: str, v2: str, v3: str, lora: str) -> None:
    import nodes

    if not asyncio.run(nodes.load_custom_node(str(leading_pack))):
        raise RuntimeError(f"ComfyUI could not load the leading pack from {leading_pack}")
    model, clip, _ = call_node("CheckpointLoaderSimple", ckpt_name=ckpt)
    given = {"ckpt": (model, clip, None), "pos": call_node("CLIPTextEncode", clip=clip, text="a cat walking"),
             "neg": call_node("CLIPTextEncode", clip=clip, text="")}
    original = original_api(ckpt, v2, v3, lora)
    converted, report = convert_api(original)
    notes = [note for node in report.converted for note in node.notes]
    results = {}
    for sampler in SAMPLERS:
        theirs = evaluate(original, sampler, given)[sampler][0]["samples"]
        free_memory()
        done = evaluate(converted, sampler, given)
        applied = pack_module("motion.inject").is_applied(done[original[sampler]["inputs"]["model"][0]][0])
        results[sampler] = {"theirs": theirs, "ours": done[sampler][0]["samples"], "applied": applied,
                            "notes": notes}
        del done
        free_memory()
    torch.save(results, out)


if __name__ == "__main__":
    main(Path(ARGS[0]), Path(ARGS[1]), *ARGS[2:6])
