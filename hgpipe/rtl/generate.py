"""The RTL backend: the plan's accelerator as one deterministic Verilog file."""

from __future__ import annotations

from ..graph.graph import IntGraph
from ..plan.plan import Plan
from .accelerator import Accelerator

TOP = "hgpipe_top"


def elaborate(graph: IntGraph, plan: Plan) -> Accelerator:
    """The accelerator with the plan's foldings, FIFO depths and K/Q/V banks."""
    return Accelerator(graph, {s.name: s.folding for s in plan.stages}, plan.depths,
                       plan.banks)


def verilog(component, name: str = TOP) -> str:
    """Verilog of an Amaranth component, without source locations (byte-identical runs)."""
    from amaranth.back import verilog as back
    return back.convert(component, name=name, emit_src=False)
