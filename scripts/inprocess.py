"""ComfyUI in this process: the host's own modules imported with our command line, the pack loaded by its loader.

Used by the tests and the GPU benchmark, which need the real host without a server around it.
`start()` must run before anything imports `comfy`, since ComfyUI reads its arguments at import.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from types import ModuleType

from scripts import comfy_host

_pack: ModuleType | None = None


def start(base_dir: Path | None, host_args: tuple[str, ...] = ("--cpu",)) -> ModuleType:
    """Import ComfyUI with `host_args` (and `--base-directory` when given) and load the pack; returns the pack."""
    comfy_dir = comfy_host.comfy_dir()
    if str(comfy_dir) not in sys.path:
        sys.path.insert(0, str(comfy_dir))
    argv = [sys.argv[0], *host_args, "--database-url", "sqlite:///:memory:"]
    if base_dir is not None:
        comfy_host.prepare_base(base_dir)
        argv += ["--base-directory", str(base_dir)]
        pack_path = Path(base_dir) / "custom_nodes" / comfy_host.PACK_DIR_NAME
    else:
        pack_path = comfy_host.REPO_ROOT
    sys.argv = argv

    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.model_management  # noqa: F401  (reads the arguments: device, precision)
    import nodes

    global _pack
    if not asyncio.run(nodes.load_custom_node(str(pack_path))):
        raise RuntimeError("ComfyUI could not load the pack; see the log above")
    _pack = sys.modules[str(pack_path).replace(".", "_x_")]
    return _pack


def pack_module(pack: ModuleType, name: str) -> ModuleType:
    """A submodule of the pack as ComfyUI loaded it (the same classes the nodes use), e.g. 'motion.model'."""
    return importlib.import_module(f"{pack.__name__}.{name}")


def run_v3_node(node: str | type, hidden: dict | None = None, /, **inputs):
    """Run a V3 node (by id or class) the way ComfyUI's executor does, hidden inputs included; returns its
    NodeOutput, UI result and all."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS[node] if isinstance(node, str) else node
    if _pack is None:
        raise RuntimeError("inprocess.start() must run first")
    execution = pack_module(_pack, "host.execution")
    return execution.executor_class_clone(cls, hidden).EXECUTE_NORMALIZED(**inputs)


def call_node(class_name: str, **inputs) -> tuple:
    """Run one node the way ComfyUI's executor does, returning its outputs as a tuple."""
    import nodes
    from comfy_api.latest import io

    cls = nodes.NODE_CLASS_MAPPINGS[class_name]
    if isinstance(cls, type) and issubclass(cls, io.ComfyNode):
        result = run_v3_node(cls, **inputs)
        return tuple(result.args) if result.args else ()
    return tuple(getattr(cls(), cls.FUNCTION)(**inputs))
