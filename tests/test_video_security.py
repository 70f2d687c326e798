"""Load Video reads the one file that passed the path policy and nothing else, whatever the file says.

Each attack file below is first shown to work against plain PyAV (`av.open(path)` decodes the secret frames from
outside the allowed folder), so the refusal that follows is a refusal of a real escape, not of a broken file.
The secret video's frames are a flat grey level no test clip uses, so reading it would be visible.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import urllib.request
import uuid
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import clip_helpers
from conftest import BASE_DIR, call_node, pack_module
from PIL import Image

from scripts.comfy_host import PromptFailed, PromptRejected

video_reader = pack_module("media.video_reader")
sealed_input = pack_module("media.sealed_input")
paths = pack_module("media.paths")
output_paths = pack_module("media.output_paths")
INPUT = BASE_DIR / "input"
OUTPUT = BASE_DIR / "output"
SECRET_GREY = 211
OPTIONS = dict(frame_load_cap=0, skip_first_frames=0, select_every_nth=1, force_rate=0.0, custom_width=0,
               custom_height=0)


def write_clip(path: Path, grey: int = SECRET_GREY, frames: int = 3, fmt: str | None = None) -> Path:
    return clip_helpers.write_clip(path, [np.full((32, 32, 3), grey, np.uint8)] * frames, container_format=fmt,
                                   h264=True)


def plain_pyav_levels(path: Path, **options) -> list[float]:
    """What unprotected PyAV decodes from `path`: the grey level of each frame."""
    with av.open(str(path), options=options) as container:
        return [float(frame.to_ndarray(format="rgb24").mean()) for frame in container.decode(video=0)]


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the input folder holding the secret as MP4, MPEG-TS and PNG."""
    folder = tmp_path / "outside"
    folder.mkdir()
    write_clip(folder / "secret.mp4")
    write_clip(folder / "secret.ts", fmt="mpegts")
    Image.fromarray(np.full((16, 16, 3), SECRET_GREY, np.uint8)).save(folder / "secret.png")
    return folder


@pytest.fixture
def inside(monkeypatch):
    """A fresh folder inside the input folder; no extra allowed roots."""
    monkeypatch.delenv(paths.ALLOW_ENV, raising=False)
    folder = INPUT / f"animateflow-sec-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder)


def hls(segment: str) -> str:
    return ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"#EXTINF:1.0,\n{segment}\n#EXT-X-ENDLIST\n")


