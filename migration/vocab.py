"""The leading pack's and VideoHelperSuite's option names, translated to ours.

Pure functions of strings and numbers: the converter, the editor's replacements and the combined nodes (which accept
the leading pack's names, because the editor copies widget values verbatim) all translate through here, so a
setting means the same thing whichever way a workflow arrives.
"""

from __future__ import annotations

import re

# The leading pack's beta schedule names (its BetaSchedules aliases) → ours; None: no equivalent.
BETA_SCHEDULES: dict[str, str | None] = {
    "autoselect": "auto",
    "use existing": "sd",
    "sqrt_linear (AnimateDiff)": "animatediff",
    "linear (AnimateDiff-SDXL)": "sdxl",
    "linear (HotshotXL/default)": "sd",
    "lcm": "lcm",
    "lcm[100_ots]": "lcm",
    "lcm >> sqrt_linear": "lcm",
    "sqrt_linear": "animatediff",
    "linear": "sd",
    "avg(sqrt_linear,linear)": None,
    "lcm avg(sqrt_linear,linear)": None,
    "lcm[25_ots]": None,
    "sqrt": None,
    "cosine": None,
    "squaredcos_cap_v2": None,
}
OUR_BETA_SCHEDULES = ("auto", "animatediff", "sd", "lcm", "sdxl")
# What the combined nodes offer: the leading pack's names we can honour (so a copied value stays valid), then ours.
COMBINED_BETA_OPTIONS = tuple(k for k, v in BETA_SCHEDULES.items() if v is not None) + OUR_BETA_SCHEDULES
_APPROXIMATE_BETAS = {"lcm[100_ots]", "lcm >> sqrt_linear"}


def beta_schedule(name: str) -> tuple[str, str | None]:
    """(our schedule, a warning or None) for one of their beta schedule names, or one of ours."""
    if name in OUR_BETA_SCHEDULES:
        return name, None
    if name not in BETA_SCHEDULES:
        return "auto", f"beta_schedule {name!r} is unknown; using auto (the motion module's own schedule)"
    ours = BETA_SCHEDULES[name]
    if ours is None:
        return "auto", (f"beta_schedule {name!r} has no equivalent here; using auto (the motion module's own "
                        f"schedule). Choose animatediff, sd, lcm or sdxl if that is not what you want")
    if name in _APPROXIMATE_BETAS:
        return ours, f"beta_schedule {name!r} becomes {ours!r} (plain LCM sampling, not the same variant)"
    return ours, None


FUSE_METHODS = ("pyramid", "flat", "gaussian", "overwrite")


def fuse_method(name: str) -> tuple[str, str | None]:
    """Their fuse methods are `pyramid`, `flat` (same maths as ours) and experimental ones we do not have."""
    if name in FUSE_METHODS:
        return name, None
    return "pyramid", f"fuse_method {name!r} has no equivalent here; using pyramid"


def vhs_force_size(value: str, width: int, height: int) -> tuple[int, int, str | None]:
    """VideoHelperSuite's old `force_size` combo ("Disabled", "Custom Width", "512x?", "?x768", "512x512", ...) →
    our custom_width, custom_height (0 keeps the source's)."""
    text = str(value).strip()
    if text in ("", "Disabled"):
        return 0, 0, None
    if text == "Custom":
        return int(width), int(height), None
    if text == "Custom Width":
        return int(width), 0, None
    if text == "Custom Height":
        return 0, int(height), None
    match = re.fullmatch(r"(\d+|\?)x(\d+|\?)", text)
    if match:
        w, h = (0 if part == "?" else int(part) for part in match.groups())
        return w, h, None
    return 0, 0, f"force_size {value!r} is unknown; the source size is kept"
