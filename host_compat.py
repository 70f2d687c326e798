"""Where the ComfyUI hosts we support differ (0.3.75, the oldest, to 0.8.0, the newest tested), bridged in one place.

Each bridge names the host behaviour it covers and tells the hosts apart by what the host has (a class, a
parameter), never by its version string, so a host between or after the tested ones takes whichever path its API
fits. tests/test_host_internals.py pins every host internal the pack leans on, so a host change that breaks an
assumption fails there, by name, rather than deep in a render.

Differences that need no bridge, because the public API states the same thing on every host:
- Output labels: an output without `display_name` is labelled by its type on 0.3.75 and by its id on 0.8.0, so
  every output of ours that has an id also names its `display_name` (README's node reference, generated on one
  host, is checked on each).
- The editor extension: `[tool.comfy] web` in pyproject.toml and `WEB_DIRECTORY` both register web/, under the
  project name and the folder name; a folder named otherwise loaded every script twice. Only `WEB_DIRECTORY`
  (read by every host, with or without pyproject support) registers it.
"""

from __future__ import annotations

from typing import Any

from comfy_api.latest import io


def executor_class_clone(node_cls: type[io.ComfyNode], hidden: dict[Any, Any] | None = None) -> type[io.ComfyNode]:
    """The per-run clone of a V3 node class with its hidden inputs set, as the host's executor makes it.

    Bridges `ComfyNode.PREPARE_CLASS_CLONE`'s argument: ComfyUI 0.3.x takes the hidden inputs themselves; newer
    hosts take the executor's `V3Data` dict (`{"hidden_inputs": ...}`), told apart by `io.V3Data`, which only those
    hosts define. Used where a node runs outside the executor (the in-process test host, the GPU benchmark).
    """
    hidden = dict(hidden or {})
    if hasattr(io, "V3Data"):
        return node_cls.PREPARE_CLASS_CLONE({"hidden_inputs": hidden})
    return node_cls.PREPARE_CLASS_CLONE(hidden)
