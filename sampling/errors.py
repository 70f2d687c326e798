"""The typed errors of the sampling package: what is wrong with which input and the fix, never which node."""

from ..errors import InputError


class SamplingError(InputError):
    """A sampling setting, conditioning or latent that cannot be sampled as given."""


class ContextOptionsError(SamplingError):
    """Context window settings outside what the window schedules accept."""


class FrameCountError(SamplingError):
    """A per-frame conditioning or hint batch whose length is not the latent's frame count."""


class ContextWindowError(SamplingError):
    """Sampling in windows produced something unusable (NaN/inf, or a frame no window covered)."""


class PromptTravelError(SamplingError):
    """A prompt schedule that cannot be read or that leaves frames without a prompt."""
