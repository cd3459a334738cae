"""Class token / position add, patch embedding and the classifier head in cocotb."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.graph.layout import TokenLayout
from hgpipe.rtl.linear import HeadStage, LinearStage
from hgpipe.rtl.tokens import TokensStage

from .conftest import check, simulate_stage, stage_matrix


@stage_matrix
@pytest.mark.parametrize("folding", [Folding(2, 4, 4), Folding(1, 16, 16)], ids=str)
def test_tokens_replace(micro_graphs, simulator, bits, folding, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    tokens, channels = g.shape("tokens")
    comp = TokensStage(g["tokens"], folding, g.layout)
    result, declared, per_image = simulate_stage(g, patches[bits], "tokens", comp, folding,
                                                 simulator, stall, tokens, channels)
    check(result, declared, per_image, stall)


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_tokens_extra(extra_graph, simulator, stall):
    """At TP = 1 the class token's row follows the 16 patches' (one group more out than in)."""
    g, patches = extra_graph
    g = g.streamed(1)
    f = Folding(1, 8, 8)
    tokens, channels = g.shape("tokens")
    assert tokens == 17 and g.layout.cls_row == 16
    result, declared, per_image = simulate_stage(g, patches, "tokens", TokensStage(
        g["tokens"], f, g.layout), f, simulator, stall, tokens, channels)
    check(result, declared, per_image, stall)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_tokens_rejects_a_layout_its_tp_does_not_divide(extra_graph):
    g, _ = extra_graph
    with pytest.raises(ValueError, match="multiple of tp"):
        TokensStage(g["tokens"], Folding(2, 8, 8), TokenLayout(16, 17, 17, 16, 16))


@stage_matrix
@pytest.mark.parametrize("folding", [Folding(2, 12, 4), Folding(4, 48, 16)], ids=str)
def test_patch_embed(micro_graphs, simulator, bits, folding, stall):
    """8-bit patch pixels times 8-bit weights (DSP-style multipliers)."""
    graphs, patches = micro_graphs
    g = graphs[bits]
    tokens, _ = g.shape("patch_embed")
    comp = LinearStage(g["patch_embed"], folding)
    result, declared, per_image = simulate_stage(g, patches[bits], "patch_embed", comp, folding,
                                                 simulator, stall, tokens, 48)
    check(result, declared, per_image, stall)


@stage_matrix
@pytest.mark.parametrize("folding", [Folding(2, 4, 5), Folding(1, 16, 2), Folding(4, 2, 10)],
                         ids=str)
def test_head(micro_graphs, simulator, bits, folding, stall):
    """Only the class token's row is computed; the other rows are drained."""
    graphs, patches = micro_graphs
    g = graphs[bits]
    tokens, channels = g.shape("norm")
    comp = HeadStage(g["head"], folding, tokens)
    result, declared, per_image = simulate_stage(g, patches[bits], "head", comp, folding,
                                                 simulator, stall, tokens, channels)
    check(result, declared, per_image, stall)
