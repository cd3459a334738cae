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

from ..graph.contract import Folding, stage_memories
from ..graph.memories import MemoryDecl
from ..graph.intrange import IntRange
from ..graph.pipeline import Pipelining, default
from ..graph.stages import Softmax
from .elementwise import clamp
from .lut import table_index
from .mem import Rom
from .rowpass import RowPass
from .stream import delay, shape_of, stream_of


class _MaxExp(RowPass):
    finish_step, emit_step, row_memory = "max", "exp", "score_rows"

    def __init__(self, st: Softmax, f: Folding, keys: int, styles: dict[str, str],
                 pipe: Pipelining, memories: dict[str, MemoryDecl]):
        self.stage, self.styles, self.memories = st, styles, memories
        x = st.in_ranges[0]
        self.stat_ranges = self.held_ranges = [x]
        super().__init__(x, st.exp.out_range, f.tp, f.cip, keys, styles.get("score_rows"),
                         pipe, valid_len=st.row_len)

    def pad_term(self):
        return self.in_range.lo    # no real score is below it: the max is the real keys'

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
        # max - x | exp index | exp ROM
        st = self.stage
        if not hasattr(self, "_exp"):
            m.submodules.exp = self._exp = Rom.declared(self.memories["exp"],
                                                        style=self.styles.get("exp"))
        # (datapath registers, without reset: ``stream.payload_register``)
        diff = Signal(shape_of(st.derived["diff"]), name=f"diff_{t}_{p}", reset_less=True)
        with m.If(en):
            m.d.sync += diff.eq(held[0] - x)
        idx = delay(m, en, table_index(m, diff, st.exp, 0, st.derived["diff"], f"ex{t}_{p}"),
                    1, f"ex_idx{t}_{p}", data=True)
        port = self._exp.read_port()
        m.d.comb += [port.addr.eq(idx), port.en.eq(en)]
        return port.data


class _SumNormalise(RowPass):
    finish_step, emit_step, row_memory = "recip", "normalise", "exp_rows"

    def __init__(self, st: Softmax, f: Folding, keys: int, styles: dict[str, str],
                 pipe: Pipelining, memories: dict[str, MemoryDecl]):
        # padding keys arrive as e = 0 (the first pass's output), so they add nothing to
        # z and leave as (0 * r + 2^(shift-1)) >> shift = 0: no mask needed here
        self.stage, self.styles, self.memories = st, styles, memories
        self.stat_ranges = [IntRange(0, st.derived["z"].hi)]  # partial sums start at 0
        self.held_ranges = [st.derived["r"]]
        super().__init__(st.exp.out_range, st.out_range, f.tp, f.cip, keys,
                         styles.get("exp_rows"), pipe)

    def accumulate(self, m, xs, stats, first):
        return [Mux(first, 0, stats[0]) + sum(xs)]

    def finish(self, m, stats, t, valid):
        # reciprocal index | reciprocal ROM: free-running registers
        st = self.stage
        if not hasattr(self, "_recip"):
            m.submodules.recip = self._recip = Rom.declared(self.memories["recip"],
                                                            style=self.styles.get("recip"))
        idx = delay(m, None, table_index(m, stats[0], st.recip, 0, self.stat_ranges[0],
                                         f"rc{t}"), 1, f"rc_idx{t}", data=True)
        port = self._recip.read_port()
        m.d.comb += [port.addr.eq(idx), port.en.eq(1)]
        return [port.data]

    def emit(self, m, x, held, constants, t, p, en):
        # operands | e * r, registered; the rounding, shift and clamp go into the output
        # register (an add behind the product would leave the DSP's P register unpacked)
        st = self.stage
        # the DSP's operands and product keep their reset (``stream.wide_product``)
        xr, rr = delay(m, en, x, 1, f"e_{t}_{p}"), delay(m, en, held[0], 1, f"r_{t}_{p}")
        prod = Signal(shape_of(st.derived["product"]), name=f"prod_{t}_{p}")
        rounded = Signal(shape_of(st.derived["product"]), name=f"rounded_{t}_{p}")
        with m.If(en):
            m.d.sync += prod.eq(xr * rr)
        m.d.comb += rounded.eq(prod + (1 << (st.shift - 1)))
        return clamp(rounded >> st.shift, st.out_format, st.derived["product"].shr(st.shift))


class SoftmaxStage(wiring.Component):
    """One softmax unit: rows of ``keys`` scores (``row_len`` real keys, then padding),
    ``tp`` rows x ``cip`` scores a beat."""

    def __init__(self, st: Softmax, f: Folding, keys: int | None = None, *,
                 styles: dict[str, str] | None = None, pipe: Pipelining | None = None):
        keys = st.row_len if keys is None else keys
        if f.cip != f.cop or keys < st.row_len:
            raise ValueError(f"SoftmaxStage {st.name}: folding {f} with {keys} keys needs "
                             f"cip == cop and at least {st.row_len} keys")
        self.stage, self.f = st, f
        pipe = pipe or default()
        mems = stage_memories(st, f, pipe, channels=keys)   # the passes share them
        self.max_exp = _MaxExp(st, f, keys, styles or {}, pipe, mems)
        self.normalise = _SumNormalise(st, f, keys, styles or {}, pipe, mems)
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
