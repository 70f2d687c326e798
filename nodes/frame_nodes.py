"""Select Every Nth Image / Latent / Mask: thin a clip's frames (every nth after skipping the first ones), with
how many are left. One node per type, since a link's type is fixed: VideoHelperSuite's three convert to these."""

from __future__ import annotations

from comfy_api.latest import io

from ..media import frame_selection
from .common import CATEGORY, display_name, node_id, search_aliases

SKIP = "skip_first_frames"


def _inputs(kind: str) -> list[io.Input]:
    return [
        io.Int.Input("select_every_nth", default=1, min=1, max=100000,
                     tooltip=f"Keep every nth {kind} (1 keeps all, 2 every other one: half the frame rate)."),
        io.Int.Input(SKIP, default=0, min=0, max=100000,
                     tooltip=f"{kind.capitalize()}s to drop at the start, before selecting."),
    ]


# The selection's output id differs from the input's (hosts before 0.33 refuse an id used for both); it shows
# under the input's name.
def _count() -> io.Output:
    return io.Int.Output("count", display_name="count", tooltip="How many frames are left.")


class SelectEveryNthImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("SelectEveryNthImage"),
            **search_aliases("Select Every Nth Image", "every nth frame", "drop frames"),
            display_name=display_name("Select Every Nth Image"),
            category=CATEGORY,
            description="Keeps every nth image of a batch after skipping the first ones: thins a clip (halves its "
                        "frame rate at 2) or trims its start. Divide the fps you give Video Combine by the same n.",
            inputs=[io.Image.Input("images", tooltip="The frames to select from."), *_inputs("image")],
            outputs=[io.Image.Output("selected", display_name="images", tooltip="The selected frames."), _count()],
        )

    @classmethod
    def execute(cls, images, select_every_nth: int, skip_first_frames: int) -> io.NodeOutput:
        picked = frame_selection.select_frames(images, select_every_nth, skip_first_frames, SKIP)
        return io.NodeOutput(picked, picked.shape[0])


class SelectEveryNthLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("SelectEveryNthLatent"),
            **search_aliases("Select Every Nth Latent", "every nth frame"),
            display_name=display_name("Select Every Nth Latent"),
            category=CATEGORY,
            description="Keeps every nth frame of a latent batch after skipping the first ones; a per-frame noise "
                        "mask is selected with it.",
            inputs=[io.Latent.Input("latents", tooltip="The latent frames to select from."), *_inputs("latent")],
            outputs=[io.Latent.Output("selected", display_name="latents", tooltip="The selected latent frames."),
                     _count()],
        )

    @classmethod
    def execute(cls, latents, select_every_nth: int, skip_first_frames: int) -> io.NodeOutput:
        picked = frame_selection.select_latent_frames(latents, select_every_nth, skip_first_frames, SKIP)
        return io.NodeOutput(picked, picked["samples"].shape[0])


class SelectEveryNthMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("SelectEveryNthMask"),
            **search_aliases("Select Every Nth Mask", "every nth frame"),
            display_name=display_name("Select Every Nth Mask"),
            category=CATEGORY,
            description="Keeps every nth mask of a batch after skipping the first ones: the masks of a clip thinned "
                        "with Select Every Nth Image, kept in step with its frames.",
            inputs=[io.Mask.Input("masks", tooltip="The masks to select from."), *_inputs("mask")],
            outputs=[io.Mask.Output("selected", display_name="masks", tooltip="The selected masks."), _count()],
        )

    @classmethod
    def execute(cls, masks, select_every_nth: int, skip_first_frames: int) -> io.NodeOutput:
        picked = frame_selection.select_frames(masks, select_every_nth, skip_first_frames, SKIP)
        return io.NodeOutput(picked, picked.shape[0])


NODES = [SelectEveryNthImage, SelectEveryNthLatent, SelectEveryNthMask]
