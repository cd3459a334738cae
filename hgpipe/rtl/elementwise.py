"""Element-wise stages over one or more joined streams, one beat per cycle.

``Join`` is the shared mechanism: a beat leaves only when every input has one; the inputs
are registered (a FIFO's block-RAM output reaches no logic in the cycle it is read) and
the result sits in the output register (two cycles of latency, full throughput under
backpressure). A stage supplies the per-element function.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.intrange import IntRange
from ..graph.stages import ResidualAdd
from .stream import delay, lane, pack, payload_register, shape_of, stream_of


class Join(wiring.Component):
    """``o[e] = fn(m, i0[e], i1[e], ...)`` for every element ``e`` of a beat.

    Protocol: inputs are consumed together, when all are valid and the output register is
    free or being emptied; order is preserved.
    """

    def __init__(self, in_ranges: tuple[IntRange, ...], out_range: IntRange, elements: int):
        self.in_ranges, self.out_range, self.elements = in_ranges, out_range, elements
        ports = {("i" if len(in_ranges) == 1 else f"i{k}"): In(stream_of(elements, r))
                 for k, r in enumerate(in_ranges)}
        ports["o"] = Out(stream_of(elements, out_range))
        super().__init__(ports)
        self.busy = Signal()  # a beat is taken this cycle

    @property
    def inputs(self):
        return [self.i] if len(self.in_ranges) == 1 else \
            [getattr(self, f"i{k}") for k in range(len(self.in_ranges))]

    def element(self, m: Module, xs: list, e: int):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        ins = self.inputs
        advance = ~self.o.valid | self.o.ready
        all_valid = Signal()
        v = ins[0].valid
        for s in ins[1:]:
            v = v & s.valid
        m.d.comb += all_valid.eq(v)
        for s in ins:
            m.d.comb += s.ready.eq(advance & all_valid)
        m.d.comb += self.busy.eq(advance & all_valid)
        taken = [delay(m, advance, s.payload, 1, f"in{k}", data=True)
                 for k, s in enumerate(ins)]
        valid = delay(m, advance, all_valid, 1, "valid")
        outs = []
        for e in range(self.elements):
            xs = [lane(p, e, r) for p, r in zip(taken, self.in_ranges)]
            outs.append(self.element(m, xs, e))
        out = payload_register(m, self.o)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid)
            pack(m, out, outs, self.out_range, domain="sync")
        return m


def clamp(v, r: IntRange, v_range: IntRange | None = None):
    """Saturate ``v`` to ``r``; a bound that ``v_range`` cannot cross costs no comparator."""
    if v_range is None or v_range.hi > r.hi:
        v = Mux(v > r.hi, r.hi, v)
    if v_range is None or v_range.lo < r.lo:
        v = Mux(v < r.lo, r.lo, v)
    return v


class ResidualAddStage(Join):
    """``y = clamp(round(skip / 2^k) + branch)``; ports ``i0`` (skip), ``i1`` (branch)."""

    def __init__(self, st: ResidualAdd, elements: int):
        self.stage = st
        super().__init__(st.in_ranges, st.out_range, elements)

    def element(self, m, xs, e):
        st, k = self.stage, self.stage.skip_shift
        d = st.derived
        skip, branch = xs
        aligned = Signal(shape_of(d["aligned"]), name=f"aligned{e}")
        m.d.comb += aligned.eq((skip + (1 << (k - 1))) >> k if k else skip)
        s = Signal(shape_of(d["sum"]), name=f"sum{e}")
        m.d.comb += s.eq(aligned + branch)
        return clamp(s, st.out_format, d["sum"])
