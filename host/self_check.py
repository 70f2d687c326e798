"""At start-up: which host internals the pack leans on are missing here, one clear log line each.

A missing internal would otherwise fail in the middle of a render; here it is named at load time with the host's
version and what of ours will not work, and the pack loads anyway (what does not need it keeps working). A host
outside the tested range gets one warning, never a refusal (newer releases usually keep what we use).
"""

from __future__ import annotations

import importlib
import logging
import re
from types import ModuleType

from .needs import Need

log = logging.getLogger(__name__)

OLDEST_TESTED = "0.3.75"
NEWEST_TESTED = "0.33.0"
BRIDGES = ("wrappers", "models", "sampling", "execution", "folders", "server", "node_replace")


def host_version() -> str:
    """The running ComfyUI's version, or "unknown" when it does not say."""
    try:
        return importlib.import_module("comfyui_version").__version__
    except (ImportError, AttributeError):
        return "unknown"


def version_key(version: str) -> tuple[int, ...] | None:
    """(0, 33, 0) for "0.33.0"; None for a version we cannot read."""
    match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def range_problem(version: str) -> str | None:
    """A warning when `version` is outside the tested range, else None."""
    key = version_key(version)
    if key is None:
        return None
    if key > version_key(NEWEST_TESTED):
        return (f"AnimateFlow is tested on ComfyUI {OLDEST_TESTED} to {NEWEST_TESTED}; this is {version}, newer. "
                "It should work (any missing host internal is listed on its own line); report what does not.")
    if key < version_key(OLDEST_TESTED):
        return (f"AnimateFlow is tested on ComfyUI {OLDEST_TESTED} to {NEWEST_TESTED}; this is {version}, older. "
                f"Update ComfyUI to {OLDEST_TESTED} or later.")
    return None


def bridge_needs() -> list[tuple[str, Need]]:
    """Every bridge's needs, (bridge name, need), in BRIDGES order; a bridge whose import fails is one need."""
    found = []
    for name in BRIDGES:
        module: ModuleType | None
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ImportError as e:
            found.append((name, Need(getattr(e, "name", None) or str(e), f"everything of host/{name}.py")))
            continue
        found.extend((name, need) for need in module.NEEDS)
    return found


def problems(needs: list[tuple[str, Need]] | None = None, version: str | None = None) -> list[str]:
    """One line per missing need; optional needs are left out (their features fall back and say so)."""
    version = version or host_version()
    lines = []
    for _bridge, need in needs if needs is not None else bridge_needs():
        missing = None if need.optional else need.problem()
        if missing is not None:
            lines.append(f"AnimateFlow on ComfyUI {version}: {missing}, so {need.feature} will not work.")
    return lines


def run() -> list[str]:
    """Log the range warning and one warning per missing internal; returns the lines. Never raises."""
    try:
        version = host_version()
        lines = [line for line in (range_problem(version),) if line] + problems(version=version)
    except Exception as e:  # the check must never stop the pack from loading
        lines = [f"AnimateFlow could not check this ComfyUI's internals ({type(e).__name__}: {e})."]
    for line in lines:
        log.warning(line)
    return lines
