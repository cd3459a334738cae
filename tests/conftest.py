"""Shared fixtures: small models with random weights by seed, and their quantized graphs."""

from __future__ import annotations

import numpy as np
import pytest

from hgpipe.model import preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model


def images_for(cfg, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(
        (n, cfg.in_chans, cfg.image_size, cfg.image_size))


@pytest.fixture(scope="session")
def digits_model():
    cfg = preset("vit-digits")
    return cfg, random_weights(cfg, seed=1)


@pytest.fixture(scope="session")
def graphs(digits_model):
    """vit-digits quantized at several bit widths on the same calibration batch."""
    cfg, w = digits_model
    calib = images_for(cfg, 16, seed=2)
    return {bits: quantize_model(cfg, w, calib, QuantConfig(bits=BitSpec.parse(bits)))
            for bits in ("w8a8", "w4a4", "w3a3")}


@pytest.fixture(scope="session")
def micro_graph_w3a3():
    """vit-micro as the calibration script quantizes it (benchmarks/calibrate_resources.py)."""
    cfg = preset("vit-micro")
    imgs = np.random.default_rng(0).standard_normal((4, cfg.in_chans, cfg.image_size,
                                                     cfg.image_size))
    return quantize_model(cfg, random_weights(cfg, seed=1), imgs,
                          QuantConfig(bits=BitSpec.parse("w3a3")))
