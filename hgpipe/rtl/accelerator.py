"""The whole accelerator: every stage of the integer graph, folded as the plan says,
connected by FIFOs of the planned depths, with AXI4-Stream ports at both ends.

The parts and their links are the plan's (``hgpipe.plan.netlist``: each stage's unit, one
per head for attention, the head merge, and per tensor its forks, gearboxes and a FIFO per
consumer); this module builds each part's component one to one and wires the links.

Ports: ``s_axis_tdata/tvalid/tready/tlast`` carry patches (``tp`` patch rows of ``cip``
8-bit pixels a beat, in the contract's beat order); ``m_axis_*`` the logits' accumulators
(``cop`` classes a beat, ``tlast`` on an image's last beat). ``s_axis_tlast`` is accepted
and not needed: image boundaries follow from the beat count. Edges the plan put in DDR get
a ``DdrFifo`` each, and a head whose weights it put there a ``DdrWeights`` (its region
preloaded with ``ddr_images()``), all on one AXI4 manager port ``m_axi_*`` through an
arbiter. Where the plan builds the status registers (``hgpipe.rtl.status``: a busy
counter per stage, snapshotted at each image's last output beat), every stage's busy
signal counts there, read over the AXI4-Lite port ``s_axil_*``; testbenches and hosts
measure bubbles through it.

Every part is built through ``make(cls, *args)``: by default the component itself; the
generator passes a maker that turns each part into an instance of a module converted
once per distinct construction (``hgpipe.rtl.separate``).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.contract import Folding
from ..graph.graph import IntGraph
from ..graph.kinds import StageKind
from ..graph.stages import Stage
from ..plan.netlist import (DdrFifoPart, DdrWeightsPart, FifoPart, ForkPart, GearboxPart,
                            MergePart, Netlist, Part, StageUnit, StatusPart, netlist, safe)
from ..plan.plan import Plan
from .attention import AvHead, QkHead
from .axi import AxiParams, arbiter_params, top_members
from .ddr import DdrFifo, DdrWeights, ddr_port
from .elementwise import ResidualAddStage
from .layernorm import LayerNormStage
from .linear import HeadStage, LinearStage, WeightSource, weight_words
from .lut import LutStage
from .plumbing import Fifo, Fork, Gearbox, Merge
from .softmax import SoftmaxStage
from .status import StatusRegs, addr_bits, axil_members
from .stream import count
from .tokens import TokensStage

__all__ = ["Accelerator", "safe"]


class Accelerator(wiring.Component):
    """The generated design of ``plan`` for ``graph``: the plan's netlist built one part
    to one component (``make(cls, *args)`` builds each), DDR users on an AXI4 port of
    ``axi``."""

    def __init__(self, graph: IntGraph, plan: Plan, make=None, axi: AxiParams | None = None):
        graph = plan.laid_out(graph)
        self.graph, self.plan = graph, plan
        self.netlist: Netlist = plan.netlist or netlist(graph, plan)
        self.pipe = plan.pipelining
        self.axi = axi or AxiParams()
        self.make = make or (lambda cls, *args, **kw: cls(*args, **kw))
        self.foldings = {s.name: s.folding for s in plan.stages}
        self.styles = {s.name: dict(s.memories) for s in plan.stages}
        users = sum(isinstance(p, (DdrFifoPart, DdrWeightsPart)) for p in self.netlist.parts)
        first, last = graph.stages[0], graph.output
        f0, fl = self.foldings[first.name], self.foldings[last.name]
        self.in_width = self.netlist.input.width
        self.out_lanes = fl.cop
        self.out_bits = last.out_range.bits
        self.beats_per_image_in = graph.layout.patch_rows // f0.tp * \
            (graph.config.patch_dim // f0.cip)
        self.beats_per_image_out = last.out_features // fl.cop
        self.status_abits = addr_bits(len(self.netlist.status.counters)) \
            if self.netlist.status else 0
        super().__init__({
            "s_axis_tdata": In(self.in_width), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(fl.cop * self.out_bits), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            **(axil_members(self.status_abits) if self.netlist.status else {}),
            **(top_members(arbiter_params(users, self.axi), "m_axi") if users else {})})

    def ddr_regions(self) -> list[tuple[str, object, int]]:
        """(name, layout, base) of every stream in DDR: ``stage:weights``, ``src->dst``."""
        parts = self.netlist.parts
        return [(f"{p.owner}:weights", p.layout, p.base) for p in parts
                if isinstance(p, DdrWeightsPart)] + \
            [(p.owner, p.layout, p.base) for p in parts if isinstance(p, DdrFifoPart)]

    def ddr_images(self) -> dict[int, bytes]:
        """What DDR must hold before the accelerator starts: each streamed head's weights
        at its base address."""
        out = {}
        for p in self.netlist.parts:
            if isinstance(p, DdrWeightsPart):
                f = self.foldings[p.owner]
                out[p.base] = p.layout.image(weight_words(self.graph[p.owner],
                                                          Folding(1, f.cip, f.cop)))
        return out

    # -- parts ----------------------------------------------------------------------------
    def _unit(self, u: StageUnit, streamed: bool):
        """The component of one stage unit."""
        st: Stage = self.graph[u.owner]
        f = self.foldings[st.name]
        shape = self.graph.shape(st.inputs[0])
        tokens, cin = (shape[1], shape[2]) if len(shape) == 3 else shape
        kw = {"styles": self.styles[st.name]} if self.styles.get(st.name) else {}
        pipe = {"pipe": self.pipe}
        if st.kind is StageKind.QK:
            return self.make(QkHead, st, f, u.head, tokens, u.banks, **kw, **pipe)
        if st.kind is StageKind.SOFTMAX:
            return self.make(SoftmaxStage, st, f, cin, **kw, **pipe)
        if st.kind is StageKind.AV:
            return self.make(AvHead, st, f, u.head, tokens, u.banks, **kw, **pipe)
        if st.kind is StageKind.LINEAR and st.cls_only:
            return self.make(HeadStage, st, f, tokens, self.graph.layout.cls_row, **kw, **pipe,
                             **({"weights": WeightSource.STREAM} if streamed else {}))
        if st.kind is StageKind.LINEAR:
            return self.make(LinearStage, st, f, **kw, **pipe)
        if st.kind is StageKind.LAYERNORM:
            return self.make(LayerNormStage, st, f, cin, **kw, **pipe)
        if st.kind is StageKind.REQUANT:
            return self.make(LutStage, st.table, st.in_ranges[0], st.out_range, f.tp, f.cip,
                             cin, **kw, **pipe)
        if st.kind is StageKind.TOKENS:
            return self.make(TokensStage, st, f, self.graph.layout, **kw, **pipe)
        if st.kind is StageKind.ADD:
            return self.make(ResidualAddStage, st, f.tp * f.cip, **kw)
        raise ValueError(f"Accelerator: stage {st.name}: no unit for kind {st.kind!r}")

    def _part(self, p: Part, streamed: set[str]):
        if isinstance(p, StageUnit):
            return self._unit(p, p.owner in streamed)
        if isinstance(p, FifoPart):
            return self.make(Fifo, p.width, p.beats, **({"style": p.memory} if p.memory else {}))
        if isinstance(p, DdrFifoPart):
            return self.make(DdrFifo, p.layout, p.base, self.axi)
        if isinstance(p, DdrWeightsPart):
            return self.make(DdrWeights, p.layout, p.base, self.axi)
        if isinstance(p, ForkPart):
            return self.make(Fork, p.width, p.ways)
        if isinstance(p, GearboxPart):
            return self.make(Gearbox, p.tp, p.lanes_in, p.lanes_out, p.bits)
        if isinstance(p, MergePart):
            return self.make(Merge, p.width, p.heads, p.row)
        if isinstance(p, StatusPart):
            return self.make(StatusRegs, len(p.counters))
        raise TypeError(f"Accelerator: no component for {type(p).__name__}")

    # -- elaboration ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        net = self.netlist
        streamed = {p.owner for p in net.parts if isinstance(p, DdrWeightsPart)}
        comps, ddr_users, busy = {}, [], {}
        for p in net.parts:
            c = comps[p.name] = self._part(p, streamed)
            m.submodules[p.name] = c
            if isinstance(p, (DdrFifoPart, DdrWeightsPart)):
                ddr_users.append(c)
            if isinstance(p, StageUnit):
                busy.setdefault(p.owner, c.busy)
        for link in net.links:
            (a, pa), (b, pb) = link.src, link.dst
            wiring.connect(m, getattr(comps[a], pa), getattr(comps[b], pb))
        # the input: AXI-Stream patches into the input FIFO
        src = comps[net.input.port[0]]
        m.d.comb += [src.i.payload.eq(self.s_axis_tdata), src.i.valid.eq(self.s_axis_tvalid),
                     self.s_axis_tready.eq(src.i.ready)]
        # the output: logits with tlast
        out = getattr(comps[net.output.port[0]], net.output.port[1])
        n = self.beats_per_image_out
        beat = Signal(range(n))
        m.d.comb += [self.m_axis_tdata.eq(out.payload), self.m_axis_tvalid.eq(out.valid),
                     out.ready.eq(self.m_axis_tready), self.m_axis_tlast.eq(beat == n - 1)]
        done = count(m, out.valid & out.ready, (beat, n))
        if ddr_users:
            ddr_port(m, self, "m_axi", ddr_users, self.axi, self.make)
        if net.status:
            status = comps[net.status.name]
            m.d.comb += [status.stage_busy[k].eq(busy[name])
                         for k, name in enumerate(net.status.counters)]
            m.d.comb += status.image_done.eq(done)
            for name, member in axil_members(self.status_abits).items():
                outer, inner = getattr(self, name), getattr(status, name)
                m.d.comb += inner.eq(outer) if member.flow == wiring.In else outer.eq(inner)
        return m
