"""The running ComfyUI server and what the editor sees: messages on a node, events to the client that queued the
prompt, the prompt check on queueing, and the host's latent previewers.

Without a server (the pack imported in-process, by tests or benchmarks) every call here does nothing and says so
by its return value, so callers never test for the server themselves.
"""

from __future__ import annotations

from typing import Any, Callable

from .needs import Need

NEEDS = (
    Need("server:PromptServer.send_progress_text", "warnings shown on the Apply Motion Module node",
         params=("text", "node_id", "sid"), when_loaded=True),
    Need("server:PromptServer.send_sync", "the live animated preview while sampling", params=("event", "data", "sid"),
         when_loaded=True),
    Need("server:PromptServer.add_on_prompt_handler", "the warning about a motion module no sampler uses",
         when_loaded=True),
    Need("nodes:NODE_CLASS_MAPPINGS", "the warning about a motion module no sampler uses, and queued prompts "
         "of the leading AnimateDiff pack or VideoHelperSuite running on our nodes"),
    Need("latent_preview:get_previewer", "the live animated preview while sampling", params=("device", "latent_format")),
    Need("latent_preview:Latent2RGBPreviewer", "the live animated preview while sampling"),
)


def prompt_server():
    """The running `PromptServer`, or None in-process."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)


def show_on_node(node_id: str, text: str, client_id: str | None = None) -> bool:
    """Show `text` on a node in the editor (the host's progress text), for the client that queued the prompt or the
    one running now; False without a server."""
    server = prompt_server()
    if server is None:
        return False
    sid = client_id if client_id is not None else getattr(server, "client_id", None)
    server.send_progress_text(text, node_id, sid)
    return True


def client_sender(event: str) -> tuple[Callable[[dict], None], str | None] | None:
    """A function that sends `event` with a payload to the client running the prompt now, and the id of the node
    running now; None without a server. Taken when a run starts, so later runs of other clients are not crossed."""
    server = prompt_server()
    if server is None:
        return None
    client = server.client_id
    return (lambda payload: server.send_sync(event, payload, client)), server.last_node_id


def add_prompt_handler(handler: Callable[[dict], dict]) -> bool:
    """Have the server call `handler(json_data) -> json_data` on every queued prompt; False without a server."""
    server = prompt_server()
    if server is None:
        return False
    server.add_on_prompt_handler(handler)
    return True


def add_route(method: str, path: str, handler: Callable) -> bool:
    """Serve `handler(request)` (an aiohttp handler) at `path`; False without a server, or one whose route table
    is gone (the host then simply lacks that endpoint of ours)."""
    server = prompt_server()
    routes = getattr(server, "routes", None)
    if routes is None:
        return False
    routes.route(method, path)(handler)
    return True


def installed_node_types() -> frozenset[str]:
    """The node types this host runs now (every pack's)."""
    import nodes

    return frozenset(nodes.NODE_CLASS_MAPPINGS)


def node_output_types(class_type: Any) -> tuple[str, ...] | None:
    """The output types of a registered node class, or None when unknown or not describable."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get(class_type)
    if cls is None:
        return None
    try:
        return tuple(cls.RETURN_TYPES)
    except Exception:  # a class that cannot describe itself
        return None


def latent_previewer(device, latent_format):
    """The host's previewer for these latents as the user chose it (TAESD or Latent2RGB), Latent2RGB from the
    format's factors when the user turned previews off, None when the format has none."""
    import latent_preview

    previewer = latent_preview.get_previewer(device, latent_format)
    if previewer is None and getattr(latent_format, "latent_rgb_factors", None) is not None:
        previewer = latent_preview.Latent2RGBPreviewer(latent_format.latent_rgb_factors,
                                                       getattr(latent_format, "latent_rgb_factors_bias", None),
                                                       getattr(latent_format, "latent_rgb_factors_reshape", None))
    return previewer
