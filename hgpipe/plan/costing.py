"""The plan's resources part by part: every part of its netlist with the resources the
model gives it, summing to the plan's total (the AXI arbiter of the DDR streams apart).

A stage's units share its modelled resources equally (a head's unit is one ``heads``-th of
the stage); a FIFO on an edge is its control logic and its words where the plan placed
them (per-head FIFOs of an edge each hold their share); AV's per-head output FIFOs are
control only (their words are the stage's ``out`` memory); a fork, gearbox or merge is its
calibrated logic; a stream in DDR its port logic (``resources.offchip.ddr_fifo``).
"""

from __future__ import annotations

from ..resources.model import Resources
from ..resources.offchip import ddr_fifo
from .netlist import DdrFifoPart, DdrWeightsPart, FifoPart, Part, PartKind, StageUnit
from .plan import Plan


def scaled(r: Resources, k: float) -> Resources:
    return Resources(r.lut * k, r.ff * k, r.dsp * k, r.bram * k, r.uram * k)


def part_costs(plan: Plan) -> list[tuple[Part, Resources]]:
    """(part, modelled resources) for every part of ``plan.netlist``."""
    net = plan.netlist
    units: dict[str, int] = {}
    for p in net.parts:
        if isinstance(p, StageUnit):
            units[p.owner] = units.get(p.owner, 0) + 1
    out = []
    for p in net.parts:
        if isinstance(p, StageUnit):
            r = scaled(plan.stage(p.owner).resources, 1 / units[p.owner])
        elif isinstance(p, FifoPart):
            r = p.logic() + p.words()
        elif isinstance(p, (DdrFifoPart, DdrWeightsPart)):
            r = ddr_fifo(p.layout) if isinstance(p, DdrFifoPart) else Resources()
        else:
            r = p.logic()
        out.append((p, r))
    return out


def kind_label(plan: Plan, p: Part) -> str:
    """What a part is, for tables: the stage kind of a unit (``linear``, ``qk``, ...),
    else the part kind (``fifo``, ``gearbox``, ...)."""
    return plan.stage(p.owner).kind if p.kind is PartKind.STAGE else p.kind.value
