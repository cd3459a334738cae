"""Fixtures for the synthesis tests: vit-micro quantized at w3a3."""

from __future__ import annotations

import pytest

from hgpipe.model import preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model

from ..conftest import images_for


@pytest.fixture(scope="session")
def micro_graphs_w3a3():
    cfg = preset("vit-micro")
    return quantize_model(cfg, random_weights(cfg, seed=1), images_for(cfg, 8),
                          QuantConfig(bits=BitSpec.parse("w3a3")))
