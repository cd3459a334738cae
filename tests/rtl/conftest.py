"""Fixtures for RTL tests: small quantized graphs and a helper that simulates one stage."""

from __future__ import annotations

import os

import pytest

from hgpipe.graph.contract import Folding, cycles
from hgpipe.model import preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from sim import runner
from sim.stage_io import stage_vectors

from ..conftest import images_for

IMAGES = 3  # back to back: the steady-state interval is measured between images 2 and 3
SIMULATORS = os.environ.get("HGPIPE_SIMULATORS", "verilator,icarus").split(",")


def stage_matrix(test):
    """Every stage test runs on each simulator, at w3a3 and w4a4, without and with random
    valid/ready stalls (probability 0.3 per cycle on every stream)."""
    for name, values in (("stall", [0.0, 0.3]), ("bits", ["w3a3", "w4a4"]),
                         ("simulator", SIMULATORS)):
        test = pytest.mark.parametrize(name, values)(test)
    return test


@pytest.fixture(scope="session")
def micro_graphs():
    """vit-micro (16 tokens, 16 channels, 2 heads) at w3a3 and w4a4, plus test patches."""
    cfg = preset("vit-micro")
    w = random_weights(cfg, seed=1)
    graphs = {b: quantize_model(cfg, w, images_for(cfg, 8), QuantConfig(bits=BitSpec.parse(b)))
              for b in ("w3a3", "w4a4")}
    patches = {b: g.encode_images(images_for(cfg, IMAGES, seed=5)) for b, g in graphs.items()}
    return graphs, patches


@pytest.fixture(scope="session")
def extra_graph():
    """vit-micro with DeiT's extra class token (16 patches, 17 tokens, a prime) at w4a4,
    plus test patches."""
    cfg = preset("vit-micro").replace(class_token="extra")
    g = quantize_model(cfg, random_weights(cfg, seed=2), images_for(cfg, 8),
                       QuantConfig(bits=BitSpec.parse("w4a4")))
    return g, g.encode_images(images_for(cfg, IMAGES, seed=6))


def simulate_stage(graph, patches, name, component, folding: Folding, simulator: str,
                   stall: float, tokens: int, in_channels: int, head: int | None = None):
    """Simulate one stage against its golden vectors; return the result and the contract's
    cycles per image."""
    vec = stage_vectors(graph, name, patches, folding, stall=stall, seed=7, head=head)
    safe = name.replace(".", "_")
    result = runner.run(component, safe, vec, simulator)
    declared = cycles(graph[name], folding, tokens, in_channels)
    return result, declared, len(vec.output.beats) // vec.images


def check(result, declared: int, beats_per_image: int, stall: float) -> None:
    assert result.bit_exact, result.first_mismatch
    if stall == 0.0:
        intervals = result.image_interval(beats_per_image)
        assert intervals and all(i == declared for i in intervals), (intervals, declared)
