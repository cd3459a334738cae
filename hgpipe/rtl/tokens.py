"""Class token and position embedding: ``y = clamp(tok + pos)``, one beat a cycle.

Tokens leave in the stream order of the plan's ``TokenLayout``: patch row ``r`` stays row
``r``, the class token takes its row (after the patches, or in place of the first) and
padding rows are 0. The class token is folded into the position ROM (its row holds
``cls + pos[0]``, padding rows 0) and the input of every row that is no patch is zeroed,
so one datapath serves both class-token modes at any TP. When the token rows need a group
more than the patch rows (``extra`` with TP dividing the patch count), the stage emits
that group without taking a beat.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.contract import Folding, stage_memories
from ..graph.layout import TokenLayout
from ..graph.pipeline import Pipelining, default
from ..graph.stages import Tokens
from .elementwise import clamp
from .mem import Rom
from .stream import count, delay, lane, pack, pack_word, payload_register, shape_of, stream_of


class TokensStage(wiring.Component):
    """In: patch rows (``layout.patch_rows`` an image), ``tp x cip`` a beat. Out: token
    rows (``layout.rows``), same shape, ``1 + pipe.read_latency`` cycles after the beat is
    taken (``contract.lag``)."""

    def __init__(self, st: Tokens, f: Folding, layout: TokenLayout, *,
                 styles: dict[str, str] | None = None, pipe: Pipelining | None = None):
        channels = st.cls.shape[0]
        src = layout.patch_of_row()
        if layout.rows % f.tp or layout.patch_rows % f.tp or channels % f.cip \
                or any(p not in (-1, r) for r, p in enumerate(src)):
            raise ValueError(f"TokensStage {st.name}: folding {f} does not fit {layout} x "
                             f"{channels} channels (rows and patch rows a multiple of tp, "
                             f"patch r on row r)")
        self.stage, self.f, self.layout, self.channels = st, f, layout, channels
        self.tokens = layout.rows
        self.styles = styles or {}
        self.pipe = pipe or default()
        self.pos = st.rom(layout)
        self.pos_range = st.rom_range(layout.rows > layout.tokens)
        # the token groups whose slot t carries a patch: a range per slot
        self.kept = []
        for t in range(f.tp):
            groups = [g for g in range(layout.rows // f.tp) if src[g * f.tp + t] >= 0]
            lo, hi = (groups[0], groups[-1] + 1) if groups else (0, 0)
            assert groups == list(range(lo, hi))
            self.kept.append((lo, hi))
        x = st.in_ranges[0]
        super().__init__({"i": In(stream_of(f.tp * f.cip, x)),
                          "o": Out(stream_of(f.tp * f.cip, st.out_range))})
        self.busy = Signal()  # a beat is produced this cycle

    def pos_words(self) -> list[int]:
        f, nc = self.f, self.channels // self.f.cip
        return [pack_word([self.pos[g * f.tp + t, c * f.cip + e] for t in range(f.tp)
                           for e in range(f.cip)], self.pos_range.bits)
                for g in range(self.tokens // f.tp) for c in range(nc)]

    def elaborate(self, platform):
        m = Module()
        st, f = self.stage, self.f
        ng, nc, x = self.tokens // f.tp, self.channels // f.cip, st.in_ranges[0]
        ng_in = self.layout.patch_rows // f.tp
        lat = self.pipe.read_latency
        pos = stage_memories(st, f, self.pipe, tokens=self.tokens, channels=self.channels)["pos"]
        m.submodules.pos = rom = Rom.declared(pos, self.pos_words(), self.styles.get("pos"))
        rp = rom.read_port()
        g, c = Signal(range(ng)), Signal(range(nc))
        addr = Signal(range(ng * nc))       # g * nc + c, counted
        insert = g >= ng_in if ng > ng_in else 0     # a group past the patches: no input
        advance = ~self.o.valid | self.o.ready
        step = Signal()
        m.d.comb += [self.i.ready.eq(advance & ~insert),
                     step.eq(advance & (self.i.valid | insert)), self.busy.eq(step),
                     rp.addr.eq(addr), rp.en.eq(advance)]
        count(m, step, (g, ng), (c, nc))
        count(m, step, (addr, ng * nc))
        # the input beat waits beside the position word's read (``lat`` cycles), then the
        # clamped sum is registered: the output leaves a register
        # (datapath registers, without reset: ``stream.payload_register``)
        held = [Signal(shape_of(x), name=f"x{e}", reset_less=True) for e in range(f.tp * f.cip)]
        held_valid = Signal()
        s_range = st.derived["sum"]
        result = Signal.like(self.o.payload, name="result")
        out = payload_register(m, self.o)
        with m.If(advance):
            m.d.sync += held_valid.eq(step)
            keep = [(g >= lo if lo else 1) & (g < hi if hi < ng else 1) for lo, hi in self.kept]
            for e, h in enumerate(held):
                m.d.sync += h.eq(Mux(keep[e // f.cip], lane(self.i.payload, e, x), 0))
            m.d.sync += [self.o.valid.eq(delay(m, advance, held_valid, lat - 1, "v")),
                         out.eq(result)]
        held = [delay(m, advance, h, lat - 1, f"x{e}", data=True) for e, h in enumerate(held)]
        outs = []
        for e, h in enumerate(held):
            s = Signal(shape_of(s_range), name=f"sum{e}")
            m.d.comb += s.eq(h + lane(rp.data, e, self.pos_range))
            outs.append(clamp(s, st.out_format, s_range))
        pack(m, result, outs, st.out_range)
        return m
