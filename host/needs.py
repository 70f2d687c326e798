"""What a bridge needs from the host, said as data, so the start-up self-check and the bridge never disagree.

Each module of this package lists its `NEEDS`: where each host internal lives and what of ours stops working
without it. Looked up by name at check time, never at import, so a host that lacks one still loads the pack.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass
from typing import Any


class HostFeatureMissing(RuntimeError):
    """The running ComfyUI lacks an internal a feature of ours needs; the message names both."""


@dataclass(frozen=True)
class Need:
    """One host internal: `target` is "module:attribute.path" (or "module" alone), `feature` what of ours needs
    it, in a user's words; `params` are parameter names its signature must have; `optional` needs are of features
    with a fallback that says for itself when it is missing (the start-up check leaves them out); `when_loaded`
    needs are checked only where the host has loaded their module (the server's, absent when the pack runs
    in-process, where those features do nothing)."""

    target: str
    feature: str
    params: tuple[str, ...] = ()
    optional: bool = False
    when_loaded: bool = False

    def find(self) -> Any:
        """The internal itself; raises LookupError saying what is missing."""
        module_name, _, path = self.target.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError as e:
            raise LookupError(f"no module {module_name}") from e
        for part in path.split(".") if path else ():
            if not hasattr(found, part):
                raise LookupError(f"no {self.target}")
            found = getattr(found, part)
        if self.params:
            try:
                names = inspect.signature(found).parameters
            except (TypeError, ValueError) as e:
                raise LookupError(f"{self.target} has no readable signature") from e
            absent = [p for p in self.params if p not in names]
            if absent:
                raise LookupError(f"{self.target} takes no {', '.join(absent)}")
        return found

    def problem(self) -> str | None:
        """What is missing, or None when the host has it (or, for `when_loaded`, has not loaded its module)."""
        if self.when_loaded and self.target.partition(":")[0] not in sys.modules:
            return None
        try:
            self.find()
        except LookupError as e:
            return str(e)
        return None
