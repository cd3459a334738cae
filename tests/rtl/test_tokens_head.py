"""Class token / position add, patch embedding and the classifier head in cocotb."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.model import preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from hgpipe.rtl.linear import HeadStage, LinearStage
from hgpipe.rtl.tokens import TokensStage

from ..conftest import images_for
from .conftest import IMAGES, check, simulate_stage, stage_matrix


@stage_matrix
@pytest.mark.parametrize("folding", [Folding(2, 4, 4), Folding(1, 16, 16)], ids=str)
def test_tokens_replace(micro_graphs, simulator, bits, folding, stall):
    graphs, patches = micro_graphs
    g = graphs[bits]
    tokens, channels = g.shape("tokens")
    comp = TokensStage(g["tokens"], folding, tokens)
    result, declared, per_image = simulate_stage(g, patches[bits], "tokens", comp, folding,
                                                 simulator, stall, tokens, channels)
    check(result, declared, per_image, stall)


@pytest.fixture(scope="module")
def extra_graph():
    """vit-micro with a prepended class token (17 tokens): DeiT's ``extra`` mode."""
    cfg = preset("vit-micro").replace(class_token="extra")
    g = quantize_model(cfg, random_weights(cfg, seed=2), images_for(cfg, 8),
                       QuantConfig(bits=BitSpec.parse("w4a4")))
    return g, g.encode_images(images_for(cfg, IMAGES, seed=6))


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_tokens_extra(extra_graph, simulator, stall):
    g, patches = extra_graph
    f = Folding(1, 8, 8)
    tokens, channels = g.shape("tokens")
    assert tokens == 17
    result, declared, per_image = simulate_stage(g, patches, "tokens", TokensStage(
        g["tokens"], f, tokens), f, simulator, stall, tokens, channels)
    check(result, declared, per_image, stall)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_tokens_extra_rejects_tp2(extra_graph):
    g, _ = extra_graph
    with pytest.raises(ValueError, match="tp = 1"):
        TokensStage(g["tokens"], Folding(2, 8, 8), 17)


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
