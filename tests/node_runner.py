"""Run a node class the way ComfyUI's executor does, keeping its UI result (call_node drops it) and its hidden
inputs (prompt, extra_pnginfo), on either host.

ComfyUI 0.3.75's PREPARE_CLASS_CLONE takes the hidden inputs themselves; 0.8.0's takes the executor's V3 data,
which holds them under "hidden_inputs". The parameter's name tells which.
"""

from __future__ import annotations

import inspect

import nodes


def run_node(node_id: str, hidden: dict | None = None, **inputs):
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    first = next(iter(inspect.signature(cls.PREPARE_CLASS_CLONE).parameters))
    data = {"hidden_inputs": hidden or {}} if first == "v3_data" else (hidden or {})
    return cls.PREPARE_CLASS_CLONE(data).EXECUTE_NORMALIZED(**inputs)
