"""The typed errors of the motion package: what is wrong with which input and the fix, never which node."""

from ..errors import InputError


class MotionError(InputError):
    """A motion module, LoRA or motion setting that cannot be used as given."""


class MotionFormatError(MotionError):
    """A file that is not a motion module (or LoRA) of a format we know, or is damaged."""


class MotionApplyError(MotionError):
    """A motion module that cannot be applied to this model or these frames as asked."""


class MotionScaleError(MotionError):
    """A motion scale schedule that cannot be read or used."""
