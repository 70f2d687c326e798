"""Test session set-up: a real ComfyUI in-process and as an HTTP server, random-weight models.

The host is imported once per session with `--cpu --base-directory <test base>`, so every test that
touches ComfyUI sees the same folders as the server it starts. Random models are generated into that
base directory under the names a user would have (never into a user's folders) and reused across
runs on the same machine, since they are deterministic.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

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


@pytest.fixture(scope="session")
def sd15(sd15_file):
    """(MODEL, CLIP, VAE) of the random SD1.5 checkpoint, through ComfyUI's CheckpointLoaderSimple."""
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


@pytest.fixture(scope="session")
def server(sd15_file):
    """A ComfyUI server process with the pack, on the same base directory as the in-process host."""
    srv = comfy_host.ComfyServer(BASE_DIR, log_path=BASE_DIR / "server.log")
    client = srv.start()
    client.server = srv
    yield client
    srv.stop()


def pytest_configure(config):
    logging.getLogger("PIL").setLevel(logging.INFO)
