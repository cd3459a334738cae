"""The open timing estimate: Yosys netlists walked for their longest register-to-register
paths, and the budget check, which must fail when a register stage is missing."""

from __future__ import annotations

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.graph.pipeline import Pipelining, fmax_mhz, logic_budget_ns
from hgpipe.rtl.generate import verilog
from hgpipe.rtl.linear import LinearStage
from hgpipe.synth.delays import cell_arcs
from hgpipe.synth.design import judge
from hgpipe.synth.yosys import closure, split, synthesize

CHAIN = """
module chain #(parameter N = 4) (input clk, input [7:0] a, input [7:0] b, output reg [7:0] y);
  reg [7:0] ra, rb;
  always @(posedge clk) begin
    ra <= a; rb <= b;
    y <= ((ra ^ rb) + (ra & {rb[3:0], rb[7:4]})) ^ ((ra | rb) + (ra - rb)) ^ (ra + rb);
  end
endmodule
"""

CUT = """
module cut (input clk, input [7:0] a, input [7:0] b, output reg [7:0] y);
  reg [7:0] ra, rb, s1, s2, s3;
  always @(posedge clk) begin
    ra <= a; rb <= b;
    s1 <= (ra ^ rb) + (ra & {rb[3:0], rb[7:4]}); s2 <= (ra | rb) + (ra - rb); s3 <= ra + rb;
    y <= s1 ^ s2 ^ s3;
  end
endmodule
"""


def test_cells_sim_delays_are_read_from_yosys():
    arcs = cell_arcs()
    assert arcs["LUT6"].delay("I0", 0, "O", 0) == 642
    assert arcs["LUT6"].delay("I5", 0, "O", 0) == 127
    assert arcs["CARRY4"].delay("CI", 0, "CO", 3) == 114
    assert arcs["CARRY4"].delay("S", 0, "O", 1) == 400


def test_registers_between_adders_shorten_the_worst_path():
    deep, shallow = synthesize(CHAIN, "chain"), synthesize(CUT, "cut")
    for s in (deep, shallow):
        assert s.ff >= 16 and s.lut > 0
        # the path runs between the named registers
        assert s.worst.start.startswith(("ra", "rb", "s1", "s2", "s3"))
        assert s.worst.end.endswith(".D")
    assert deep.worst.ns > shallow.worst.ns
    assert deep.worst.cells > shallow.worst.cells
    assert deep.max_luts.luts >= shallow.max_luts.luts


def test_a_dsp_whose_registers_cannot_be_packed_fails_the_budget():
    reg = """
module dsp (input clk, input signed [11:0] a, input signed [11:0] b, output reg signed [23:0] p);
  reg signed [11:0] ra, rb; reg signed [23:0] m;
  always @(posedge clk) begin ra <= a; rb <= b; m <= ra * rb; p <= m; end
endmodule
"""
    comb = """
module dspc (input clk, input signed [11:0] a, input signed [11:0] b, output reg signed [23:0] p);
  reg signed [11:0] ra, rb;
  always @(posedge clk) p <= (ra ^ 12'h5a5) * rb;
  always @(posedge clk) begin ra <= a; rb <= b; end
endmodule
"""
    packed, through = synthesize(reg, "dsp"), synthesize(comb, "dspc")
    assert packed.dsp == through.dsp == 1
    pipe = Pipelining.at(425)
    assert packed.unpacked_dsps == 0 and judge(packed, pipe) == ()
    # a LUT in front of the multiplier: its input register cannot be packed
    assert through.unpacked_dsps == 1 and "dsp" in judge(through, pipe)


def test_budget_and_estimate_are_one_line():
    """The estimate puts HG-PIPE's blocks (as measured by benchmarks/timing.py) at their
    clock, and the budget of a clock is what the estimate allows there."""
    from hgpipe.graph.pipeline import ANCHOR_LOGIC_NS, ANCHOR_LUT_LEVELS, ANCHOR_MHZ
    p = Pipelining.at(425)
    assert p.read_latency == 2 and p.lut_levels == 9
    assert Pipelining.at(ANCHOR_MHZ).lut_levels == ANCHOR_LUT_LEVELS
    assert fmax_mhz(p.budget_ns) == pytest.approx(425)
    assert fmax_mhz(ANCHOR_LOGIC_NS) == pytest.approx(ANCHOR_MHZ)
    assert logic_budget_ns(300) > logic_budget_ns(425)
    assert Pipelining.at(300).adder_levels > p.adder_levels


@pytest.fixture(scope="module")
def fc2(micro_graphs_w3a3):
    return micro_graphs_w3a3["blocks.0.mlp.fc2"]


def _linear(st, pipe):
    comp = LinearStage(st, Folding(2, 32, 2), pipe=pipe)
    return synthesize(closure(split(verilog(comp, "lin")), "lin"), "lin")


def test_a_missing_register_stage_fails_the_budget(fc2):
    """The 32-term adder tree at 425 MHz: cut as the budget says it is within it; with
    every level in one stage (a register stage removed) the same check fails."""
    pipe = Pipelining.at(425)
    good = _linear(fc2, pipe)
    assert judge(good, pipe) == (), good.worst
    uncut = Pipelining(425, adder_levels=5, read_latency=2)
    assert uncut.tree_stages(32) == pipe.tree_stages(32) - 1
    bad = _linear(fc2, uncut)
    assert judge(bad, pipe), (bad.worst, bad.max_luts)     # too slow or too many LUTs deep
    assert bad.max_luts.luts > good.max_luts.luts and bad.worst.ns > good.worst.ns
