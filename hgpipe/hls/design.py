"""The plan as an HLS project: the part list instantiated one to one as dataflow processes.

Every ``StageUnit`` of the plan's netlist is a call of its stage's kernel (per-head units
call it with their head), every fork, gearbox and merge a plumbing process, every FIFO a
stream of the plan's depth bound to the memory the plan placed it in, every other link a
stream of depth 2. Calls are in producer-before-consumer order, as C simulation and
canonical dataflow need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import HgpipeError
from ..graph.contract import Folding, input_lanes
from ..graph.graph import IntGraph
from ..graph.stages import AttentionValue, Linear, Stage
from ..plan.netlist import (INPUT_FIFO, DdrFifoPart, DdrWeightsPart, FifoPart, ForkPart,
                            GearboxPart, MergePart, Netlist, Part, StageUnit, StatusPart,
                            netlist,
                            output_end, safe)
from ..plan.plan import Plan
from .kernels import IMPL, kernel, takes_head
from .render import copied, render
from .types import Wire

TOP = "hgpipe_top"
LINK_DEPTH = 2      # a link without a FIFO of its own: a register slice's worth


def stage_wires(graph: IntGraph, st: Stage, f: Folding) -> dict[str, Wire]:
    """The streams of one stage unit's ports (a per-head unit's share for attention)."""
    lay = graph.layout
    ports = ["i"] if len(st.inputs) == 1 else ["i0", "i1"]
    wires = {}
    for k, (port, src, r) in enumerate(zip(ports, st.inputs, st.in_ranges)):
        shape = graph.shape(src)
        rows, row = shape[-2:]
        wires[port] = Wire(r, f.tp, input_lanes(st, f, k), row, rows)
    end = output_end(st, f, ("", "o"))
    if isinstance(st, Linear) and st.cls_only:
        rows, row = 1, st.out_features
    elif isinstance(st, AttentionValue):
        rows, row = lay.rows, st.head_dim
    else:
        rows, row = graph.shape(st.name)[-2:]
    wires["o"] = Wire(st.out_range, end.tp, end.lanes, row, rows)
    return wires


@dataclass
class Stream:
    name: str
    wire: Wire
    depth: int
    impl: str | None = None
    note: str = ""


@dataclass
class Call:
    part: Part
    text: str                       # the C++ call
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)


class _Top:
    def __init__(self, graph: IntGraph, plan: Plan, net: Netlist):
        self.graph, self.plan, self.net = graph, plan, net
        self.src = {l.dst: l.src for l in net.links}
        self.dst = {l.src: l.dst for l in net.links}
        self.parts = {p.name: p for p in net.parts}
        self.wires: dict[tuple[str, str], Wire] = {}

    # -- the wire leaving each port ------------------------------------------------------
    def wire(self, port: tuple[str, str]) -> Wire:
        if port not in self.wires:
            self.wires[port] = self._wire(port)
        return self.wires[port]

    def _wire(self, port) -> Wire:
        p = self.parts[port[0]]
        if isinstance(p, StageUnit):
            st = self.graph[p.owner]
            return stage_wires(self.graph, st, self.plan.stage(st.name).folding)["o"]
        if p.name == INPUT_FIFO:
            st = self.graph.stages[0]
            return stage_wires(self.graph, st, self.plan.stage(st.name).folding)["i"]
        w = self.wire(self.src[(p.name, "i" if not isinstance(p, MergePart) else "i0")])
        if isinstance(p, GearboxPart):
            return w.relaned(p.lanes_out)
        if isinstance(p, MergePart):
            return Wire(w.rng, w.tp, w.lanes, w.row * p.heads, w.rows)
        return w

    # -- streams -------------------------------------------------------------------------
    def stream_of(self, port: tuple[str, str], reading: bool) -> str:
        """The stream a part's port reads or writes: a FIFO's own, or the link's."""
        other = self.src.get(port) if reading else self.dst.get(port)
        if other is None:
            return "s_axis" if reading else "m_axis"
        if self.is_fifo(self.parts[other[0]]):
            return other[0]
        return f"{port[0]}_{port[1]}" if not reading else f"{other[0]}_{other[1]}"

    def streams(self) -> list[Stream]:
        out = []
        for p in self.net.parts:
            if self.is_fifo(p):
                impl = IMPL.get(p.memory) if isinstance(p, FifoPart) else None
                note = "" if isinstance(p, FifoPart) else \
                    f"kept in DDR by the RTL ({p.beats} beats at 0x{p.base:x}): on chip here"
                out.append(Stream(p.name, self.wire(self.src[(p.name, "i")]), p.beats,
                                  impl, note))
            else:
                for port in self.out_ports(p):
                    to = self.dst.get((p.name, port))
                    if to is not None and not self.is_fifo(self.parts[to[0]]):
                        out.append(Stream(f"{p.name}_{port}", self.wire((p.name, port)),
                                          LINK_DEPTH))
        return out

    @staticmethod
    def is_fifo(p: Part) -> bool:
        """A FIFO is a stream of the top; the input FIFO, between the top's port and the
        first stage's FIFO, is a process (a register slice)."""
        return isinstance(p, (FifoPart, DdrFifoPart)) and p.name != INPUT_FIFO

    @staticmethod
    def in_ports(p: Part) -> list[str]:
        if isinstance(p, MergePart):
            return [f"i{h}" for h in range(p.heads)]
        return ["i"]

    @staticmethod
    def out_ports(p: Part) -> list[str]:
        if isinstance(p, ForkPart):
            return [f"o{k}" for k in range(p.ways)]
        return ["o"]

    # -- calls ---------------------------------------------------------------------------
    def calls(self) -> list[Call]:
        calls = []
        for p in self.net.parts:
            if self.is_fifo(p) or isinstance(p, StatusPart):
                continue    # a FIFO is a stream; the status registers are the RTL's only
            if isinstance(p, DdrWeightsPart):
                raise HgpipeError(f"backend: hls: the plan streams {p.owner}'s weights from "
                                  "DDR, which the HLS view does not build: expected a plan "
                                  "with weights on chip (--offchip none)")
            if isinstance(p, StageUnit):
                st = self.graph[p.owner]
                ins = ["i"] if len(st.inputs) == 1 else ["i0", "i1"]
                fn = safe(st.name) + (f"<{p.head}>" if takes_head(st) else "")
            else:
                ins, fn = self.in_ports(p), p.name
            reads = [self.stream_of((p.name, q), True) for q in ins]
            writes = [self.stream_of((p.name, q), False) for q in self.out_ports(p)]
            calls.append(Call(p, f"{fn}({', '.join(reads + writes)});", reads, writes))
        return _ordered(calls)


