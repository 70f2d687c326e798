"""The motion module's sinusoidal positional encoding against scripts/fixtures.py's, written from the formula
(sin on even channels, cos on odd, base 10000) element by element, independently of motion/model.py."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import pack_module

from scripts import fixtures

model = pack_module("motion.model")


@pytest.mark.parametrize("length,channels", [(24, 320), (32, 640), (32, 1280), (64, 320), (7, 6)])
def test_model_encoding_matches_the_formula(length, channels):
    ours = model.sinusoidal_encoding(length, channels)
    reference = fixtures.sinusoidal_encoding(length, channels)
    assert ours.shape == reference.shape == (1, length, channels) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, reference, rtol=0, atol=2e-6)


def test_reference_values_by_hand():
    pe = fixtures.sinusoidal_encoding(3, 4)[0].double()
    want = [[0.0, 1.0, 0.0, 1.0],
            [math.sin(1), math.cos(1), math.sin(1 / 100), math.cos(1 / 100)],  # 10000^(2/4) = 100
            [math.sin(2), math.cos(2), math.sin(2 / 100), math.cos(2 / 100)]]
    torch.testing.assert_close(pe, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-7)

