"""Video Combine of VideoHelperSuite (and the leading pack's deprecated AnimateDiff Combine) → ours.

Theirs writes one file in a chosen `format` ("image/gif", "video/h264-mp4", ...), each format bringing its own
widgets (pix_fmt, crf, save_metadata, ...); ours has a switch per output kind. The format's widgets below are those
of VideoHelperSuite's video_formats/*.json at 4ee72c0, in the order it lays them out.
"""

from __future__ import annotations

from typing import Any

from .rule import Context, Rule

FORMAT_WIDGETS: dict[str, tuple[tuple[str, Any], ...]] = {
    "image/webp": (("lossless", True),),
    "video/ProRes": (("profile", "hq"),),
    "video/av1-webm": (("pix_fmt", "yuv420p10le"), ("crf", 23), ("input_color_depth", "8bit"), ("save_metadata", True)),
    "video/ffmpeg-gif": (("dither", "sierra2_4a"),),
    "video/ffv1-mkv": (("level", "3"), ("coder", "1"), ("context", "1"), ("gop_size", 1), ("slices", "16"),
                       ("slicecrc", "1"), ("pix_fmt", "rgba64le"), ("save_metadata", True), ("trim_to_audio", False)),
    "video/gifski": (("quality", 90),),
    "video/h264-mp4": (("pix_fmt", "yuv420p"), ("crf", 19), ("save_metadata", True), ("trim_to_audio", False)),
    "video/h265-mp4": (("pix_fmt", "yuv420p10le"), ("crf", 22), ("save_metadata", True)),
    "video/nvenc_av1-mp4": (("pix_fmt", "yuv420p"), ("bitrate", 10), ("megabit", True), ("save_metadata", True)),
    "video/nvenc_h264-mp4": (("pix_fmt", "yuv420p"), ("bitrate", 10), ("megabit", True), ("save_metadata", True)),
    "video/nvenc_hevc-mp4": (("pix_fmt", "yuv420p"), ("bitrate", 10), ("megabit", True), ("save_metadata", True)),
    "video/webm": (("pix_fmt", "yuv420p"), ("crf", 20), ("save_metadata", True), ("trim_to_audio", False)),
}
BASE = ("frame_rate", "loop_count", "filename_prefix", "format", "pingpong", "save_output")
_ALL_FORMAT_WIDGETS = tuple(dict.fromkeys(name for ws in FORMAT_WIDGETS.values() for name, _ in ws))
# Which of our switches writes each of their formats: (our widget, value), and where its crf goes.
_OUTPUT = {
    "image/gif": ("save_gif", None), "video/gifski": ("save_gif", None), "video/ffmpeg-gif": ("save_gif", None),
    "video/h264-mp4": ("save_mp4", "crf"), "video/nvenc_h264-mp4": ("save_mp4", None),
    "video/webm": ("save_webm", "crf"),
    "video/h265-mp4": ("extra_format=h265-mp4", "extra_crf"), "video/nvenc_hevc-mp4": ("extra_format=h265-mp4", None),
    "video/av1-webm": ("extra_format=av1-mp4", "extra_crf"), "video/nvenc_av1-mp4": ("extra_format=av1-mp4", None),
    "video/ProRes": ("extra_format=prores-4444-mov", None), "video/ffv1-mkv": ("extra_format=ffv1-mkv", None),
    "image/webp": ("extra_format=webp", None),
    "video/8bit-png": ("save_png", None), "video/16bit-png": ("save_png", None),
}


def read_tail(values: dict[str, Any], tail: list[Any]) -> None:
    """A list-form save: after the base widgets come the format's widgets, then the preview's dict (dropped).
    Older versions had fewer format widgets, so when the count differs each value goes to the first widget of its
    kind (string, whole number, switch) still unfilled."""
    tail = [v for v in tail if not isinstance(v, dict)]
    expected = FORMAT_WIDGETS.get(str(values.get("format")), ())
    if len(tail) == len(expected):
        values.update((name, value) for (name, _), value in zip(expected, tail))
        return
    free = [(name, default) for name, default in expected] or [("pix_fmt", ""), ("crf", 0), ("save_metadata", True),
                                                                 ("trim_to_audio", False)]
    for value in tail:
        for i, (name, default) in enumerate(free):
            if type(value) is type(default) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                                and isinstance(default, (int, float)) and not isinstance(default, bool)):
                values[name] = value
                del free[i]
                break
        else:
            values.setdefault("_unplaced", []).append(value)


