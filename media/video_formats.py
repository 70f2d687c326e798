"""The file formats Video Combine writes besides GIF and PNG frames: what each can hold and how it is encoded.

One table says per format which pixel layouts it stores (bit depth, alpha), its quality scale, whether browsers
play it (and the MIME type with codec string they test with `canPlayType`), and the encoder arguments. The
writers read the table; they never name a codec themselves. Choosing a layout never fails: a format keeps the
alpha and the bit depth asked for where it can, and says in a note what it could not keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# libvpx has no x264 presets: its speed knob is cpu-used (0 slowest .. 5 fastest in "good" mode).
_VP9_CPU_USED = {"ultrafast": 5, "superfast": 5, "veryfast": 5, "faster": 4, "fast": 4, "medium": 3,
                 "slow": 2, "slower": 1, "veryslow": 1}
# SVT-AV1 presets run 0 (slowest) .. 11+; medium sits where its own default does.
_SVT_PRESET = {"ultrafast": 11, "superfast": 10, "veryfast": 9, "faster": 9, "fast": 8, "medium": 8, "slow": 6,
               "slower": 4, "veryslow": 2}
# x265 4.2's AVX2 code for 10-bit pictures corrupts its heap at widths 34-48 (measured on the imageio-ffmpeg and
# PyAV builds: "free(): invalid next size"); below 64 pixels it runs with SSE4.2 code, which is exact and fine.
_X265_SAFE_ASM_BELOW = 64


@dataclass(frozen=True)
class Layout:
    """What a format will actually store for one run."""

    depth: int
    alpha: bool
    pix_fmt: str


@dataclass(frozen=True)
class Format:
    key: str
    """The value users pick (`extra_format`) or the toggle's name without `save_` (mp4, webm)."""
    ext: str
    label: str
    ui_format: str
    """What the node's UI payload calls it (VideoHelperSuite's convention, e.g. video/h264-mp4)."""
    pix_fmts: dict[tuple[int, bool], str]
    """(bit depth, alpha) → the encoder's pixel format; the layouts this format can store."""
    mimes: dict[int, str] = field(default_factory=dict)
    """Bit depth → MIME type with codecs for a browser's canPlayType; empty when browsers do not play it."""
    crf_range: tuple[int, int] | None = None
    default_crf: int | None = None
    even_size: bool = False
    """4:2:0 encoders that refuse odd sizes: frames are padded with black by one pixel."""
    rgb: bool = False
    """Stores RGB planes (no Y'CbCr matrix involved)."""
    audio_args: tuple[str, ...] = ()
    muxer_args: tuple[str, ...] = ()

    @property
    def alpha_capable(self) -> bool:
        return any(alpha for _, alpha in self.pix_fmts)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(sorted({depth for depth, _ in self.pix_fmts}))

    def layout(self, depth: int, alpha: bool) -> Layout:
        """The layout closest to the one asked for: alpha first (it is content), then the bit depth."""
        alpha = alpha and self.alpha_capable
        depths = [d for d, a in self.pix_fmts if a == alpha]
        chosen = depth if depth in depths else max(depths)
        return Layout(chosen, alpha, self.pix_fmts[(chosen, alpha)])

    def browser_mime(self, depth: int) -> str | None:
        return self.mimes.get(depth)


_AAC = ("-c:a", "aac", "-b:a", "192k")
_MP4 = ("-movflags", "+faststart+use_metadata_tags", "-f", "mp4")

FORMATS: dict[str, Format] = {f.key: f for f in (
    Format("mp4", "mp4", "H.264 MP4", "video/h264-mp4", {(8, False): "yuv420p"},
           {8: 'video/mp4; codecs="avc1.640028"'}, (0, 51), 19, even_size=True, audio_args=_AAC, muxer_args=_MP4),
    Format("webm", "webm", "VP9 WEBM", "video/webm",
           {(8, False): "yuv420p", (10, False): "yuv420p10le", (8, True): "yuva420p"},
           {8: 'video/webm; codecs="vp9"', 10: 'video/webm; codecs="vp09.02.10.10"'}, (0, 63), 19,
           audio_args=("-c:a", "libopus", "-b:a", "128k"), muxer_args=("-f", "webm")),
    Format("h265-mp4", "mp4", "H.265 MP4", "video/h265-mp4", {(8, False): "yuv420p", (10, False): "yuv420p10le"},
           {8: 'video/mp4; codecs="hvc1.1.6.L93.B0"', 10: 'video/mp4; codecs="hvc1.2.4.L93.B0"'}, (0, 51), 28,
           even_size=True, audio_args=_AAC, muxer_args=_MP4),
    Format("av1-mp4", "mp4", "AV1 MP4", "video/av1-mp4", {(8, False): "yuv420p", (10, False): "yuv420p10le"},
           {8: 'video/mp4; codecs="av01.0.05M.08"', 10: 'video/mp4; codecs="av01.0.05M.10"'}, (0, 63), 35,
           even_size=True, audio_args=_AAC, muxer_args=_MP4),
    Format("prores-4444-mov", "mov", "ProRes 4444 MOV", "video/prores-mov",
           {(10, False): "yuv444p10le", (10, True): "yuva444p10le"},
           audio_args=("-c:a", "pcm_s16le"), muxer_args=("-movflags", "+use_metadata_tags", "-f", "mov")),
    Format("ffv1-mkv", "mkv", "FFV1 MKV (lossless)", "video/ffv1-mkv",
           {(8, False): "bgr0", (8, True): "bgra", (10, False): "gbrp10le", (10, True): "gbrap10le"}, rgb=True,
           audio_args=("-c:a", "flac"), muxer_args=("-f", "matroska")),
    Format("webp", "webp", "animated WEBP", "image/webp", {(8, False): "RGB", (8, True): "RGBA"},
           {8: "image/webp"}),
)}
EXTRA_FORMATS = ("none", "h265-mp4", "av1-mp4", "prores-4444-mov", "webp", "ffv1-mkv")


def codec_args(fmt: Format, layout: Layout, *, crf: int, preset: str, width: int) -> list[str]:
    """ffmpeg's video encoder arguments for `fmt` (pixel format and colour are the filter's job)."""
    if fmt.key == "mp4":
        return ["-c:v", "libx264", "-preset", preset, "-crf", str(crf)]
    if fmt.key == "webm":
        return ["-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0", "-deadline", "good",
                "-cpu-used", str(_VP9_CPU_USED[preset]), "-row-mt", "1"]
    if fmt.key == "h265-mp4":
        params = "log-level=error"
        if layout.depth > 8 and width + width % 2 < _X265_SAFE_ASM_BELOW:
            params += ":asm=sse4.2"
        return ["-c:v", "libx265", "-preset", preset, "-crf", str(crf), "-tag:v", "hvc1", "-x265-params", params]
    if fmt.key == "av1-mp4":
        return ["-c:v", "libsvtav1", "-preset", str(_SVT_PRESET[preset]), "-crf", str(crf)]
    if fmt.key == "prores-4444-mov":
        return ["-c:v", "prores_ks", "-profile:v", "4444", "-vendor", "apl0"]
    if fmt.key == "ffv1-mkv":
        return ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1"]
    raise ValueError(f"{fmt.label} is not written through ffmpeg")
