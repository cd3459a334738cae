"""Residual add (skip aligned by a rounding shift, plus the requantized branch) in cocotb."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.rtl.elementwise import ResidualAddStage

from .conftest import check, simulate_stage, stage_matrix


@stage_matrix
@pytest.mark.parametrize("name, folding", [("blocks.0.add1", Folding(2, 4, 4)),
                                           ("blocks.0.add2", Folding(1, 16, 16))])
def test_residual_add(micro_graphs, simulator, bits, name, folding, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    tokens, channels = g.shape(name)
    comp = ResidualAddStage(g[name], folding.tp * folding.cip)
    result, declared, per_image = simulate_stage(g, patches[bits], name, comp, folding,
                                                 simulator, stall, tokens, channels)
    check(result, declared, per_image, stall)
