"""Linear stage (QKV, O, FC1, FC2) in cocotb: any dividing folding, bit-exact accumulators."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.rtl.linear import LinearStage

from .conftest import check, simulate_stage, stage_matrix

CASES = [
    ("blocks.0.attn.qkv", Folding(tp=2, cip=4, cop=4)),
    ("blocks.0.attn.proj", Folding(tp=1, cip=8, cop=2)),
    ("blocks.0.mlp.fc1", Folding(tp=4, cip=16, cop=32)),   # one cycle per token group
    ("blocks.0.mlp.fc2", Folding(tp=2, cip=1, cop=8)),
]


@stage_matrix
@pytest.mark.parametrize("name, folding", CASES, ids=lambda c: str(c))
def test_linear_stage(micro_graphs, simulator, bits, name, folding, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    tokens, _ = g.shape(name)
    comp = LinearStage(g[name], folding)
    result, declared, per_image = simulate_stage(g, patches[bits], name, comp, folding,
                                                 simulator, stall, tokens,
                                                 g[name].in_features)
    check(result, declared, per_image, stall)


def test_linear_rejects_a_folding_that_does_not_divide(micro_graphs):
    graphs, _ = micro_graphs
    with pytest.raises(ValueError, match="does not divide"):
        LinearStage(graphs["w3a3"]["blocks.0.attn.qkv"], Folding(tp=1, cip=5, cop=4))
