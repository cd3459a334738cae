"""The RTL backend: the plan's accelerator as one deterministic Verilog file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..graph.graph import IntGraph
from ..plan.plan import Plan
from .accelerator import Accelerator
from .axi import AxiParams
from .mem import collecting
from .memtext import library
from .separate import Parts

TOP = "hgpipe_top"


def elaborate(graph: IntGraph, plan: Plan, make=None) -> Accelerator:
    """The accelerator of the plan's netlist (foldings, FIFOs, banks, memory placement)."""
    return Accelerator(graph, plan, make, axi_params(plan))


def axi_params(plan: Plan) -> AxiParams:
    """The AXI4 port of the plan's off-chip FIFOs (the board's width and addresses)."""
    d = plan.board.ddr
    return AxiParams(d.addr_bits, d.data_bits) if d else AxiParams()


def verilog(component, name: str = TOP) -> str:
    """Verilog of an Amaranth component, without source locations (byte-identical runs),
    followed by the memory modules it instantiates (``hgpipe.rtl.mem``)."""
    from amaranth.back import verilog as back
    with collecting() as roms:
        top = back.convert(component, name=name, emit_src=False)
    return top + "\n" + library(roms)


def _top_verilog(graph: IntGraph, plan: Plan) -> str:
    """The top level alone, its parts as instances (a worker job of ``generate``)."""
    from amaranth.back import verilog as back
    return back.convert(elaborate(graph, plan, make=Parts()), name=TOP, emit_src=False)


@dataclass(frozen=True)
class Rtl:
    """The generated RTL: one Verilog text (top level, parts, memory modules) and the ROM
    contents it loads, ``{path: $readmemh text}`` with paths relative to the directory
    the simulator or tool runs in (the ``HGPIPE_ROM_DIR`` macro, default ``"roms/"``)."""
    verilog: str
    roms: dict[str, str] = field(default_factory=dict)

    def write_roms(self, root: Path) -> None:
        """The ROM files under ``root`` (their directories made)."""
        for path, text in self.roms.items():
            f = root / path
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)


def generate(graph: IntGraph, plan: Plan, *, workers: int | None = None, progress=None
             ) -> tuple[Accelerator, Rtl, dict]:
    """The accelerator and its RTL, each distinct part structure converted once and the
    top level converted alongside (``hgpipe.rtl.separate``); also returns counts:
    ``parts`` (instances), ``modules`` (distinct constructions), ``structures`` (distinct
    part modules after ROM contents are left out)."""
    parts = Parts()
    acc = elaborate(graph, plan, make=parts)
    parts.collect(acc)
    c = parts.convert((_top_verilog, (graph, plan)), workers, progress)
    stats = {"parts": parts.instances, "modules": len(parts.parts),
             "structures": c.structures, "rom_files": len(c.files)}
    return acc, Rtl("\n".join([c.top, *c.modules, library(c.mems)]), c.files), stats
