"""Softmax unit (one per head) in cocotb: bit-exact, one pass per row."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.rtl.softmax import SoftmaxStage

from .conftest import check, simulate_stage, stage_matrix

FOLDINGS = [Folding(tp=2, cip=1, cop=1), Folding(tp=1, cip=4, cop=4),
            Folding(tp=4, cip=16, cop=16)]


@stage_matrix
@pytest.mark.parametrize("folding", FOLDINGS, ids=str)
def test_softmax_unit(micro_graphs, simulator, bits, folding, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    name = "blocks.0.attn.softmax"
    _, tokens, _ = g.shape(name)
    head = 1 if folding.tp == 2 else 0
    comp = SoftmaxStage(g[name], folding)
    result, declared, per_image = simulate_stage(g, patches[bits], name, comp, folding,
                                                 simulator, stall, tokens, tokens, head=head)
    check(result, declared, per_image, stall)
