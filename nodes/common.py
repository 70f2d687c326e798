"""Names shared by every node of the pack, so ids and menus stay consistent; who raised an error; FLOAT checks.

motion/ and sampling/ raise typed errors (errors.InputError) that say which input is wrong and the fix but not
which node: `names_its_errors` (applied to every node at registration) adds the node's name to those its `execute`
raises, and `owns_sampling` does the same for those raised while a sampler node samples a model the node patched.

Every FLOAT input of the pack is checked twice, because ComfyUI's own range check lets NaN through (every
comparison with NaN is false) and never looks at a value that arrives through a link:
- at queue time, in the node's `validate_inputs`: the prompt is refused with HTTP 400 naming the node and the
  input. Declaring an input there turns the host's min/max check off for it, so this check redoes it;
- when the node runs (a linked value is only known then): non-finite values fail before anything is sampled.
  Range is not enforced there: the host never enforced it on links, and e.g. Interpolate Frames' fps output may
  legitimately exceed Video Combine's widget maximum.

A node with FLOAT inputs names each of them (and only them) in `validate_inputs`, and repeats them in `execute`:

    @classmethod
    def validate_inputs(cls, strength=None) -> bool | str:
        return validate_floats(cls, strength=strength)

    @classmethod
    def execute(cls, ..., strength: float) -> io.NodeOutput:
        require_finite(cls, strength=strength)

tests/test_bad_inputs.py walks every FLOAT input in /object_info, so a new one left out fails the suite.
"""

from __future__ import annotations

import functools
import math

from ..errors import InputError
from ..host import schema
from ..sampling import model_checks

CATEGORY = "AnimateDiff"
NODE_PREFIX = "AnimateFlow_"
DISPLAY_SUFFIX = " (AnimateFlow)"


def search_aliases(*names: str) -> dict:
    """Schema keywords: the names users search for (the leading packs' display names), where the host lists them."""
    return {"search_aliases": list(names)} if schema.supports("search_aliases") else {}


def advanced() -> dict:
    """Input keywords: a rarely used input, folded away in the editor where the host supports it."""
    return {"advanced": True} if schema.supports("advanced") else {}


def node_id(name: str) -> str:
    return NODE_PREFIX + name


def display_name(name: str) -> str:
    return name + DISPLAY_SUFFIX


def _node_name(node) -> str:
    return node.define_schema().display_name.removesuffix(DISPLAY_SUFFIX)


def names_its_errors(node: type) -> type:
    """The node class, its `execute` naming the node in the typed errors raised below nodes/ (in place, once)."""
    execute = node.__dict__["execute"].__func__
    if getattr(execute, "names_errors", False):
        return node

    @functools.wraps(execute)
    def named(cls, *args, **kwargs):
        try:
            return execute(cls, *args, **kwargs)
        except InputError as error:
            error.node = error.node or _node_name(cls)
            raise

    named.names_errors = True
    node.execute = classmethod(named)
    return node


def owns_sampling(model_patcher, node) -> None:
    """For a node that patches a model (a clone it returns): every sampling of it checks per-frame batch sizes, and
    the typed errors raised while it samples (inside a core sampler node) name this node."""
    model_checks.attach(model_patcher, _node_name(node))


def _bounds(node, name: str) -> str:
    spec = next(i for i in node.define_schema().inputs if i.id == name)
    low, high = ("" if v is None else f"{v:g}" for v in (spec.min, spec.max))
    span = f"from {low} to {high}" if low and high else f"of at least {low}" if low else f"up to {high}" if high else ""
    default = "" if spec.default is None else f" (default {spec.default:g})"
    return f"enter a number {span}{default}".replace("  ", " ")


def _problem(node, name: str, value, check_range: bool) -> str | None:
    if value is None:
        return None  # a linked input: checked when the node runs
    value = float(value)
    if not math.isfinite(value):
        return f"{_node_name(node)}: {name} is {value} (not a finite number); {_bounds(node, name)}."
    if not check_range:
        return None
    spec = next(i for i in node.define_schema().inputs if i.id == name)
    if spec.min is not None and value < spec.min:
        return f"{_node_name(node)}: {name} is {value:g}, below its minimum {spec.min:g}; {_bounds(node, name)}."
    if spec.max is not None and value > spec.max:
        return f"{_node_name(node)}: {name} is {value:g}, above its maximum {spec.max:g}; {_bounds(node, name)}."
    return None


def validate_floats(node, **values: float | None) -> bool | str:
    """For `validate_inputs`: True, or the first problem (non-finite or outside the schema's min/max)."""
    for name, value in values.items():
        problem = _problem(node, name, value, check_range=True)
        if problem:
            return problem
    return True


def require_finite(node, **values: float) -> None:
    """For `execute`: raise ValueError naming the node and the input if a value (e.g. from a link) is NaN or ±inf."""
    for name, value in values.items():
        problem = _problem(node, name, value, check_range=False)
        if problem:
            raise ValueError(problem)
