"""pytest plugin (loaded by pyproject's addopts): collect the pack's root folder as a plain directory.

The root holds the pack's `__init__.py`, so pytest would collect it as a Package and import that entry point under
the folder's name: a second copy of the pack beside the one ComfyUI loads, and an ImportError in every test's set-up
when the clone's folder name is no Python identifier (`comfyui-animateflow`, as README's install line names it).
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if path.resolve() == ROOT:
        return pytest.Dir.from_parent(parent, path=path)
    return None
