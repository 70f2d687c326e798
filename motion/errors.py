"""The error Apply Motion Module raises for a module it cannot apply as asked, shared by the modules it composes."""


class MotionApplyError(ValueError):
    """A motion module that cannot be applied as asked; the message names the input and the fix."""
