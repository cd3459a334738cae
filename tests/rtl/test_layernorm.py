"""LayerNorm stage in cocotb: bit-exact, and one pass per row (the contract's cycles)."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.rtl.layernorm import LayerNormStage

from .conftest import check, simulate_stage, stage_matrix

FOLDINGS = [Folding(tp=2, cip=1, cop=1),   # HG-PIPE's: one channel per token per cycle
            Folding(tp=1, cip=8, cop=8),   # two beats a row: more banks
            Folding(tp=4, cip=4, cop=4)]


@stage_matrix
@pytest.mark.parametrize("folding", FOLDINGS, ids=str)
def test_layernorm_stage(micro_graphs, simulator, bits, folding, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    name = "blocks.0.norm1" if folding.tp != 4 else "blocks.0.norm2"
    tokens, channels = g.shape(name)
    comp = LayerNormStage(g[name], folding, channels)
    result, declared, per_image = simulate_stage(g, patches[bits], name, comp, folding,
                                                 simulator, stall, tokens, channels)
    check(result, declared, per_image, stall)
