"""Load Image Sequence: natural order, the image/ + mask/ inpainting layout, and clear errors naming the file."""

from __future__ import annotations

import shutil
import uuid

import numpy as np
import pytest
import torch
from conftest import BASE_DIR, call_node, pack_module
from PIL import Image

image_sequence = pack_module("media.image_sequence")
NODE = "AnimateFlow_LoadImageSequence"


def write(path, value: int, size=(20, 12), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(np.full(shape, value, np.uint8), mode).save(path)


@pytest.fixture
def folder():
    """A folder of our own inside the test base's input folder, removed afterwards."""
    path = BASE_DIR / "input" / f"animateflow-seq-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path)


def test_natural_order(folder):
    for i in (10, 2, 1, 33):
        write(folder / f"frame{i}.png", i)
    write(folder / "frame3.jpg", 3)
    (folder / "notes.txt").write_text("not an image")
    images, count_masks, count = call_node(NODE, folder=folder.name)
    assert count == 5 and images.shape == (5, 12, 20, 3)
    assert images[:, 0, 0, 0].mul(255).round().int().tolist() == [1, 2, 3, 10, 33]
    assert torch.equal(count_masks, torch.zeros(5, 12, 20))
    assert image_sequence.natural_key("a2b") < image_sequence.natural_key("a10b")


def test_image_and_mask_layout(folder):
    for i in range(4):
        write(folder / "image" / f"{i:02d}.png", 40 + i)
        write(folder / "mask" / f"m{i}.png", 255 if i % 2 else 0, mode="L")
    images, masks, count = call_node(NODE, folder=folder.name)
    assert count == 4 and images.shape == (4, 12, 20, 3) and masks.shape == (4, 12, 20)
    assert masks[:, 5, 5].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert images[:, 0, 0, 1].mul(255).round().int().tolist() == [40, 41, 42, 43]


def test_fewer_masks_than_images_is_an_error(folder):
    for i in range(3):
        write(folder / "image" / f"{i}.png", i)
    write(folder / "mask" / "0.png", 255, mode="L")
    with pytest.raises(ValueError, match="1 masks but .* 3 images"):
        call_node(NODE, folder=folder.name)


def test_errors_name_the_folder_or_file(folder, tmp_path, monkeypatch):
    monkeypatch.delenv("ANIMATEFLOW_ALLOW_PATHS", raising=False)
    with pytest.raises(ValueError, match=f"no images .* in folder .*{folder.name}"):
        call_node(NODE, folder=folder.name)
    with pytest.raises(FileNotFoundError, match="folder not found"):
        call_node(NODE, folder=f"{folder.name}/nope")
    with pytest.raises(ValueError, match="empty"):
        call_node(NODE, folder="  ")
    write(folder / "1.png", 1)
    (folder / "2.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="Load Image Sequence: .*2.png"):
        call_node(NODE, folder=folder.name)
    (folder / "2.png").unlink()
    write(folder / "3.png", 3, size=(8, 8))
    with pytest.raises(ValueError, match="3.png is 8x8 but .*1.png is 20x12"):
        call_node(NODE, folder=folder.name)
    write(tmp_path / "0.png", 0)
    with pytest.raises(PermissionError, match="outside ComfyUI's input folder"):
        call_node(NODE, folder=str(tmp_path))
    monkeypatch.setenv("ANIMATEFLOW_ALLOW_PATHS", str(tmp_path))
    assert call_node(NODE, folder=str(tmp_path))[2] == 1


def test_selection_is_skip_then_every_nth_then_cap():
    """VideoHelperSuite's Load Images order (its workflows convert to these inputs), over the whole small space."""
    items = list(range(13))
    for skip in range(15):
        for nth in range(1, 6):
            for cap in range(6):
                picked = image_sequence.Selection(skip, nth, cap).apply(items)
                expected = items[skip:][::nth]
                assert picked == (expected[:cap] if cap else expected), (skip, nth, cap)
    with pytest.raises(ValueError, match="every_nth >= 1"):
        image_sequence.Selection(every_nth=0)


def test_a_part_of_the_folder_loads_with_its_masks(folder):
    for i in range(10):
        write(folder / "image" / f"f{i}.png", 10 + i)
        write(folder / "mask" / f"m{i}.png", 25 * i, mode="L")
    images, masks, count = call_node(NODE, folder=folder.name, skip_first_frames=1, select_every_nth=3,
                                     frame_load_cap=2)
    assert count == 2 and images.shape == (2, 12, 20, 3) and masks.shape == (2, 12, 20)
    assert images[:, 0, 0, 0].mul(255).round().int().tolist() == [11, 14]
    assert masks[:, 0, 0].mul(255).round().int().tolist() == [25, 100]
    with pytest.raises(ValueError, match=r"Load Image Sequence: folder: the 10 images .* all skipped: skip fewer"):
        call_node(NODE, folder=folder.name, skip_first_frames=10)


def test_plain_folder_masks_are_the_frames_transparency(folder):
    """Without mask/, each frame's mask is 1 - its alpha, as ComfyUI's Load Image (Pillow path) and
    VideoHelperSuite's Load Images make it, and 0 where a frame has no transparency: RGBA, LA, a palette with a
    transparent index, and RGB."""
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 256, (12, 20, 4), dtype=np.uint8), "RGBA").save(folder / "f0.png")
    Image.fromarray(rng.integers(0, 256, (12, 20, 2), dtype=np.uint8), "LA").save(folder / "f1.png")
    palette = Image.fromarray(rng.integers(0, 4, (12, 20), dtype=np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    palette.save(folder / "f2.png", transparency=1)
    # An RGB file's tRNS colour is no mask to Load Image either.
    Image.fromarray(np.full((12, 20, 3), 77, np.uint8), "RGB").save(folder / "f3.png", transparency=(77, 77, 77))
    images, masks, count = call_node(NODE, folder=folder.name)
    assert count == 4
    for i in range(3):
        with Image.open(folder / f"f{i}.png") as img:
            rgba = np.array(img.convert("RGBA"), np.float32) / 255
        assert torch.equal(images[i], torch.from_numpy(rgba[..., :3])), i
        assert torch.allclose(masks[i], torch.from_numpy(1 - rgba[..., 3]), atol=1e-6), i
    assert masks[3].abs().max() == 0 and masks[0].std() > 0.1 and masks[2].unique().tolist() == [0.0, 1.0]
