"""The whole accelerator: every stage of the integer graph, folded as the plan says,
connected by FIFOs of the planned depths, with AXI4-Stream ports at both ends.

Each stage becomes one component (attention: one QK^T, softmax and AV unit per head and a
merge). A tensor read by several stages is broadcast by a ``Fork``; where the producer's
lanes differ from a consumer's, one ``Gearbox`` per lane count sits before the fork; each
consumer then has its own FIFO, as deep as the plan's buffer on that edge (converted to
beats) plus a margin for the gearboxes' and forks' own registers.

Ports: ``s_axis_tdata/tvalid/tready/tlast`` carry patches (``tp`` patch rows of ``cip``
8-bit pixels a beat, in the contract's beat order); ``m_axis_*`` the logits' accumulators
(``cop`` classes a beat, ``tlast`` on an image's last beat). ``s_axis_tlast`` is accepted
and not needed: image boundaries follow from the beat count. Edges the plan put in DDR get
a ``DdrFifo`` each, and a head whose weights it put there a ``DdrWeights`` (its region
preloaded with ``ddr_images()``), all on one AXI4 manager port ``m_axi_*`` through an
arbiter. Every stage also drives a
free-running 32-bit ``busy`` counter (``busy__<stage>``) that testbenches read to measure
bubbles; synthesis removes them when nothing reads them.

Every part is built through ``make(cls, *args)``: by default the component itself; the
generator passes a maker that turns each part into an instance of a module converted
once per distinct construction (``hgpipe.rtl.separate``).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.contract import Folding, fifo_beats
from ..graph.graph import INPUT, IntGraph
from ..graph.pipeline import Pipelining, default
from ..graph.stages import Stage
from ..graph.ddr import DdrLayout
from .attention import AvHead, QkHead
from .axi import AxiParams, arbiter_params, top_members
from .ddr import DdrFifo, DdrWeights, ddr_port
from .elementwise import ResidualAddStage
from .layernorm import LayerNormStage
from .linear import HeadStage, LinearStage, weight_words
from .lut import LutStage
from .plumbing import Fifo, Fork, Gearbox, Merge
from .softmax import SoftmaxStage
from .stream import count
from .tokens import TokensStage



@dataclass(frozen=True)
class End:
    """One end of an edge: a stream, ``tp`` token slots of ``lanes`` elements of ``bits``."""
    stream: object
    tp: int
    lanes: int
    bits: int


def safe(name: str) -> str:
    return name.replace(".", "_")


class Accelerator(wiring.Component):
    """The generated design; ``foldings`` per stage, ``depths`` in tokens per edge
    ``"src->dst"`` (missing edges get two rows); ``styles`` places memories as the plan did:
    ``{stage: {memory: kind}}``, and the FIFO of an edge under ``{"src->dst": kind}``;
    ``ddr`` the edges kept off chip, ``{"src->dst": (layout, base address)}``, and
    ``ddr_weights`` the stages whose weights are, ``{stage: (layout, base)}``, on an AXI4
    port of ``axi``; ``pipe`` the register stages of the datapaths (the plan's clock)."""

    def __init__(self, graph: IntGraph, foldings: dict[str, Folding], depths: dict[str, int],
                 banks: dict[str, int] | None = None, make=None,
                 styles: dict[str, dict[str, str]] | None = None,
                 fifo_styles: dict[str, str] | None = None,
                 ddr: dict[str, tuple[DdrLayout, int]] | None = None,
                 axi: AxiParams | None = None,
                 ddr_weights: dict[str, tuple[DdrLayout, int]] | None = None,
                 pipe: Pipelining | None = None):
        self.graph, self.foldings, self.depths = graph, foldings, depths
        self.pipe = pipe or default()
        self.banks = banks or {}
        self.styles, self.fifo_styles = styles or {}, fifo_styles or {}
        self.ddr, self.axi = ddr or {}, axi or AxiParams()
        self.ddr_weights = ddr_weights or {}
        users = len(self.ddr) + len(self.ddr_weights)
        self.make = make or (lambda cls, *args, **kw: cls(*args, **kw))
        first, last = graph.stages[0], graph.output
        f0, fl = foldings[first.name], foldings[last.name]
        self.in_width = f0.tp * f0.cip * graph.input_range.bits
        self.out_lanes = fl.cop
        self.out_bits = last.out_range.bits
        self.beats_per_image_in = graph.config.num_patches // f0.tp * \
            (graph.config.patch_dim // f0.cip)
        self.beats_per_image_out = last.out_features // fl.cop
        super().__init__({
            "s_axis_tdata": In(self.in_width), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(fl.cop * self.out_bits), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            **(top_members(arbiter_params(users, self.axi), "m_axi") if users else {})})

    # -- helpers ------------------------------------------------------------------------------
    def _tokens(self, st: Stage) -> tuple[int, int]:
        shape = self.graph.shape(st.inputs[0])
        return (shape[1], shape[2]) if len(shape) == 3 else shape

    def _fifo_beats(self, src: str, dst: str, end: End, tokens: int, channels: int) -> int:
        return fifo_beats(self.depths.get(f"{src}->{dst}", 2 * end.tp), end.tp, channels,
                          end.lanes)

    def _styles(self, stage: str) -> dict:
        """The ``styles`` keyword for a stage whose memories the plan placed (none given
        otherwise: a part's digest, and so its module, stays as without a plan)."""
        return {"styles": self.styles[stage]} if self.styles.get(stage) else {}

    def _fifo(self, width: int, depth: int, style: str | None) -> Fifo:
        """A FIFO placed as the plan said (unplaced: the same part as without a plan)."""
        return self.make(Fifo, width, depth, **({"style": style} if style else {}))

    def ddr_regions(self) -> list[tuple[str, DdrLayout, int]]:
        """(name, layout, base) of every stream in DDR: ``stage:weights``, ``src->dst``."""
        return [(f"{k}:weights", *v) for k, v in self.ddr_weights.items()] + \
            [(k, *v) for k, v in self.ddr.items()]

    def ddr_images(self) -> dict[int, bytes]:
        """What DDR must hold before the accelerator starts: each streamed head's weights
        at its base address."""
        out = {}
        for name, (layout, base) in self.ddr_weights.items():
            f = self.foldings[name]
            out[base] = layout.image(weight_words(self.graph[name], Folding(1, f.cip, f.cop)))
        return out

    def _ddr_fifo(self, edge: str, width: int, beats: int):
        layout, base = self.ddr[edge]
        if (layout.width, layout.depth) != (width, beats):
            raise ValueError(f"Accelerator: edge {edge}: the plan's DDR FIFO holds "
                             f"{layout.depth} beats of {layout.width} bits, the RTL's "
                             f"{beats} of {width}")
        q = self.make(DdrFifo, layout, base, self.axi)
        self._ddr_users.append(q)
        return q

    def _stage(self, m: Module, st: Stage):
        """Instantiate one stage: returns (consumer ends per input, producer end(s))."""
        g, f = self.graph, self.foldings[st.name]
        tokens, cin = self._tokens(st)
        x = st.in_ranges[0]
        bits = st.out_range.bits
        name = safe(st.name)
        if st.kind == "qk" or st.kind == "softmax" or st.kind == "av":
            return self._heads(m, st, f, tokens)
        kw = self._styles(st.name)
        pipe = {"pipe": self.pipe}
        if st.kind == "linear" and st.cls_only:
            streamed = st.name in self.ddr_weights
            c = self.make(HeadStage, st, f, tokens, **kw, **pipe,
                          **({"weights": "stream"} if streamed else {}))
            out = End(c.o, 1, f.cop, bits)
            if streamed:
                layout, base = self.ddr_weights[st.name]
                w = self.make(DdrWeights, layout, base, self.axi)
                m.submodules[f"{name}_weights"] = w
                wiring.connect(m, w.o, c.w)
                self._ddr_users.append(w)
        elif st.kind == "linear":
            c = self.make(LinearStage, st, f, **kw, **pipe)
            out = End(c.o, f.tp, f.cop, bits)
        elif st.kind == "layernorm":
            c = self.make(LayerNormStage, st, f, cin, **kw, **pipe)
            out = End(c.o, f.tp, f.cip, bits)
        elif st.kind == "requant":
            c = self.make(LutStage, st.table, x, st.out_range, f.tp, f.cip, cin, **kw, **pipe)
            out = End(c.o, f.tp, f.cip, bits)
        else:
            c = self.make(*{
                "tokens": lambda: (TokensStage, st, f, g.config.num_tokens),
                "add": lambda: (ResidualAddStage, st, f.tp * f.cip)}[st.kind](), **kw)
            out = End(c.o, f.tp, f.cip, bits)
        m.submodules[name] = c
        self._busy[st.name] = [c.busy]
        ports = [c.i] if len(st.inputs) == 1 else [c.i0, c.i1]
        ins = [[End(p, f.tp, f.cip, r.bits)] for p, r in zip(ports, st.in_ranges)]
        return ins, [out]

    def _heads(self, m: Module, st: Stage, f: Folding, tokens: int):
        """Per-head units; QK^T's and AV's QKV inputs list one end per head."""
        heads = self.graph.config.num_heads
        name = safe(st.name)
        bits = st.out_range.bits
        units = []
        # image banks of the K/Q (V) buffer: as many as the plan's schedule holds at once
        banks = max(2, self.banks.get(f"{st.inputs[-1]}->{st.name}", 2))
        kw = self._styles(st.name)
        for h in range(heads):
            if st.kind == "qk":
                u = self.make(QkHead, st, f, h, tokens, banks, **kw, pipe=self.pipe)
            elif st.kind == "softmax":
                u = self.make(SoftmaxStage, st, f, **kw, pipe=self.pipe)
            else:
                u = self.make(AvHead, st, f, h, tokens, banks, **kw, pipe=self.pipe)
            m.submodules[f"{name}_h{h}"] = u
            units.append(u)
        self._busy[st.name] = [u.busy for u in units]
        if st.kind == "av":
            # heads finish their rows together but leave one after another: each head
            # buffers a row of its output so that it never waits for the merge
            row = st.head_dim // f.cop
            merge = self.make(Merge, f.tp * f.cop * bits, heads, row)
            m.submodules[f"{name}_merge"] = merge
            style = self.styles.get(st.name, {}).get("out")
            for h, u in enumerate(units):
                q = self._fifo(f.tp * f.cop * bits, row + 2, style)
                m.submodules[f"{name}_h{h}_out"] = q
                wiring.connect(m, u.o, q.i)
                wiring.connect(m, q.o, getattr(merge, f"i{h}"))
            p_bits, v_bits = (r.bits for r in st.in_ranges)
            return ([[End(u.i0, f.tp, f.cip, p_bits) for u in units],
                     [End(u.i1, f.tp, f.cop, v_bits) for u in units]],
                    [End(merge.o, f.tp, f.cop, bits)])
        return ([[End(u.i, f.tp, f.cip, st.in_ranges[0].bits) for u in units]],
                [End(u.o, f.tp, f.cop, bits) for u in units])

    def _connect(self, m: Module, src: str, prod: list[End], consumers: list[tuple]):
        """Wire one tensor to its consumers ``(dst, ends, tokens, channels)``. Per-head
        tensors (one producer end per head) go head to head."""
        if len(prod) > 1:                       # qk -> softmax, softmax -> av: per head
            for dst, ends, tokens, channels in consumers:
                for h, (p, c) in enumerate(zip(prod, ends)):
                    self._fan(m, f"{safe(src)}_h{h}", src, p, [(dst, c, tokens, channels)])
            return
        flat = [(dst, c, tokens, channels) for dst, ends, tokens, channels in consumers
                for c in ends]
        self._fan(m, safe(src), src, prod[0], flat)

    def _fan(self, m: Module, tag: str, src: str, p: End, flat: list[tuple]):
        """Producer -> one gearbox per lane count -> fork -> a FIFO per consumer."""
        by_lanes: dict[int, list] = {}
        for item in flat:
            by_lanes.setdefault(item[1].lanes, []).append(item)
        outs = self._fork(m, f"{tag}_fork", p, len(by_lanes))
        for k, (lanes, items) in enumerate(sorted(by_lanes.items())):
            s = outs[k]
            if lanes != p.lanes:
                gb = self.make(Gearbox, p.tp, p.lanes, lanes, p.bits)
                m.submodules[f"{tag}_gear{lanes}"] = gb
                wiring.connect(m, s.stream, gb.i)
                s = End(gb.o, p.tp, lanes, p.bits)
            branch = self._fork(m, f"{tag}_fork{lanes}", s, len(items))
            for j, ((dst, c, tokens, channels), b) in enumerate(zip(items, branch)):
                width, beats = b.tp * b.lanes * b.bits, self._fifo_beats(src, dst, b, tokens,
                                                                          channels)
                if f"{src}->{dst}" in self.ddr:
                    q = self._ddr_fifo(f"{src}->{dst}", width, beats)
                else:
                    q = self._fifo(width, beats, self.fifo_styles.get(f"{src}->{dst}"))
                m.submodules[f"{tag}_to_{safe(dst)}_{j}"] = q
                wiring.connect(m, b.stream, q.i)
                wiring.connect(m, q.o, c.stream)

    def _fork(self, m: Module, tag: str, p: End, n: int) -> list[End]:
        if n == 1:
            return [p]
        fk = self.make(Fork, p.tp * p.lanes * p.bits, n)
        m.submodules[tag] = fk
        wiring.connect(m, p.stream, fk.i)
        return [End(getattr(fk, f"o{k}"), p.tp, p.lanes, p.bits) for k in range(n)]

    # -- elaboration ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        g = self.graph
        self._busy: dict[str, list] = {}
        self._ddr_users: list = []
        f0 = self.foldings[g.stages[0].name]
        made = {}
        for st in g.stages:
            made[st.name] = self._stage(m, st)
        # the input: AXI-Stream patches into a two-beat FIFO
        src = End(self.make(Fifo, self.in_width, 2), f0.tp, f0.cip, g.input_range.bits)
        m.submodules.s_axis_fifo = src.stream
        m.d.comb += [src.stream.i.payload.eq(self.s_axis_tdata),
                     src.stream.i.valid.eq(self.s_axis_tvalid),
                     self.s_axis_tready.eq(src.stream.i.ready)]
        producers = {INPUT: [End(src.stream.o, f0.tp, f0.cip, g.input_range.bits)]}
        for st in g.stages:
            producers[st.name] = made[st.name][1]
        for name, prod in producers.items():
            consumers = []
            for st in g.stages:
                for k, inp in enumerate(st.inputs):
                    if inp == name:
                        tokens, channels = g.shape(name)[-2:]
                        consumers.append((st.name, made[st.name][0][k], tokens, channels))
            if consumers:
                self._connect(m, name, prod, consumers)
        # the output: logits with tlast
        out = producers[g.output.name][0].stream
        n = self.beats_per_image_out
        beat = Signal(range(n))
        m.d.comb += [self.m_axis_tdata.eq(out.payload), self.m_axis_tvalid.eq(out.valid),
                     out.ready.eq(self.m_axis_tready), self.m_axis_tlast.eq(beat == n - 1)]
        count(m, out.valid & out.ready, (beat, n))
        if self._ddr_users:
            ddr_port(m, self, "m_axi", self._ddr_users, self.axi, self.make)
        for name, sigs in self._busy.items():
            counter = Signal(32, name=f"busy__{safe(name)}")
            m.d.sync += counter.eq(counter + sigs[0])
        return m
