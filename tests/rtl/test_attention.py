"""The attention core in cocotb: QK^T and AV units of one head each, bit-exact against the
golden stages, at foldings with one and several keys per beat, and words of K and V that
one beat fills or several (gathered); beats that straddle words are in ``test_padding``."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.rtl.attention import AvHead, QkHead

from .conftest import check, simulate_stage, stage_matrix

QK = [(Folding(tp=2, cip=4, cop=4), 0), (Folding(tp=1, cip=8, cop=1), 1),
      (Folding(tp=2, cip=2, cop=16), 1), (Folding(tp=4, cip=8, cop=4), 0)]
AV = [(Folding(tp=2, cip=4, cop=4), 1), (Folding(tp=1, cip=1, cop=8), 0),
      (Folding(tp=2, cip=16, cop=2), 0), (Folding(tp=4, cip=4, cop=1), 1)]


@stage_matrix
@pytest.mark.parametrize("folding, head", QK, ids=lambda c: str(c))
def test_qk_head(micro_graphs, simulator, bits, folding, head, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    name = "blocks.0.attn.qk"
    _, tokens, _ = g.shape(name)
    comp = QkHead(g[name], folding, head, tokens)
    result, declared, per_image = simulate_stage(g, patches[bits], name, comp, folding,
                                                 simulator, stall, tokens, 48, head=head)
    check(result, declared, per_image, stall)


@stage_matrix
@pytest.mark.parametrize("folding, head", AV, ids=lambda c: str(c))
def test_av_head(micro_graphs, simulator, bits, folding, head, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    name = "blocks.0.attn.av"
    tokens, _ = g.shape(name)
    comp = AvHead(g[name], folding, head, tokens)
    result, declared, per_image = simulate_stage(g, patches[bits], name, comp, folding,
                                                 simulator, stall, tokens, tokens, head=head)
    check(result, declared, per_image, stall)


def test_key_banks_need_tp_banks(micro_graphs):
    g = micro_graphs[0]["w3a3"]
    with pytest.raises(ValueError, match="cop >= tp"):
        QkHead(g["blocks.0.attn.qk"], Folding(tp=4, cip=4, cop=2), 0, 16)
    with pytest.raises(ValueError, match="cip >= tp"):
        AvHead(g["blocks.0.attn.av"], Folding(tp=4, cip=2, cop=4), 0, 16)