def _ordered(calls: list[Call]) -> list[Call]:
    """Producers before consumers, otherwise in the part list's order."""
    writer = {s: c.part.name for c in calls for s in c.writes}
    done: set[str] = set()
    out: list[Call] = []
    pending = list(calls)
    while pending:
        for c in pending:
            if all(writer.get(s) in done or s not in writer for s in c.reads):
                out.append(c)
                done.add(c.part.name)
                pending.remove(c)
                break
        else:
            raise ValueError("hls: the part list has a cycle")
    return out


def hls_files(graph: IntGraph, plan: Plan) -> dict[str, str]:
    """Every file of the HLS project, by its path under ``hls/``."""
    graph = plan.laid_out(graph)
    net = netlist(graph, plan)
    top = _Top(graph, plan, net)
    calls = top.calls()
    files: dict[str, str] = {}
    stages = []
    for st in graph.stages:
        sp = plan.stage(st.name)
        k = kernel(st, sp.folding, graph.layout, stage_wires(graph, st, sp.folding),
                   dict(sp.memories))
        files[f"stages/{k.fn}.h"] = k.header
        files[f"params/{k.fn}.h"] = k.params
        stages.append(k.fn)
    plumbing = []
    for p in net.parts:
        if p.name == INPUT_FIFO:
            w = top.wire((p.name, "o"))
            plumbing.append({"kind": "fork", "name": p.name, "owner": "the top's input",
                             "i": w, "o": w, "ways": 1})
        elif isinstance(p, (ForkPart, GearboxPart, MergePart)):
            i = top.wire(top.src[(p.name, "i0" if isinstance(p, MergePart) else "i")])
            o = top.wire((p.name, "o0" if isinstance(p, ForkPart) else "o"))
            plumbing.append({"kind": p.kind.value, "name": p.name, "owner": p.owner,
                             "i": i, "o": o, "ways": getattr(p, "ways", 0),
                             "heads": getattr(p, "heads", 0), "row": getattr(p, "row", 0),
                             "lanes": math.lcm(i.lanes, o.lanes)})
    files["plumbing.h"] = render("plumbing.h.j2", parts=plumbing)
    i, o = top.wire((INPUT_FIFO, "o")), top.wire(net.output.port)
    ports = {"i": i, "o": o}
    files["top.h"] = render("top.h.j2", top=TOP, plan=plan, **ports)
    files["top.cpp"] = render("top.cpp.j2", top=TOP, stages=stages, streams=top.streams(),
                              calls=calls, **ports)
    files["tb.cpp"] = render("tb.cpp.j2", top=TOP, **ports)
    files["run_hls.tcl"] = render("run_hls.tcl.j2", top=TOP, plan=plan,
                                  period=round(1000.0 / plan.clock_mhz, 3))
    files.update(copied())
    return dict(sorted(files.items()))
