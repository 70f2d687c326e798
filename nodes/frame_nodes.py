"""Select Every Nth Image / Latent / Mask: thin a clip's frames (every nth after skipping the first ones), with
how many are left. One node per type, since a link's type is fixed: VideoHelperSuite's three convert to these."""

from __future__ import annotations

from comfy_api.latest import io

from ..media import frame_selection
from .common import CATEGORY, display_name, node_id, search_aliases

SKIP = "skip_first_frames"


def _schema(kind: str, socket_type, socket: str, items: str, description: str, *aliases: str) -> io.Schema:
    """The three nodes' schema: their frames in, the selection and its count out. The selection's output id
    differs from the input's (hosts before 0.33 refuse an id used for both); it shows under the input's name."""
    item = kind.lower()
    return io.Schema(
        node_id=node_id(f"SelectEveryNth{kind}"),
        **search_aliases(f"Select Every Nth {kind}", "every nth frame", *aliases),
        display_name=display_name(f"Select Every Nth {kind}"),
        category=CATEGORY,
        description=description,
        inputs=[
            socket_type.Input(socket, tooltip=f"The {items} to select from."),
            io.Int.Input("select_every_nth", default=1, min=1, max=100000,
                         tooltip=f"Keep every nth {item} (1 keeps all, 2 every other one: half the frame rate)."),
            io.Int.Input(SKIP, default=0, min=0, max=100000,
                         tooltip=f"{kind}s to drop at the start, before selecting."),
        ],
        outputs=[socket_type.Output("selected", display_name=socket, tooltip=f"The selected {items}."),
                 io.Int.Output("count", display_name="count", tooltip="How many frames are left.")],
    )


class SelectEveryNthImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema("Image", io.Image, "images", "frames",
                       "Keeps every nth image of a batch after skipping the first ones: thins a clip (halves its "
                       "frame rate at 2) or trims its start. Divide the fps you give Video Combine by the same n.",
                       "drop frames")

    @classmethod
    def execute(cls, images, select_every_nth: int, skip_first_frames: int) -> io.NodeOutput:
        picked = frame_selection.select_frames(images, select_every_nth, skip_first_frames, SKIP)
        return io.NodeOutput(picked, picked.shape[0])


class SelectEveryNthLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema("Latent", io.Latent, "latents", "latent frames",
                       "Keeps every nth frame of a latent batch after skipping the first ones; a per-frame noise "
                       "mask is selected with it.")

    @classmethod
    def execute(cls, latents, select_every_nth: int, skip_first_frames: int) -> io.NodeOutput:
        picked = frame_selection.select_latent_frames(latents, select_every_nth, skip_first_frames, SKIP)
        return io.NodeOutput(picked, picked["samples"].shape[0])


class SelectEveryNthMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema("Mask", io.Mask, "masks", "masks",
                       "Keeps every nth mask of a batch after skipping the first ones: the masks of a clip thinned "
                       "with Select Every Nth Image, kept in step with its frames.")

    @classmethod
    def execute(cls, masks, select_every_nth: int, skip_first_frames: int) -> io.NodeOutput:
        picked = frame_selection.select_frames(masks, select_every_nth, skip_first_frames, SKIP)
        return io.NodeOutput(picked, picked.shape[0])


NODES = [SelectEveryNthImage, SelectEveryNthLatent, SelectEveryNthMask]
