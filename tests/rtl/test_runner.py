"""The Verilator build makes the top module's own signals public (ports, busy counters),
not every signal of the design: what keeps whole-accelerator builds fast at -O2."""

from __future__ import annotations

import re

from sim import runner

SOURCE = """
module inner(input clk, input [3:0] a, output reg [3:0] q);
  reg [3:0] hidden;
  always @(posedge clk) begin hidden <= a; q <= hidden; end
endmodule
module outer(input clk, input rst, input [3:0] a, output [3:0] y);
  reg [31:0] busy__x;
  always @(posedge clk) busy__x <= rst ? 0 : busy__x + 1;
  inner u(.clk(clk), .a(a), .q(y));
endmodule
"""


def test_only_the_top_module_is_public(tmp_path):
    bdir = runner.build(SOURCE, "outer", "verilator", build_root=tmp_path)
    syms = "".join(p.read_text() for p in bdir.glob("*Syms*.cpp"))
    public = set(re.findall(r"__Vscopep_(\w+)->varInsert\(\"(\w+)\"", syms))
    assert ("outer", "busy__x") in public and ("outer", "a") in public
    assert not {v for s, v in public if s not in ("TOP", "outer")}, public
    assert "hidden" not in {v for _, v in public}