def translate_format(ctx: Context) -> None:
    old, new = ctx.old, ctx.new
    fmt = str(old.get("format", "image/gif"))
    for name, default in FORMAT_WIDGETS.get(fmt, ()):
        old.setdefault(name, default)
    new.update(save_gif=False, save_mp4=False, save_webm=False, save_png=False, extra_format="none")
    switch, crf_widget = _OUTPUT.get(fmt, (None, None))
    if switch is None:
        ctx.warn(f"format {fmt!r} has no equivalent here; an MP4 (H.264) is written instead")
        switch, crf_widget = "save_mp4", None
    if "=" in switch:
        name, value = switch.split("=")
        new[name] = value
    else:
        new[switch] = True
    if crf_widget and "crf" in old:
        new[crf_widget] = int(old["crf"])
    elif "crf" in old and fmt.startswith("video/nvenc"):
        ctx.warn(f"{fmt}: bitrate settings have no equivalent here; quality follows crf")
    if "frame_rate" in old:
        new["fps"] = float(old["frame_rate"])
    if fmt == "image/webp":
        new["webp_quality"] = 100 if old.get("lossless", True) else 90
    pix_fmt = str(old.get("pix_fmt", ""))
    if "10le" in pix_fmt or "16le" in pix_fmt or fmt == "video/16bit-png" or old.get("input_color_depth") == "16bit":
        if fmt in ("video/h264-mp4", "video/16bit-png"):
            ctx.warn(f"{fmt} at 10 or 16 bits has no equivalent here: H.264 MP4 and PNG frames are written 8-bit")
        new["bit_depth"] = "10"
    if pix_fmt.startswith(("yuva", "rgba")) and fmt != "video/ffv1-mkv":
        ctx.warn(f"pix_fmt {pix_fmt!r}: alpha comes from the mask input here (connect the frames' alpha mask)")
    if fmt == "video/ProRes" and old.get("profile", "hq") not in ("4444", "4444xq"):
        ctx.warn(f"ProRes profile {old.get('profile', 'hq')!r} has no equivalent here; ProRes 4444 is written")
    if fmt in ("video/ffmpeg-gif", "video/gifski"):
        ctx.warn(f"{fmt}: the GIF is written by Pillow here (gifsicle_optimize/gifsicle_lossy shrink it)")
    # VHS pingpong plays the frames back without repeating the last or the first: our reverse with both trims.
    new["remove_head"] = new["remove_tail"] = True
    if old.get("save_output", True) is False:
        new["preview_only"] = True
    if old.get("save_metadata", True) is False:
        ctx.warn("save_metadata = False has no equivalent per node here; start ComfyUI with --disable-metadata "
                 "to keep the workflow out of the files")
    ctx.unless_default("trim_to_audio", False, "the audio is trimmed or padded to the video's length")
    for name in ("level", "coder", "context", "gop_size", "slices", "slicecrc", "dither", "quality"):
        if name in old and dict(FORMAT_WIDGETS.get(fmt, ())).get(name) != old[name]:
            ctx.warn(f"{fmt}: {name} = {old[name]!r} has no equivalent here; our encoder's setting is used")
    if old.get("_unplaced"):
        ctx.warn(f"saved values {old['_unplaced']!r} did not match {fmt}'s settings and were dropped")
    if "vae" in ctx.connected and ctx.link_types.get("images") != "IMAGE":
        # Theirs decodes latents arriving on `images` when a vae is connected (and ignores the vae when images
        # arrive there); ours takes latents on `latents`. Where the workflow does not say what arrives, latents:
        # what a vae is connected for.
        ctx.links["images"] = "latents"
    if "meta_batch" in ctx.connected:
        ctx.warn("meta_batch: the Meta Batch Manager has no equivalent here (connect latents and a vae to decode "
                 "a chunk at a time); the link is removed")


def combine_rules() -> tuple[Rule, ...]:
    defaults = {"frame_rate": 8, "loop_count": 0, "filename_prefix": "AnimateDiff", "format": "image/gif",
                "pingpong": False, "save_output": True}
    copy = {"frame_rate": "fps", "loop_count": "loop_count", "filename_prefix": "filename_prefix",
            "pingpong": "reverse"}
    # What the editor's replacement sets; it cannot translate `format`, so it keeps their default (a GIF).
    fixed = {"save_gif": True, "save_mp4": False, "remove_head": True, "remove_tail": True}
    return (
        Rule("VHS_VideoCombine", "AnimateFlow_VideoCombine",
             layouts=(BASE,), defaults=defaults, copy=copy, fixed=fixed,
             links={"images": "images", "audio": "audio", "vae": "vae", "meta_batch": None,
                    "frame_rate": "fps", "loop_count": "loop_count", "filename_prefix": "filename_prefix"},
             outputs={0: None}, aliases={"save_image": "save_output"},
             extra_widgets=frozenset(_ALL_FORMAT_WIDGETS), ui_only=frozenset({"videopreview"}),
             translate=translate_format, tail=read_tail),
        Rule("ADE_AnimateDiffCombine", "AnimateFlow_VideoCombine",
             layouts=(("frame_rate", "loop_count", "filename_prefix", "format", "pingpong", "save_image"),),
             defaults=defaults, copy=copy, fixed=fixed,
             links={"images": "images"}, outputs={0: None}, aliases={"save_image": "save_output"},
             extra_widgets=frozenset(_ALL_FORMAT_WIDGETS), ui_only=frozenset({"deprecation_warning", "videopreview"}),
             translate=translate_format, tail=read_tail),
    )
