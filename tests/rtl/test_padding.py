"""Streams padded to the token parallelism, in cocotb: vit-micro with an extra class token
(17 tokens, a prime) at TP 2 and 4, so 18 and 20 rows. The tokens stage appends the class
token's row and zero rows, softmax masks the padding keys (lanes of one chunk, at
several positions), the attention units run over the padded rows, and the head reads the
class token's row: each bit-exact against the golden model executing the same padding,
under stalls, with the contract's cycles."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.rtl.attention import AvHead, QkHead
from hgpipe.rtl.linear import HeadStage
from hgpipe.rtl.softmax import SoftmaxStage
from hgpipe.rtl.tokens import TokensStage

from .conftest import SIMULATORS, check, simulate_stage

TPS = [2, 4]
matrix = [pytest.mark.parametrize("simulator", SIMULATORS),
          pytest.mark.parametrize("stall", [0.0, 0.3]), pytest.mark.parametrize("tp", TPS)]


def _matrix(test):
    for mark in matrix:
        test = mark(test)
    return test


def _laid_out(extra_graph, tp):
    g, patches = extra_graph
    g = g.streamed(tp)
    assert g.layout.tokens == 17 and g.layout.rows == {2: 18, 4: 20}[tp]
    return g, patches


@_matrix
def test_tokens_append_the_class_row_and_zero_padding(extra_graph, simulator, stall, tp):
    g, patches = _laid_out(extra_graph, tp)
    f = Folding(tp, 8, 8)
    rows, channels = g.shape("tokens")
    result, declared, per_image = simulate_stage(g, patches, "tokens", TokensStage(
        g["tokens"], f, g.layout), f, simulator, stall, rows, channels)
    check(result, declared, per_image, stall)


@_matrix
def test_softmax_masks_padding_keys(extra_graph, simulator, stall, tp):
    """18 rows at 3 keys a beat: key 17 in lane 2 of the last chunk; 20 rows at 4: keys
    17..19 in lanes 1..3."""
    g, patches = _laid_out(extra_graph, tp)
    name = "blocks.0.attn.softmax"
    _, rows, keys = g.shape(name)
    f = Folding(tp, {2: 3, 4: 4}[tp], {2: 3, 4: 4}[tp])
    result, declared, per_image = simulate_stage(g, patches, name, SoftmaxStage(
        g[name], f, keys), f, simulator, stall, rows, keys, head=1)
    check(result, declared, per_image, stall)


@_matrix
def test_head_reads_the_class_row(extra_graph, simulator, stall, tp):
    g, patches = _laid_out(extra_graph, tp)
    rows, channels = g.shape("norm")
    f = Folding(tp, 4, 5)
    result, declared, per_image = simulate_stage(g, patches, "head", HeadStage(
        g["head"], f, rows, g.layout.cls_row), f, simulator, stall, rows, channels)
    check(result, declared, per_image, stall)


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("tp", TPS)
def test_attention_runs_over_padded_rows(extra_graph, simulator, tp):
    g, patches = _laid_out(extra_graph, tp)
    qk, av = "blocks.0.attn.qk", "blocks.0.attn.av"
    _, rows, _ = g.shape(qk)
    # a word of tp keys: the padding keys share the last one; of half the keys (9 or 10):
    # beats straddle words, and the last word is padding but one key or two
    for f in (Folding(tp, 4, tp), Folding(tp, 2, rows // 2)):
        result, declared, per_image = simulate_stage(g, patches, qk, QkHead(
            g[qk], f, 0, rows), f, simulator, 0.3, rows, 48, head=0)
        check(result, declared, per_image, 0.3)
    f = Folding(tp, rows // 2, 4)
    result, declared, per_image = simulate_stage(g, patches, av, AvHead(
        g[av], f, 1, rows), f, simulator, 0.3, rows, rows, head=1)
    check(result, declared, per_image, 0.3)
