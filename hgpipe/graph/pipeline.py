"""The logic-depth budget of a clock, and the register stages it asks of each datapath.

One place decides how much logic may sit between two registers: the board clock (or
``--clock-mhz``) gives a logic-delay budget through the line ``hgpipe.synth`` estimates
clocks with, ``period = OVERHEAD_NS + SCALE * logic`` (Yosys cells_sim pin delays, no
routing), fitted on HG-PIPE's released blocks measured by the same code
(``benchmarks/timing.py``: MLP0 and ATTN0 both 3.87 ns of logic on their worst paths, a
weight ROM's output through 6 LUTs and 2 CARRY4s; 9 and 10 LUT levels on their deepest;
at the 410 MHz their published 7,118 images/s at II 57,624 imply). The budget then fixes

* how many adder-tree levels share a register stage (``adder_levels``), from the
  measured delay of one tree level of narrow adders (``TREE_LEVEL_NS``);
* whether memories use their output register (``read_latency`` 2), which a block RAM
  needs above ``MEM_REG_MHZ`` (its data out alone is about half the budget there).

The stage contract (``hgpipe.graph.contract.lag``) and the RTL read the same
``Pipelining``: a stage's cycles per image do not change, its latency grows by the
register stages added, and the scheduler sizes FIFOs with that latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ANCHOR_LOGIC_NS = 3.87     # HG-PIPE MLP0 and ATTN0, worst register-to-register logic
ANCHOR_LUT_LEVELS = 10     # and their deepest path in LUTs (ATTN0; MLP0: 9)
ANCHOR_MHZ = 410.0         # their clock in Vivado (7,118 images/s at II 57,624)
OVERHEAD_NS = 0.5          # FF clock-to-out 0.303 (cells_sim) + setup + uncertainty
SCALE = (1000.0 / ANCHOR_MHZ - OVERHEAD_NS) / ANCHOR_LOGIC_NS

TREE_LEVEL_NS = 0.85       # one adder-tree level of narrow adders (LUT + carry), measured
TREE_BASE_NS = 0.6         # the register stage's fixed part: a LUT and the enable
MEM_REG_MHZ = 250.0        # above this clock memories use their output register


def clock_period_ns(logic_ns: float) -> float:
    return OVERHEAD_NS + SCALE * logic_ns


def fmax_mhz(logic_ns: float) -> float:
    """The clock a module is estimated to close at whose worst path has ``logic_ns``."""
    return 1000.0 / clock_period_ns(logic_ns)


def logic_budget_ns(clock_mhz: float) -> float:
    """The logic delay a register-to-register path may have at ``clock_mhz``."""
    return max(0.0, (1000.0 / clock_mhz - OVERHEAD_NS) / SCALE)


@dataclass(frozen=True)
class Pipelining:
    """Register stages of the datapaths at one clock."""

    clock_mhz: float
    adder_levels: int     # adder-tree levels per register stage (>= 1)
    read_latency: int     # cycles from a memory's address to its data (1 or 2)

    def __post_init__(self) -> None:
        if self.adder_levels < 1 or self.read_latency not in (1, 2):
            raise ValueError(f"pipelining: adder_levels={self.adder_levels}, "
                             f"read_latency={self.read_latency}: expected >= 1 and 1 or 2")

    @classmethod
    def at(cls, clock_mhz: float) -> "Pipelining":
        budget = logic_budget_ns(clock_mhz)
        levels = max(1, int((budget - TREE_BASE_NS) // TREE_LEVEL_NS))
        return cls(clock_mhz, levels, 2 if clock_mhz > MEM_REG_MHZ else 1)

    @property
    def budget_ns(self) -> float:
        return logic_budget_ns(self.clock_mhz)

    @property
    def lut_levels(self) -> int:
        """LUT levels a register-to-register path may have at this clock: HG-PIPE's
        deepest at its clock, scaled with the logic budget."""
        return max(1, int(ANCHOR_LUT_LEVELS * self.budget_ns / ANCHOR_LOGIC_NS + 1e-9))

    def tree_stages(self, terms: int) -> int:
        """Register stages of an adder tree over ``terms`` products (0 for one term)."""
        levels = math.ceil(math.log2(terms)) if terms > 1 else 0
        return math.ceil(levels / self.adder_levels)

    def mac_stages(self, cip: int) -> int:
        """Cycles from a multiply-accumulate's operands to its accumulate stage: the
        product registers and the tree's register stages."""
        return 1 + self.tree_stages(cip)

    # Row passes (LayerNorm, softmax): the input beat and then its per-element terms
    # (LayerNorm's squares) are registered before the statistics accumulate; ``finish``
    # (free-running, after a row's last beat) and ``emit`` (per replayed beat, after the
    # row memory's read) have these register stages.
    ROW_INPUT = 2

    def finish_latency(self, step: str) -> int:
        """``layernorm``: C*s2 and s1^2 | v | v + offset | rsqrt index | rsqrt ROM.
        ``recip``: index | reciprocal ROM. ``max``: none."""
        return {"layernorm": 4 + self.read_latency, "recip": 1 + self.read_latency,
                "max": 0}[step]

    def emit_latency(self, step: str) -> int:
        """``layernorm``: C*x - s1 | *r | *gamma (two stages) | + beta (then the clamp into
        the output register). ``exp``: max - x | exp index | exp ROM. ``normalise``: operands | e*r
        (then rounding, shift and clamp into the output register)."""
        return {"layernorm": 5, "exp": 2 + self.read_latency, "normalise": 2}[step]

    def row_banks(self, finish: str, row_beats: int) -> int:
        """Banks of a row pass's row memory: a bank frees when its replay ends, and the
        writer may need it again the input stages and the finish (and a cycle) after the
        row's last beat."""
        return 2 + math.ceil((self.ROW_INPUT + self.finish_latency(finish) + 1) / row_beats)

    def row_pass_extra(self, finish: str, emit: str) -> int:
        """Latency a row pass adds over one with a combinational input, a one-cycle finish
        and emit (0 and 1 without a ROM), and a memory read latency of 1."""
        base_finish = 0 if finish == "max" else 1
        base_emit = 1 if emit == "exp" else 0
        return (self.ROW_INPUT + self.finish_latency(finish) - base_finish
                + self.emit_latency(emit) - base_emit + self.read_latency - 1)

    def mac_extra(self, cip: int) -> int:
        """Latency a multiply-accumulate stage adds over operands read with latency 1
        and summed in the same cycle."""
        return self.read_latency - 1 + self.mac_stages(cip)


# the clock designs are pipelined for when no plan says otherwise (VCK190's)
DEFAULT_MHZ = 425.0


def default() -> Pipelining:
    return Pipelining.at(DEFAULT_MHZ)