def attack_files(inside: Path, outside: Path) -> dict[str, tuple[Path, bool, str]]:
    """name → (file inside the input folder, whether plain PyAV follows it out, words the refusal must use)."""
    rel = os.path.relpath(outside / "secret.ts", inside)
    (inside / "abs.m3u8").write_text(hls(str(outside / "secret.ts")))
    (inside / "fileurl.m3u8").write_text(hls(f"file:{outside / 'secret.ts'}"))
    (inside / "climb.m3u8").write_text(hls(rel))
    (inside / "playlist.mp4").write_text(hls(str(outside / "secret.ts")))  # a listed name, playlist inside
    (inside / "link.mp4").symlink_to(outside / "secret.mp4")
    (inside / "list.ffconcat").write_text("ffconcat version 1.0\nfile 'link.mp4'\n")
    (inside / "abs.ffconcat").write_text(f"ffconcat version 1.0\nfile '{outside / 'secret.mp4'}'\n")
    (inside / "frame1.png").symlink_to(outside / "secret.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(inside / "frame0.png")
    shutil.copy(inside / "frame0.png", inside / "frame%d.png")
    (inside / "stream.sdp").write_text("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
                                       "m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n")
    return {
        "hls absolute path": (inside / "abs.m3u8", True, "HLS playlist"),
        "hls file: url": (inside / "fileurl.m3u8", True, "HLS playlist"),
        "hls ../ path": (inside / "climb.m3u8", True, "HLS playlist"),
        "hls named .mp4": (inside / "playlist.mp4", False, "HLS playlist"),
        "ffconcat through a link": (inside / "list.ffconcat", True, "concat list"),
        "ffconcat absolute path": (inside / "abs.ffconcat", False, "concat list"),
        "image2 pattern": (inside / "frame%d.png", True, "numbered series"),
        "sdp network stream": (inside / "stream.sdp", False, "SDP"),
    }


FAMILIES = ["hls absolute path", "hls file: url", "hls ../ path", "hls named .mp4", "ffconcat through a link",
            "ffconcat absolute path", "image2 pattern", "sdp network stream"]


@pytest.mark.parametrize("family", FAMILIES)
def test_demuxers_that_open_other_files_are_refused(family, inside, outside):
    path, plain_follows, words = attack_files(inside, outside)[family]
    if plain_follows:
        levels = plain_pyav_levels(path)
        assert levels and abs(levels[-1] - SECRET_GREY) < 3, "the attack must reach the secret without protection"
    with pytest.raises(sealed_input.UnsafeVideoError, match=words):
        video_reader.read_video(paths.resolve_input_path(str(path), "t"))
    with pytest.raises(ValueError, match=f"Load Video \\(Path\\): .*{words}"):
        call_node("AnimateFlow_LoadVideoPath", video_path=str(path.relative_to(INPUT)), **OPTIONS)


def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield pos, size, kind
        pos += size


def _alias_entry(name: str) -> bytes:
    """A QuickTime 'alis' data reference, laid out as ffmpeg's mov demuxer reads it: one folder up, `name`."""
    volume = b"vol"
    body = bytes(10) + bytes([len(volume)]) + volume.ljust(27, b"\0") + bytes(12)
    body += bytes([len(name)]) + name.encode().ljust(63, b"\0") + bytes(16)
    body += struct.pack(">HH", 2, 1) + bytes(16)  # nlvl_from 2 = the parent folder, nlvl_to 1
    path = f"vol:dir:{name}".encode()
    path += b"\0" * (len(path) % 2)
    body += struct.pack(">HH", 2, len(path)) + path + struct.pack(">hH", -1, 0)
    return struct.pack(">I4sI", 12 + len(body), b"alis", 0) + body


def _with_external_reference(data: bytes, start: int, end: int, entry: bytes) -> bytes:
    """The movie with its track's data reference replaced by `entry` and its own media bytes zeroed, so any
    picture decoded from it must come from the referenced file (moov sits after mdat: offsets stay valid)."""
    out = bytearray()
    for pos, size, kind in _boxes(data, start, end):
        if kind in (b"moov", b"trak", b"mdia", b"minf", b"dinf"):
            inner = _with_external_reference(data, pos + 8, pos + size, entry)
            out += struct.pack(">I4s", 8 + len(inner), kind) + inner
        elif kind == b"dref":
            inner = struct.pack(">II", 0, 1) + entry
            out += struct.pack(">I4s", 8 + len(inner), kind) + inner
        elif kind == b"mdat":
            out += data[pos:pos + 8] + bytes(size - 8)
        else:
            out += data[pos:pos + size]
    return bytes(out)


def test_mov_external_data_reference_is_not_followed(tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    secret = write_clip(tmp_path / "secret.mp4")
    original = secret.read_bytes()
    movie = allowed / "reference.mov"
    movie.write_bytes(_with_external_reference(original, 0, len(original), _alias_entry("secret.mp4")))
    levels = plain_pyav_levels(movie, enable_drefs="1")
    assert levels and abs(levels[0] - SECRET_GREY) < 3, "with drefs on, ffmpeg reads the secret next door"
    monkeypatch.setenv(paths.ALLOW_ENV, str(allowed))
    real = paths.resolve_input_path(str(movie), "t")
    with pytest.raises(ValueError, match="reference.mov"):
        video_reader.read_video(real)


def test_normal_files_still_read_through_the_sealed_opener(tmp_path):
    for name in ("a.mp4", "a.mkv", "a.avi", "a.mov"):
        clip = write_clip(tmp_path / name, grey=90)
        video = video_reader.read_video(clip)
        assert video.frame_count == 3 and abs(video.images.mean().item() * 255 - 90) < 3, name


def test_fifo_in_place_of_the_file_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(ValueError, match="not a regular file"):
        video_reader.read_video(fifo)
    assert time.monotonic() - start < 5


def test_image_sequence_refuses_a_frame_linking_outside(inside, outside):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(inside / "0.png")
    (inside / "1.png").symlink_to(outside / "secret.png")
    with pytest.raises(PermissionError, match="Load Image Sequence: folder: 1.png is a link leading outside"):
        call_node("AnimateFlow_LoadImageSequence", folder=inside.name)
    (inside / "1.png").unlink()
    (inside / "1.png").symlink_to(inside / "0.png")
    images, _, count = call_node("AnimateFlow_LoadImageSequence", folder=inside.name)
    assert count == 2, "a link that stays inside the input folder is fine"


def test_image_sequence_refuses_a_mask_folder_linking_outside(inside, outside):
    (inside / "image").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(inside / "image" / "0.png")
    (inside / "mask").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PermissionError, match="secret.png is a link leading outside"):
        call_node("AnimateFlow_LoadImageSequence", folder=inside.name)


def test_nul_in_any_path_names_the_node(inside):
    with pytest.raises(ValueError, match="Load Video \\(Path\\): video_path contains a NUL"):
        call_node("AnimateFlow_LoadVideoPath", video_path="clip\0.mp4", **OPTIONS)
    with pytest.raises(ValueError, match="Load Video: video contains a NUL"):
        call_node("AnimateFlow_LoadVideo", video="clip\0.mp4", **OPTIONS)
    with pytest.raises(ValueError, match="Load Image Sequence: folder contains a NUL"):
        call_node("AnimateFlow_LoadImageSequence", folder="frames\0")
    with pytest.raises(ValueError, match="Video Combine: filename_prefix .* contains a NUL"):
        call_node("AnimateFlow_VideoCombine", images=torch.zeros(1, 8, 8, 3), fps=8.0, filename_prefix="a\0b",
                  save_gif=True, save_mp4=False)


def test_overlong_paths_give_a_clear_error(inside):
    long_name = "x" * 5000
    refusal = "Load Video \\(Path\\): video_path: .*\\(5029 characters\\) cannot be used as a path.*shorter"
    with pytest.raises(ValueError, match=refusal):
        call_node("AnimateFlow_LoadVideoPath", video_path=f"{inside.name}/{long_name}.mp4", **OPTIONS)
    before = set(os.listdir(OUTPUT)) if OUTPUT.exists() else set()
    for prefix, words in ((long_name, "file name part is 5000 bytes"), (f"{long_name}/clip", "folder name"),
                          ("/".join(["d" * 200] * 25), "full path would be")):
        with pytest.raises(ValueError, match=f"Video Combine: filename_prefix .*too long: .*{words}"):
            call_node("AnimateFlow_VideoCombine", images=torch.zeros(1, 8, 8, 3), fps=8.0, filename_prefix=prefix,
                      save_gif=True, save_mp4=False)
    assert set(os.listdir(OUTPUT)) == before


def test_prefix_through_a_linked_folder_creates_nothing_outside(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = OUTPUT / f"animateflow-link-{uuid.uuid4().hex[:8]}"
    link.symlink_to(target, target_is_directory=True)
    try:
        for prefix in (f"{link.name}/clip", f"{link.name}/new/deeper/clip"):
            with pytest.raises(output_paths.UnsafePrefixError, match="outside the output folder"):
                call_node("AnimateFlow_VideoCombine", images=torch.zeros(1, 8, 8, 3), fps=8.0,
                          filename_prefix=prefix, save_gif=True, save_mp4=False)
        assert list(target.iterdir()) == [], "no folder or file may appear through the link"
    finally:
        link.unlink()


def test_stale_partials_of_a_killed_run_are_swept(tmp_path):
    sub = f"animateflow-sweep-{uuid.uuid4().hex[:8]}"
    folder = OUTPUT / sub
    folder.mkdir(parents=True)
    try:
        old = time.time() - 2 * output_paths.STALE_PARTIAL_SECONDS
        stale = [folder / ".clip_00001_.mp4.0123abcd.partial", folder / ".clip_00001_.gif.89abcdef.partial.gifsicle"]
        fresh = folder / ".clip_00002_.mp4.fedcba98.partial"
        foreign = [folder / "notes.partial", folder / ".clip.mp4.partial", folder / ".x.mp4.0123abcd.partial.bak"]
        for path in [*stale, fresh, *foreign]:
            path.write_bytes(b"x")
        for path in [*stale, *foreign]:
            os.utime(path, (old, old))
        call_node("AnimateFlow_VideoCombine", images=torch.zeros(1, 8, 8, 3), fps=8.0, filename_prefix=f"{sub}/clip",
                  save_gif=True, save_mp4=False)
        left = {p.name for p in folder.iterdir()}
        assert not any(p.name in left for p in stale)
        assert fresh.name in left and all(p.name in left for p in foreign)
    finally:
        shutil.rmtree(folder)


def test_huge_decode_is_refused_before_allocating(tmp_path, monkeypatch):
    import psutil

    monkeypatch.delenv(video_reader.MAX_DECODE_ENV, raising=False)
    clip = write_clip(tmp_path / "long.mp4", frames=64)
    frame_bytes = 8192 * 8192 * 3 * 4
    assert 64 * frame_bytes > psutil.virtual_memory().total, "the request must exceed this machine's RAM"
    rss_before = psutil.Process().memory_info().rss
    options = video_reader.VideoOptions(width=8192, height=8192)
    refusal = ("loading 64 frames of .*long\\.mp4 at 8192x8192 needs 48.2 GB of RAM, above the limit of [0-9.]+ GB "
               "\\(80% of the RAM available now; .*ANIMATEFLOW_MAX_DECODE_GB\\)\\. Load fewer frames "
               "\\(frame_load_cap, select_every_nth\\) or a smaller size \\(custom_width")
    with pytest.raises(video_reader.DecodeTooLargeError, match=refusal):
        video_reader.read_video(clip, options)
    assert psutil.Process().memory_info().rss - rss_before < frame_bytes
    assert video_reader.read_video(clip, video_reader.VideoOptions(width=256, height=256)).frame_count == 64


def test_decode_limit_override_is_the_operators(tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "c.mp4", frames=4)
    monkeypatch.setenv(video_reader.MAX_DECODE_ENV, "0.00001")
    with pytest.raises(ValueError, match=f"Load Video \\(Path\\): .*set by the environment variable "
                                         f"{video_reader.MAX_DECODE_ENV}"):
        monkeypatch.setenv(paths.ALLOW_ENV, str(tmp_path))
        call_node("AnimateFlow_LoadVideoPath", video_path=str(clip), **OPTIONS)
    monkeypatch.setenv(video_reader.MAX_DECODE_ENV, "1")
    assert video_reader.read_video(clip).frame_count == 4
    monkeypatch.setenv(video_reader.MAX_DECODE_ENV, "lots")
    with pytest.raises(ValueError, match="number of gigabytes"):
        video_reader.read_video(clip)


def upload(server, name: str, data: bytes) -> dict:
    """POST /upload/image as the editor's upload button does (multipart form, field 'image')."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data
    body += (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n"
             f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(f"{server.url}/upload/image", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.host
def test_prompt_api_uploaded_playlist_cannot_reach_outside(server, tmp_path):
    """The attack as reported: upload a playlist through /upload/image, load it, save it, fetch it."""
    secret = write_clip(BASE_DIR / f"secret-{uuid.uuid4().hex[:6]}.ts", fmt="mpegts")
    tag = uuid.uuid4().hex[:8]
    names = {"m3u8": f"evil-{tag}.m3u8", "mp4": f"evil-{tag}.mp4"}
    try:
        for name in names.values():
            assert upload(server, name, hls(str(secret)).encode())["name"] == name
        listed = server.object_info()["AnimateFlow_LoadVideo"]["input"]["required"]["video"][1]["options"]
        assert names["mp4"] in listed and names["m3u8"] not in listed
        attempts = [("AnimateFlow_LoadVideo", "video", names["mp4"]),
                    ("AnimateFlow_LoadVideo", "video", names["m3u8"]),
                    ("AnimateFlow_LoadVideoPath", "video_path", names["m3u8"])]
        for class_type, key, value in attempts:
            prefix = f"sec_api_{tag}/leak"
            graph = {"1": {"class_type": class_type, "inputs": {key: value, **OPTIONS}},
                     "2": {"class_type": "AnimateFlow_VideoCombine",
                           "inputs": {"images": ["1", 0], "fps": 8.0, "filename_prefix": prefix, "save_gif": True,
                                      "save_mp4": True}}}
            try:
                server.run(graph, timeout=60)
            except PromptRejected:
                continue  # refused at validation: the unlisted name never reaches the node
            except PromptFailed as failed:
                assert "HLS playlist" in json.dumps(failed.errors), (class_type, value)
            else:
                pytest.fail(f"{class_type} loaded {value}")
            assert not (OUTPUT / f"sec_api_{tag}").exists() or not list((OUTPUT / f"sec_api_{tag}").iterdir())
    finally:
        secret.unlink()
        for name in names.values():
            (INPUT / name).unlink(missing_ok=True)
        shutil.rmtree(OUTPUT / f"sec_api_{tag}", ignore_errors=True)
