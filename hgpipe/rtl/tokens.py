"""Class token and position embedding: ``y = clamp(tok + pos)``, one beat a cycle.

The class token is folded into the position ROM (token 0 holds ``cls + pos[0]``) and
token 0's input is zeroed, so ``replace`` mode (the class token overwrites patch 0) and
``extra`` mode (it is prepended; the stage emits token 0 without taking a beat) share one
datapath. ``extra`` needs ``tp = 1`` (N patches and N + 1 tokens share no other grouping).
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.contract import Folding
from ..graph.intrange import IntRange
from ..graph.pipeline import Pipelining, default
from ..graph.stages import Tokens
from .elementwise import clamp
from .mem import Rom
from .stream import count, delay, lane, pack, pack_word, shape_of, stream_of


class TokensStage(wiring.Component):
    """In: patch tokens, ``tp x cip`` a beat. Out: tokens with the class token, same shape,
    ``1 + pipe.read_latency`` cycles after the beat is taken (``contract.lag``)."""

    def __init__(self, st: Tokens, f: Folding, tokens: int, *,
                 styles: dict[str, str] | None = None, pipe: Pipelining | None = None):
        channels = st.cls.shape[0]
        if tokens % f.tp or channels % f.cip or (st.mode == "extra" and f.tp != 1):
            raise ValueError(f"TokensStage {st.name}: folding {f} does not fit {tokens} "
                             f"tokens x {channels} channels (mode {st.mode!r} needs "
                             f"{'tp = 1' if st.mode == 'extra' else 'tp | tokens'})")
        self.stage, self.f, self.tokens, self.channels = st, f, tokens, channels
        self.styles = styles or {}
        self.pipe = pipe or default()
        pos = st.pos.astype(np.int64).copy()
        pos[0] += st.cls
        self.pos = pos
        self.pos_range = IntRange.of_array(pos)
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
        lat = self.pipe.read_latency
        m.submodules.pos = rom = Rom(f.tp * f.cip * self.pos_range.bits, self.pos_words(),
                                     self.styles.get("pos"), lat)
        rp = rom.read_port()
        g, c = Signal(range(ng)), Signal(range(nc))
        addr = Signal(range(ng * nc))       # g * nc + c, counted
        first = g == 0
        insert = first if st.mode == "extra" else 0      # token 0 takes no input beat
        advance = ~self.o.valid | self.o.ready
        step = Signal()
        m.d.comb += [self.i.ready.eq(advance & ~insert),
                     step.eq(advance & (self.i.valid | insert)), self.busy.eq(step),
                     rp.addr.eq(addr), rp.en.eq(advance)]
        count(m, step, (g, ng), (c, nc))
        count(m, step, (addr, ng * nc))
        # the input beat waits beside the position word's read (``lat`` cycles), then the
        # clamped sum is registered: the output leaves a register
        held = [Signal(shape_of(x), name=f"x{e}") for e in range(f.tp * f.cip)]
        held_valid = Signal()
        s_range = st.derived["sum"]
        result = Signal.like(self.o.payload, name="result")
        with m.If(advance):
            m.d.sync += held_valid.eq(step)
            for e, h in enumerate(held):
                zero = first if e < f.cip else 0         # slot 0 of group 0 is token 0
                m.d.sync += h.eq(Mux(zero, 0, lane(self.i.payload, e, x)))
            m.d.sync += [self.o.valid.eq(delay(m, advance, held_valid, lat - 1, "v")),
                         self.o.payload.eq(result)]
        held = [delay(m, advance, h, lat - 1, f"x{e}") for e, h in enumerate(held)]
        outs = []
        for e, h in enumerate(held):
            s = Signal(shape_of(s_range), name=f"sum{e}")
            m.d.comb += s.eq(h + lane(rp.data, e, self.pos_range))
            outs.append(clamp(s, st.out_format, s_range))
        pack(m, result, outs, st.out_range)
        return m
