"""ComfyUI entry point of the AnimateFlow pack: registration only.

The host check runs first, before any module that imports ComfyUI internals, so a host that lacks one gets our one
clear line per missing internal (host/self_check.py) even when the import below then fails.
"""

from .host import self_check

self_check.run()

from .nodes import comfy_entrypoint  # noqa: E402  (after the host check, on purpose)

WEB_DIRECTORY = "./web"

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
