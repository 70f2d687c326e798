"""FreeInit: the low-pass filters and the frequency mix against a DFT computed by hand, and whole sampling runs of a
tiny model through KSampler, KSamplerAdvanced and SamplerCustomAdvanced (one iteration is plain sampling, bit for
bit; later iterations start from the mixture the paper describes)."""

from __future__ import annotations

import cmath
import math

import pytest
import torch
from conftest import call_node, pack_module
from sampling_helpers import ksampler, ksampler_advanced, sampler_custom_advanced

freeinit = pack_module("sampling.freeinit")


def _dft_matrix(n: int, inverse: bool = False) -> torch.Tensor:
    sign = 1 if inverse else -1
    m = [[cmath.exp(sign * 2j * math.pi * j * k / n) for j in range(n)] for k in range(n)]
    return torch.tensor(m, dtype=torch.complex128) / (n if inverse else 1)


def _dft3(x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """DFT over dims (frames, h, w) of a (frames, channels, h, w) tensor, as explicit sums."""
    t, _, h, w = x.shape
    x = x.to(torch.complex128)
    x = torch.einsum("ut,tchw->uchw", _dft_matrix(t, inverse), x)
    x = torch.einsum("vh,tchw->tcvw", _dft_matrix(h, inverse), x)
    return torch.einsum("zw,tchw->tchz", _dft_matrix(w, inverse), x)


def _signed_frequency(k: int, n: int) -> float:
    """Bin k of an n-point DFT in units of the Nyquist frequency."""
    return 2 * (((k + n // 2) % n) - n // 2) / n


def _mask_by_hand(kind: str, t: int, h: int, w: int, d_s: float, d_t: float, order: int) -> torch.Tensor:
    mask = torch.zeros(t, h, w, dtype=torch.float64)
    for a in range(t):
        for b in range(h):
            for c in range(w):
                d2 = ((d_s / d_t) * _signed_frequency(a, t)) ** 2 + _signed_frequency(b, h) ** 2 \
                    + _signed_frequency(c, w) ** 2
                if kind == "gaussian":
                    mask[a, b, c] = math.exp(-d2 / (2 * d_s ** 2))
                elif kind == "butterworth":
                    mask[a, b, c] = 1 / (1 + (d2 / d_s ** 2) ** order)
                else:
                    mask[a, b, c] = 1.0 if d2 <= d_s ** 2 else 0.0
    return mask


@pytest.mark.parametrize("kind", freeinit.FILTERS)
@pytest.mark.parametrize("shape", [(4, 6, 8), (5, 3, 7)])
def test_filters_match_the_formulas_by_hand(kind, shape):
    d_s, d_t = 0.4, 0.3
    ours = freeinit.low_pass_filter(kind, *shape, d_s=d_s, d_t=d_t, order=3)
    torch.testing.assert_close(ours.double(), _mask_by_hand(kind, *shape, d_s, d_t, 3), rtol=1e-6, atol=1e-7)
    assert ours[0, 0, 0] == 1.0 and ours.min() >= 0 and ours.max() <= 1


def test_butterworth_matches_the_official_shifted_layout_for_even_sizes():
    """The official code builds masks after fftshift with coordinates 2t/T - 1; for even sizes that is our mask."""
    t, h, w, d_s, d_t, n = 4, 6, 8, 0.25, 0.25, 4
    official = torch.zeros(t, h, w, dtype=torch.float64)
    for a in range(t):
        for b in range(h):
            for c in range(w):
                d2 = ((d_s / d_t) * (2 * a / t - 1)) ** 2 + (2 * b / h - 1) ** 2 + (2 * c / w - 1) ** 2
                official[a, b, c] = 1 / (1 + (d2 / d_s ** 2) ** n)
    ours = freeinit.low_pass_filter("butterworth", t, h, w)  # the defaults are the paper's
    torch.testing.assert_close(torch.fft.fftshift(ours.double()), official, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", freeinit.FILTERS)
def test_freq_mix_matches_a_dft_by_hand(kind):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 4, 6, generator=gen)
    noise = torch.randn(5, 2, 4, 6, generator=gen)
    lpf = freeinit.low_pass_filter(kind, 5, 4, 6, d_s=0.5, d_t=0.5, order=2)
    mask = _mask_by_hand(kind, 5, 4, 6, 0.5, 0.5, 2)[:, None]
    expected = _dft3(_dft3(x) * mask + _dft3(noise) * (1 - mask), inverse=True)
    assert expected.imag.abs().max() < 1e-9
    torch.testing.assert_close(freeinit.freq_mix_3d(x, noise, lpf).double(), expected.real, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(freeinit.freq_mix_3d(x, noise, torch.ones(5, 4, 6)), x, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(freeinit.freq_mix_3d(x, noise, torch.zeros(5, 4, 6)), noise, rtol=1e-5, atol=1e-6)


def test_coarse_to_fine_steps_and_sigma_subsets():
    assert [freeinit.iteration_steps(25, 5, k, True) for k in range(5)] == [5, 10, 15, 20, 25]
    assert [freeinit.iteration_steps(2, 5, k, True) for k in range(5)] == [1, 1, 1, 1, 2]
    assert [freeinit.iteration_steps(25, 5, k, False) for k in range(5)] == [25] * 5
    sigmas = torch.linspace(14.6, 0, 11)
    sub = freeinit.subsample_sigmas(sigmas, 4)
    assert len(sub) == 5 and sub[0] == sigmas[0] and sub[-1] == sigmas[-1]
    assert all(s in sigmas for s in sub) and torch.all(sub[1:] < sub[:-1])
    assert freeinit.subsample_sigmas(sigmas, 10) is sigmas


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="iterations"):
        freeinit.FreeInitOptions(iterations=0)
    with pytest.raises(ValueError, match="d_s"):
        freeinit.FreeInitOptions(d_s=float("nan"))
    with pytest.raises(ValueError, match="filter"):
        freeinit.FreeInitOptions(filter="box")



def with_freeinit(model, **options):
    inputs = dict(iterations=3, filter="butterworth", d_s=0.25, d_t=0.25, order=4, coarse_to_fine=False) | options
    return call_node("AnimateFlow_FreeInit", model=model, **inputs)[0]


@pytest.mark.parametrize("run", [ksampler, ksampler_advanced, sampler_custom_advanced],
                         ids=["KSampler", "KSamplerAdvanced", "SamplerCustomAdvanced"])
def test_one_iteration_is_plain_sampling_exactly(small_model, run):
    plain = run(small_model, 4, sampler="euler_ancestral")
    assert torch.equal(run(with_freeinit(small_model, iterations=1), 4, sampler="euler_ancestral"), plain)
    assert not torch.equal(run(with_freeinit(small_model, iterations=2), 4, sampler="euler_ancestral"), plain)


def test_disabled_noise_samples_once(small_model):
    """FreeInit re-noises with the first pass's noise; with add_noise disabled there is none to keep."""
    plain = ksampler_advanced(small_model, 3, add_noise="disable")
    assert torch.equal(ksampler_advanced(with_freeinit(small_model), 3, add_noise="disable"), plain)


class _Recorder:
    """An inner SAMPLER_SAMPLE wrapper that records what each sampler pass starts from and returns."""

    def __init__(self):
        self.passes = []

    def __call__(self, executor, guider, sigmas, extra_args, callback, noise, latent_image, *args):
        out = executor(guider, sigmas, extra_args, callback, noise, latent_image, *args)
        self.passes.append({"sigmas": sigmas.clone(), "noise": noise.clone(), "out": out.clone(),
                            "model_sampling": guider.inner_model.model_sampling})
        return out


def test_later_iterations_start_from_the_renoised_low_frequencies(small_model):
    """With the ideal filter the start of iteration 2, projected on the low band, is exactly the low band of the
    first result re-noised with the first noise; and coarse-to-fine runs 1/3, 2/3, then all of the steps."""
    from comfy.patcher_extension import WrappersMP

    model = with_freeinit(small_model, filter="ideal", d_s=0.5, d_t=0.5, coarse_to_fine=True)
    recorder = _Recorder()
    model.add_wrapper_with_key(WrappersMP.SAMPLER_SAMPLE, "test_recorder", recorder)
    frames = 6
    ksampler(model, frames, steps=6, sampler="euler")
    assert [len(p["sigmas"]) - 1 for p in recorder.passes] == [2, 4, 6]
    first, second = recorder.passes[0], recorder.passes[1]
    sigma = second["sigmas"][0]
    assert sigma == first["sigmas"][0]
    renoised = first["out"] + sigma * first["noise"]  # the paper's add_noise to σ₀ (ε model, empty latent)
    start = second["noise"] * torch.sqrt(1 + sigma ** 2)  # KSampler starts an empty latent at noise·√(1+σ²)
    band = _mask_by_hand("ideal", frames, 8, 8, 0.5, 0.5, 4)[:, None]
    low = lambda v: _dft3(_dft3(v.double()) * band, inverse=True).real  # noqa: E731
    torch.testing.assert_close(low(start), low(renoised), rtol=1e-4, atol=1e-3)
    high_start, high_renoised = start.double() - low(start), renoised.double() - low(renoised)
    correlation = (high_start * high_renoised).sum() / (high_start.norm() * high_renoised.norm())
    assert abs(correlation) < 0.2, "high frequencies come from fresh noise"


def test_progress_runs_over_all_iterations(small_model):
    seen = []
    model = with_freeinit(small_model, iterations=2)
    from comfy.patcher_extension import WrappersMP

    def spy(executor, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, *args, **kwargs):
        def record(step, x0, x, total):
            seen.append((step, total))
            if callback is not None:
                callback(step, x0, x, total)
        return executor(noise, latent_image, sampler, sigmas, denoise_mask, record, *args, **kwargs)

    model.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, "test_spy", spy)
    ksampler(model, 2, steps=3)
    assert seen == [(i, 6) for i in range(6)]
