"""The main job: a headless ComfyUI renders the txt2vid example workflow to an MP4 and a GIF.

Run through `scripts/demo.sh`, which sets everything up first. The workflow runs unchanged on real
weights dropped into the demo's model folders; where a model is missing, a deterministic random-weight
stand-in with the real architecture is generated, and the render is shrunk so it finishes in a couple of
minutes on a CPU (random weights draw noise at any size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from scripts import comfy_host, fixtures  # noqa: E402

log = logging.getLogger("demo")

WORKFLOW = REPO_ROOT / "example_workflows" / "api" / "txt2vid.json"
QUICK = {"width": 128, "height": 128, "frames": 16, "steps": 2}


def ensure_models(models: Path) -> bool:
    """Generate stand-ins for the files the workflow names; True when any model is a random stand-in.

    Generation runs in a child process: it imports ComfyUI's model classes, which must see `--cpu` at import.
    """
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "fixtures.py"), str(models), "sd15", "v2"],
                   check=True, stdout=subprocess.DEVNULL)
    checkpoint = models / "checkpoints" / fixtures.SD15_CHECKPOINT
    motion = models / "animatediff_models" / fixtures.MOTION_MODULE_FILES["v2"]
    stand_ins = [path for path in (checkpoint, motion) if fixtures.is_stand_in(path)]
    for path in stand_ins:
        log.info("%s holds random weights (put the real file there to render for real)", path)
    return bool(stand_ins)


def shrink(graph: dict, settings: dict) -> dict:
    """Apply the quick CPU settings to the workflow's latent and sampler nodes."""
    for node in graph.values():
        inputs = node["inputs"]
        if node["class_type"] == "EmptyLatentImage":
            inputs.update(width=settings["width"], height=settings["height"], batch_size=settings["frames"])
        elif node["class_type"] == "KSampler":
            inputs["steps"] = settings["steps"]
    return graph


async def render(client: comfy_host.ComfyClient, graph: dict, timeout: float) -> str:
    """Queue the prompt and follow its progress over the server's websocket until it ends."""
    ws_url = client.url.replace("http://", "ws://") + f"/ws?clientId={client.client_id}"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, heartbeat=30) as ws:
            prompt_id = client.queue(graph, extra_pnginfo={"workflow": {}})
            log.info("queued prompt %s", prompt_id)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = await ws.receive(timeout=max(1.0, deadline - time.monotonic()))
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(msg.data)
                data = event.get("data", {})
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                kind = event["type"]
                if kind == "executing" and data.get("node") is not None:
                    node = graph[data["node"]]["class_type"]
                    log.info("running node %s (%s)", data["node"], node)
                elif kind == "progress":
                    log.info("  step %d/%d", data["value"], data["max"])
                elif kind == "execution_error":
                    raise RuntimeError(f"{data.get('node_type')}: {data.get('exception_message')}")
                elif kind in ("execution_success",) or (kind == "executing" and data.get("node") is None):
                    return prompt_id
    raise TimeoutError(f"the render did not finish within {timeout:.0f} s")


def output_files(entry: dict, output_dir: Path) -> list[Path]:
    files = []
    for node_output in entry.get("outputs", {}).values():
        for items in node_output.values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and "filename" in item and item.get("type", "output") == "output":
                    files.append(output_dir / item.get("subfolder", "") / item["filename"])
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=Path(os.environ.get("ANIMATEFLOW_DEMO_BASE",
                                                                          REPO_ROOT / ".work" / "demo-base")),
                        help="ComfyUI base directory (models/, input/, output/); default .work/demo-base")
    parser.add_argument("--workflow", type=Path, default=WORKFLOW, help="API-format workflow to render")
    parser.add_argument("--full", action="store_true",
                        help="keep the workflow's own size and steps even on random stand-in weights")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[demo] %(message)s")

    base = comfy_host.prepare_base(args.base)
    stand_ins = ensure_models(base / "models")
    graph = json.loads(args.workflow.read_text())
    if stand_ins and not args.full:
        log.info("random stand-in weights: rendering a quick %s (use --full for the workflow's own settings)", QUICK)
        shrink(graph, QUICK)

    server = comfy_host.ComfyServer(base, log_path=base / "comfyui-server.log")
    log.info("starting ComfyUI (log: %s)", server.log_path)
    with server as client:
        prompt_id = asyncio.run(render(client, graph, args.timeout))
        entry = client.wait(prompt_id, timeout=60)
    files = output_files(entry, base / "output")
    wanted = [f for f in files if f.suffix in (".mp4", ".gif")]
    if not {".mp4", ".gif"} <= {f.suffix for f in wanted} or not all(f.is_file() for f in wanted):
        log.error("the render did not write both an MP4 and a GIF: %s", files)
        return 1
    for path in wanted:
        print(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
