"""Softmax as two chained row passes, so a row costs one pass in steady state.

Pass 1 writes the scores while it tracks the row max, then replays them as
``e = EXP[clamp((max - x + b) >> s)]`` (a ROM read). Pass 2 writes the ``e`` row while it
sums it, looks up ``r = RECIP(z)`` when the row is in, and replays
``p = clamp((e * r + 2^(shift-1)) >> shift)``: one narrow multiply per element.
HG-PIPE runs max, exp-sum and normalise one after another (57,624 cycles per DeiT-tiny
image per head unit at TP=2); here they overlap (19,208 cycles), for the row banks of
both passes (``buffer_bits``).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.contract import Folding
from ..graph.intrange import IntRange
from ..graph.stages import Softmax
from .elementwise import clamp
from .lut import rom_init, table_index
from .mem import Rom
from .rowpass import RowPass
from .stream import shape_of, stream_of


class _MaxExp(RowPass):
    emit_latency = 1

    def __init__(self, st: Softmax, f: Folding, styles: dict[str, str]):
        self.stage, self.styles = st, styles
        x = st.in_ranges[0]
        self.stat_ranges = self.held_ranges = [x]
        super().__init__(x, st.exp.out_range, f.tp, f.cip, st.row_len, styles.get("score_rows"))

    def accumulate(self, m, xs, stats, first):
        best = stats[0]
        for k, x in enumerate(xs):  # a signal per step: the expression would double each step
            step = Signal.like(stats[0], name=f"max{k}")
            m.d.comb += step.eq(Mux(first & (k == 0), x, Mux(x > best, x, best)))
            best = step
        return [best]

    def finish(self, m, stats, t, valid):
        return stats

    def emit(self, m, x, held, constants, t, p, en):
        st = self.stage
        if not hasattr(self, "_exp"):
            m.submodules.exp = self._exp = Rom(shape_of(st.exp.out_range), rom_init(st.exp),
                                                  self.styles.get("exp"))
        diff = Signal(shape_of(st.derived["diff"]), name=f"diff_{t}_{p}")
        m.d.comb += diff.eq(held[0] - x)
        port = self._exp.read_port()
        m.d.comb += [port.addr.eq(table_index(m, diff, st.exp, 0, st.derived["diff"],
                                              f"ex{t}_{p}")),
                     port.en.eq(en)]
        return port.data


class _SumNormalise(RowPass):
    finish_latency = 1

    def __init__(self, st: Softmax, f: Folding, styles: dict[str, str]):
        self.stage, self.styles = st, styles
        self.stat_ranges = [IntRange(0, st.derived["z"].hi)]  # partial sums start at 0
        self.held_ranges = [st.derived["r"]]
        super().__init__(st.exp.out_range, st.out_range, f.tp, f.cip, st.row_len,
                         styles.get("exp_rows"))

    def accumulate(self, m, xs, stats, first):
        return [Mux(first, 0, stats[0]) + sum(xs)]

    def finish(self, m, stats, t, valid):
        st = self.stage
        if not hasattr(self, "_recip"):
            m.submodules.recip = self._recip = Rom(shape_of(st.recip.out_range), rom_init(st.recip),
                                                      self.styles.get("recip"))
        port = self._recip.read_port()
        m.d.comb += [port.addr.eq(table_index(m, stats[0], st.recip, 0, self.stat_ranges[0],
                                              f"rc{t}")),
                     port.en.eq(valid)]
        return [port.data]

    def emit(self, m, x, held, constants, t, p, en):
        st = self.stage
        prod = Signal(shape_of(st.derived["product"]), name=f"prod_{t}_{p}")
        m.d.comb += prod.eq(x * held[0] + (1 << (st.shift - 1)))
        return clamp(prod >> st.shift, st.out_format, st.derived["product"].shr(st.shift))


class SoftmaxStage(wiring.Component):
    """One softmax unit: rows of ``row_len`` scores, ``tp`` rows x ``cip`` scores a beat."""

    def __init__(self, st: Softmax, f: Folding, *, styles: dict[str, str] | None = None):
        if f.cip != f.cop:
            raise ValueError(f"SoftmaxStage {st.name}: folding {f} needs cip == cop")
        self.stage, self.f = st, f
        self.max_exp = _MaxExp(st, f, styles or {})
        self.normalise = _SumNormalise(st, f, styles or {})
        super().__init__({"i": In(stream_of(f.tp * f.cip, st.in_ranges[0])),
                          "o": Out(stream_of(f.tp * f.cop, st.out_range))})
        self.busy = self.normalise.busy

    @property
    def buffer_bits(self) -> int:
        return self.max_exp.buffer_bits + self.normalise.buffer_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.max_exp, m.submodules.normalise = self.max_exp, self.normalise
        wiring.connect(m, wiring.flipped(self.i), self.max_exp.i)
        wiring.connect(m, self.max_exp.o, self.normalise.i)
        wiring.connect(m, self.normalise.o, wiring.flipped(self.o))
        return m
