"""Test session set-up: a real ComfyUI in-process and as an HTTP server, random-weight models, the two tiers.

The host is imported once per session with `--cpu --base-directory <test base>`, so every test that
touches ComfyUI sees the same folders as the server it starts. Random models are generated into that
base directory under the names a user would have (never into a user's folders) and reused across
runs on the same machine, since they are deterministic.

Tiers: a test that uses a model file, the server or the editor (any fixture in HOST_FIXTURES, or a module marked
`host`) is in the host tier and gets the `host` marker; every other test is in the fast tier (`fast`), which
runs in seconds: `-m fast` / `-m host` select one. scripts/test.sh runs the host tier on every further host.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# glibc keeps freed blocks below its dynamic mmap threshold (which climbs to 32 MB) in the heap, so a process that
# freed a 4 GB model kept most of it resident, and each module's models piled up. A fixed 1 MB threshold hands freed
# weights back to the system (measured: 6.3 GB freed, 0.1 GB kept instead of 2-5 GB) at no measurable cost. Set for
# this process and, through the environment, for the server and the memory probes it starts.
MALLOC_MMAP_THRESHOLD = 1 << 20
os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MALLOC_MMAP_THRESHOLD))
try:
    ctypes.CDLL(None).mallopt(-3, MALLOC_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
except AttributeError:  # not glibc
    pass

import clip_helpers  # noqa: E402
from scripts import comfy_host, fixtures, inprocess  # noqa: E402

BASE_DIR = Path(os.environ.get("ANIMATEFLOW_TEST_BASE", REPO_ROOT / ".work" / "test-base"))
PACK = inprocess.start(BASE_DIR)
MODELS = BASE_DIR / "models"
call_node = inprocess.call_node

import folder_paths  # noqa: E402,F401
import nodes  # noqa: E402,F401


def pack_module(name: str):
    """A submodule of the pack as ComfyUI loaded it (same classes the nodes use), e.g. 'motion.model'."""
    return inprocess.pack_module(PACK, name)


@pytest.fixture(scope="session")
def base_dir() -> Path:
    return BASE_DIR


@pytest.fixture(scope="session")
def pack():
    return PACK


@pytest.fixture(scope="session")
def sd15_file() -> str:
    fixtures.ensure_sd15_checkpoint(MODELS / "checkpoints")
    return fixtures.SD15_CHECKPOINT


@pytest.fixture(scope="module")
def sd15(sd15_file):
    """(MODEL, CLIP, VAE) of the random SD1.5 checkpoint, through ComfyUI's CheckpointLoaderSimple.

    Per module, not per session: 4.3 GB in float32 that would otherwise stay beside the server's copy for the
    rest of the run (see release_models_after_each_module)."""
    return call_node("CheckpointLoaderSimple", ckpt_name=sd15_file)


@pytest.fixture(scope="session")
def motion_module_file():
    """Generate (once) the random motion module of a format; returns its file name in animatediff_models."""

    def make(fmt: str) -> str:
        path = fixtures.ensure_motion_module(MODELS / "animatediff_models", fmt)
        return path.name

    return make


@pytest.fixture(scope="session")
def motion_lora_file() -> str:
    return fixtures.ensure_motion_lora(MODELS / "animatediff_motion_lora").name


@pytest.fixture(scope="module")
def small_model():
    """The small SD1.5-shaped ModelPatcher (tests/motion_helpers.py): milliseconds a step, one per test module."""
    from motion_helpers import small_sd15_model

    return small_sd15_model()


_servers: list[comfy_host.ComfyClient] = []


@pytest.fixture(scope="session")
def server(sd15_file):
    """A ComfyUI server process with the pack, on the same base directory as the in-process host."""
    srv = comfy_host.ComfyServer(BASE_DIR, log_path=BASE_DIR / "server.log")
    client = srv.start()
    client.server = srv
    _servers.append(client)
    yield client
    _servers.remove(client)
    srv.stop()


@pytest.fixture(scope="module", autouse=True)
def release_models_after_each_module():
    """A module's models leave memory with it, in this process and in the server: the full-size random models are
    4.3 GB (checkpoint), 1.8 GB (a motion module) and 1.4 GB (ControlNet) each in float32, and a module that held
    them beside the next module's copy in the other process took the run past 16 GB. Reloading costs seconds."""
    yield
    for client in _servers:
        if client.server.process.poll() is None:
            client.free_memory()
    import comfy.model_management

    comfy.model_management.unload_all_models()
    gc.collect()


def _frame(i: int, size: int = 96) -> np.ndarray:
    """A bright disc moving across a gradient: something for Canny and the VAE to see."""
    y, x = np.mgrid[0:size, 0:size]
    cx, cy = 20 + 6 * i, size / 2 + 10 * math.sin(i / 2)
    img = np.stack([x / size, y / size, np.full_like(x, 0.3, dtype=float)], -1) * 120
    img[(x - cx) ** 2 + (y - cy) ** 2 < 144] = 240
    return img.astype(np.uint8)


@pytest.fixture(scope="session")
def example_inputs():
    """The files the examples name, as a user would have them: a picture, a video with sound, an inpainting folder."""
    inputs = BASE_DIR / "input"
    Image.fromarray(_frame(3)).save(inputs / "img2vid_start.png")
    video = inputs / "vid2vid_source.mp4"
    if not video.exists():
        clip_helpers.write_clip(video, [_frame(i) for i in range(12)], fps=8,
                                audio=clip_helpers.tone(1.5, amplitude=0.2))
    folder = inputs / "inpaint_clip"
    for sub in ("image", "mask"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(6):
        Image.fromarray(_frame(i)).save(folder / "image" / f"frame{i}.png")
        mask = np.zeros((96, 96), np.uint8)
        mask[20:70, 10 + 5 * i:60 + 5 * i] = 255
        Image.fromarray(mask).save(folder / "mask" / f"frame{i}.png")
    fixtures.ensure_controlnet(MODELS / "controlnet")


# Fixtures that make a test a host-tier test: generated model files, the server, the editor.
HOST_FIXTURES = frozenset({"sd15", "sd15_file", "motion_module_file", "motion_lora_file", "server", "example_inputs"})


def pytest_configure(config):
    logging.getLogger("PIL").setLevel(logging.INFO)


def pytest_report_header(config):
    """Which host and editor this run tests, since scripts/test.sh runs the suite on several."""
    from importlib import metadata

    import comfyui_version

    try:
        editor = metadata.version("comfyui-frontend-package")
    except metadata.PackageNotFoundError:
        editor = "not installed"
    return (f"ComfyUI {comfyui_version.__version__} at {comfy_host.comfy_dir()}, "
            f"comfyui-frontend-package {editor}, test base {BASE_DIR}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("host") is None and HOST_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.host)
        if item.get_closest_marker("host") is None:
            item.add_marker(pytest.mark.fast)
