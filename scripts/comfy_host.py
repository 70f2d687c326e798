"""A real ComfyUI for the demo and the tests: base directory layout, server process, prompt API client.

Nothing here mocks the host: the server is ComfyUI's own `main.py`, started with this pack linked
into its `custom_nodes/`, and the client speaks the same HTTP prompt API as any other client.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
# The pack's folder in the test host's custom_nodes: deliberately not the project name (comfyui-animateflow), as
# with a git clone under another name, so anything keyed by the folder (web extensions, templates) is tested so.
PACK_DIR_NAME = "ComfyUI-AnimateFlow"
MODEL_FOLDERS = ("checkpoints", "animatediff_models", "animatediff_motion_lora", "controlnet")


def comfy_dir() -> Path:
    """The ComfyUI tree to run: the user's own checkout via COMFYUI_DIR, else the one set-up fetched."""
    path = Path(os.environ.get("COMFYUI_DIR") or REPO_ROOT / ".work" / "comfyui")
    if not (path / "main.py").is_file():
        raise FileNotFoundError(f"no ComfyUI tree at {path}: run scripts/setup.sh (or set COMFYUI_DIR)")
    return path


def prepare_base(base: Path) -> Path:
    """Make a `--base-directory` with the model folders and this pack linked into custom_nodes."""
    base = Path(base)
    for sub in ("input", "output", "custom_nodes", *(f"models/{m}" for m in MODEL_FOLDERS)):
        (base / sub).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_DIR_NAME
    for other in (base / "custom_nodes").iterdir():
        # A link under an older name (or to another checkout) would load a second copy of the pack.
        if other.is_symlink() and (other.name != PACK_DIR_NAME or other.resolve() != REPO_ROOT):
            other.unlink()
    if not link.exists():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    return base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PromptRejected(RuntimeError):
    """The server refused a prompt at validation; `details` holds its JSON answer."""

    def __init__(self, details: dict):
        super().__init__(json.dumps(details, indent=1)[:4000])
        self.details = details


class PromptFailed(RuntimeError):
    """A prompt was accepted but its execution ended in an error; `entry` holds its history."""

    def __init__(self, entry: dict):
        messages = entry.get("status", {}).get("messages", [])
        errors = [m[1] for m in messages if m[0] == "execution_error"]
        super().__init__(json.dumps(errors, indent=1)[:4000] if errors else "prompt failed")
        self.entry = entry
        self.errors = errors


class ComfyClient:
    """Just enough of the prompt API for scripts and tests, over plain HTTP."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.client_id = uuid.uuid4().hex

    def request(self, path: str, data: dict | None = None, timeout: float = 30) -> dict | list:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def get_bytes(self, path: str, timeout: float = 60) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return resp.read()

    def object_info(self) -> dict:
        return self.request("/object_info")

    def queue(self, graph: dict, extra_pnginfo: dict | None = None) -> str:
        payload: dict = {"prompt": graph, "client_id": self.client_id}
        if extra_pnginfo is not None:
            payload["extra_data"] = {"extra_pnginfo": extra_pnginfo}
        try:
            answer = self.request("/prompt", payload)
        except urllib.error.HTTPError as err:
            raise PromptRejected(json.loads(err.read() or b"{}")) from None
        return answer["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 600) -> dict:
        """Poll history until the prompt ends; raise PromptFailed if it ended in an error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                history = self.request(f"/history/{prompt_id}")
            except (TimeoutError, urllib.error.URLError) as err:
                # A server busy sampling on a small CPU can be slow to answer; that is not an end.
                log.debug("history poll for %s: %s", prompt_id, err)
                time.sleep(1)
                continue
            entry = history.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                if entry["status"].get("status_str") == "error":
                    raise PromptFailed(entry)
                return entry
            time.sleep(0.25)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")

    def run(self, graph: dict, timeout: float = 600, extra_pnginfo: dict | None = None) -> dict:
        return self.wait(self.queue(graph, extra_pnginfo), timeout)

    def interrupt(self) -> None:
        self.request("/interrupt", {})

    def free_memory(self, settle: float = 1.0) -> None:
        """Ask the server to unload its models and drop its node cache (POST /free), then give it a moment: the
        server does it between prompts, on its worker thread, right after the request wakes it."""
        self.request("/free", {"unload_models": True, "free_memory": True})
        time.sleep(settle)

    def view(self, filename: str, subfolder: str = "", folder_type: str = "output") -> bytes:
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": folder_type})
        return self.get_bytes(f"/view?{query}")


class ComfyServer:
    """ComfyUI's own `main.py` as a child process on a loopback port, logging to a file."""

    def __init__(self, base: Path, port: int | None = None, log_path: Path | None = None):
        self.base = prepare_base(base)
        self.port = port or free_port()
        self.log_path = Path(log_path or self.base / "comfyui-server.log")
        self.process: subprocess.Popen | None = None
        self.client = ComfyClient(f"http://127.0.0.1:{self.port}")

    def start(self, timeout: float = 180) -> ComfyClient:
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--database-url", "sqlite:///:memory:"]
        self._log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(cmd, cwd=comfy_dir(), stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}; see {self.log_path}")
            try:
                self.client.request("/system_stats", timeout=2)
                return self.client
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer within {timeout:.0f} s; see {self.log_path}")

    def restart(self, timeout: float = 180) -> ComfyClient:
        """A new server process on the same port (the client stays valid): nothing cached, nothing loaded."""
        self.stop()
        return self.start(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log_file", None):
            self._log_file.close()

    def __enter__(self) -> ComfyClient:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
