from __future__ import annotations

import numpy as np
import pytest

from hgpipe.model import preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model


@pytest.fixture(scope="session")
def micro_graph_w3a3():
    """vit-micro as the calibration script quantizes it (benchmarks/calibrate_resources.py)."""
    cfg = preset("vit-micro")
    imgs = np.random.default_rng(0).standard_normal((4, cfg.in_chans, cfg.image_size,
                                                     cfg.image_size))
    return quantize_model(cfg, random_weights(cfg, seed=1), imgs,
                          QuantConfig(bits=BitSpec.parse("w3a3")))
