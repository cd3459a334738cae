"""LUT stage (requant, GELU-fused requant) in cocotb against the golden model."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.rtl.lut import LutStage

from .conftest import check, simulate_stage, stage_matrix

CASES = [  # (stage, folding): per-tensor, Q/K/V groups, GELU, residual-bound requant
    ("blocks.0.attn.qkv.requant", Folding(tp=2, cip=4, cop=4)),
    ("blocks.0.attn.qkv.requant", Folding(tp=1, cip=8, cop=8)),
    ("blocks.0.mlp.gelu", Folding(tp=2, cip=2, cop=2)),
    ("blocks.0.attn.proj.requant", Folding(tp=4, cip=1, cop=1)),
]


@stage_matrix
@pytest.mark.parametrize("name, folding", CASES, ids=lambda c: str(c))
def test_lut_stage(micro_graphs, simulator, bits, name, folding, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    st = g[name]
    tokens, channels = g.shape(name)
    comp = LutStage(st.table, st.in_ranges[0], st.out_range, folding.tp, folding.cip, channels)
    result, declared, per_image = simulate_stage(g, patches[bits], name, comp, folding,
                                                 simulator, stall, tokens, channels)
    check(result, declared, per_image, stall)
