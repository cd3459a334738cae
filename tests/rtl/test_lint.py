"""Every component's Verilog passes verilator --lint-only -Wall (see sim/lint.py for the
generator artifacts that are suppressed)."""

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.rtl.elementwise import ResidualAddStage
from hgpipe.rtl.layernorm import LayerNormStage
from hgpipe.rtl.linear import LinearStage
from hgpipe.rtl.lut import LutStage
from hgpipe.graph.ddr import DdrLayout
from hgpipe.rtl.attention import AvHead, QkHead
from hgpipe.rtl.axi import AxiArbiter, AxiParams
from hgpipe.rtl.ddr import DdrFifoPort
from hgpipe.rtl.linear import HeadStage
from hgpipe.rtl.plumbing import Fifo, Fork, Gearbox, Merge
from hgpipe.rtl.softmax import SoftmaxStage
from hgpipe.graph.layout import TokenLayout
from hgpipe.rtl.tokens import TokensStage
from sim.lint import lint
from sim.runner import verilog

F = Folding(tp=2, cip=4, cop=4)
COMPONENTS = {
    "linear": lambda g: LinearStage(g["blocks.0.attn.qkv"], F),
    "lut_groups": lambda g: LutStage(g["blocks.0.attn.qkv.requant"].table,
                                     g["blocks.0.attn.qkv.requant"].in_ranges[0],
                                     g["blocks.0.attn.qkv.requant"].out_range, 2, 4, 48),
    "gelu": lambda g: LutStage(g["blocks.0.mlp.gelu"].table, g["blocks.0.mlp.gelu"].in_ranges[0],
                               g["blocks.0.mlp.gelu"].out_range, 2, 4, 32),
    "add": lambda g: ResidualAddStage(g["blocks.0.add1"], 8),
    "layernorm": lambda g: LayerNormStage(g["blocks.0.norm1"], F, 16),
    "softmax": lambda g: SoftmaxStage(g["blocks.0.attn.softmax"], F),
    "qk_head": lambda g: QkHead(g["blocks.0.attn.qk"], Folding(2, 4, 2), 1, 16, banks=3),
    "av_head": lambda g: AvHead(g["blocks.0.attn.av"], Folding(2, 4, 4), 0, 16),
    "tokens": lambda g: TokensStage(g["tokens"], F, g.layout),
    # padding: 4 keys masked in softmax, 4 zero token rows
    "softmax_padded": lambda g: SoftmaxStage(g["blocks.0.attn.softmax"], F, 20),
    "tokens_padded": lambda g: TokensStage(g["tokens"], F, TokenLayout(16, 16, 20, 20, 0)),
    "head": lambda g: HeadStage(g["head"], Folding(2, 4, 5), 16),
    "fifo": lambda g: Fifo(12, 5),
    "gearbox": lambda g: Gearbox(2, 3, 4, 5),
    "fork": lambda g: Fork(12, 3),
    "merge": lambda g: Merge(12, 3, 2),
    "ddr_fifo_packed": lambda g: DdrFifoPort(DdrLayout(24, 96, 200), 0x1000, AxiParams()),
    "ddr_fifo_split": lambda g: DdrFifoPort(DdrLayout(300, 9, 20, burst=4), 0, AxiParams()),
    "axi_arbiter": lambda g: AxiArbiter(3, AxiParams()),
}


@pytest.mark.parametrize("name", COMPONENTS)
def test_component_lints_clean(micro_graphs, name):
    graphs, _ = micro_graphs
    problems = lint(verilog(COMPONENTS[name](graphs["w3a3"]), name), name)
    assert problems == []


def test_lint_catches_a_real_problem():
    """A combinational loop is reported, so a clean result means something."""
    src = ("module loop(input a, output y); wire b; assign b = ~(b & a); assign y = b; "
           "endmodule\n")
    assert any("UNOPTFLAT" in p or "ALWCOMBORDER" in p or "Warning" in p
               for p in lint(src, "loop"))
