"""LayerNorm stage with overlapped passes: one pass per row in steady state.

A row (``tp`` tokens x ``C`` channels, ``C/lanes`` beats) is written into a bank of the row
memory while ``s1 = sum x`` and ``s2 = sum x^2`` accumulate. When its last beat is in, a
two-cycle finish step forms ``v = C*s2 - s1^2`` and looks up ``r = rsqrt(v)``; the output
pass then reads the row back, ``y = clamp(((C*x - s1) * r * gamma + beta) >> shift)``,
while the next rows are written into other banks. HG-PIPE runs its passes one after
another (three row-times per row); here a row costs one: ``(T/tp) * (C/lanes)`` cycles
per image. The extra buffer is ``banks - 1`` rows of ``tp * C`` inputs: ``banks`` is 3
(2 would leave a bubble of the finish latency per row), more when a row is under 3 beats.
"""

from __future__ import annotations

from math import ceil

from amaranth import Array, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..graph.contract import Folding
from ..graph.intrange import IntRange
from ..graph.stages import LayerNorm
from .elementwise import clamp
from .linear import _packed
from .lut import rom_init, table_index
from .stream import lane, pack, shape_of, stream_of

FINISH_LATENCY = 3  # cycles from a row's last beat until its output pass may start


def banks_for(beats_per_row: int) -> int:
    return 2 + ceil(FINISH_LATENCY / beats_per_row)


class LayerNormStage(wiring.Component):
    """Stream in and out: beats of ``tp x lanes`` elements, rows in order."""

    def __init__(self, st: LayerNorm, f: Folding, channels: int):
        if channels % f.cip or f.cip != f.cop:
            raise ValueError(f"LayerNormStage {st.name}: folding {f} must have cip == cop "
                             f"dividing {channels}")
        self.stage, self.f, self.channels = st, f, channels
        self.nb = channels // f.cip          # beats per row
        self.banks = banks_for(self.nb)
        self.d = st.derived
        self.x_range = st.in_ranges[0]
        super().__init__({"i": In(stream_of(f.tp * f.cip, self.x_range)),
                          "o": Out(stream_of(f.tp * f.cop, st.out_range))})

    @property
    def buffer_bits(self) -> int:
        return self.banks * self.f.tp * self.channels * self.x_range.bits

    def elaborate(self, platform):
        m = Module()
        st, f, nb, nbank, d = self.stage, self.f, self.nb, self.banks, self.d
        lanes, xr = f.cip, self.x_range
        m.submodules.row = row = memory.Memory(shape=unsigned(f.tp * lanes * xr.bits),
                                               depth=nbank * nb, init=[])
        gamma_rng, beta_rng = IntRange.of_array(st.gamma), IntRange.of_array(st.beta)
        m.submodules.affine = aff = memory.Memory(
            shape=unsigned(lanes * (gamma_rng.bits + beta_rng.bits)), depth=nb,
            init=[_packed(list(st.gamma[j * lanes:(j + 1) * lanes]), gamma_rng.bits)
                  | (_packed(list(st.beta[j * lanes:(j + 1) * lanes]), beta_rng.bits)
                     << (lanes * gamma_rng.bits)) for j in range(nb)])
        m.submodules.rsqrt = rom = memory.Memory(shape=shape_of(st.rsqrt.out_range),
                                                 depth=st.rsqrt.size, init=rom_init(st.rsqrt))
        wr, rd, ap = row.write_port(), row.read_port(), aff.read_port()

        # Writer: statistics as the row arrives.
        filled = Signal(nbank)
        bw, jw = Signal(range(nbank)), Signal(range(nb))
        s1 = [Signal(shape_of(d["s1"]), name=f"s1_{t}") for t in range(f.tp)]
        s2 = [Signal(shape_of(d["s2"]), name=f"s2_{t}") for t in range(f.tp)]
        take = Signal()
        m.d.comb += [self.i.ready.eq(~filled.bit_select(bw, 1)),
                     take.eq(self.i.valid & self.i.ready),
                     wr.addr.eq(bw * nb + jw), wr.data.eq(self.i.payload), wr.en.eq(take)]
        last_w = jw == nb - 1
        set_filled = Signal(nbank)
        fin_v = Signal()
        fin_bank = Signal(range(nbank))
        fin_s1 = [Signal.like(s) for s in s1]
        fin_s2 = [Signal.like(s) for s in s2]
        m.d.sync += fin_v.eq(take & last_w)
        for t in range(f.tp):
            xs = [lane(self.i.payload, t * lanes + p, xr) for p in range(lanes)]
            n1 = Signal.like(s1[t], name=f"n1_{t}")
            n2 = Signal.like(s2[t], name=f"n2_{t}")
            m.d.comb += [n1.eq(Mux(jw == 0, 0, s1[t]) + sum(xs)),
                         n2.eq(Mux(jw == 0, 0, s2[t]) + sum(x * x for x in xs))]
            with m.If(take):
                m.d.sync += [s1[t].eq(n1), s2[t].eq(n2)]
                with m.If(last_w):
                    m.d.sync += [fin_s1[t].eq(n1), fin_s2[t].eq(n2)]
        with m.If(take):
            with m.If(last_w):
                m.d.sync += [jw.eq(0), bw.eq(Mux(bw == nbank - 1, 0, bw + 1)), fin_bank.eq(bw)]
                m.d.comb += set_filled.eq(1 << bw)
            with m.Else():
                m.d.sync += jw.eq(jw + 1)

        # Finish: v, then the rsqrt lookup (one ROM port per token lane), then hand over.
        ready = Signal(nbank)
        set_ready = Signal(nbank)
        row_s1 = [Array(Signal.like(s1[t], name=f"row_s1_{t}_{b}") for b in range(nbank))
                  for t in range(f.tp)]
        row_r = [Array(Signal(shape_of(d["r"]), name=f"row_r_{t}_{b}") for b in range(nbank))
                 for t in range(f.tp)]
        f2_v, f2_bank = Signal(), Signal.like(fin_bank)
        f2_s1 = [Signal.like(s) for s in s1]
        m.d.sync += [f2_v.eq(fin_v), f2_bank.eq(fin_bank)]
        ports = []
        for t in range(f.tp):
            v = Signal(shape_of(d["v"]), name=f"v_{t}")
            m.d.comb += v.eq(self.channels * fin_s2[t] - fin_s1[t] * fin_s1[t])
            p = rom.read_port()
            m.d.comb += [p.addr.eq(table_index(m, v, st.rsqrt, 0, d["v"], f"rs{t}")),
                         p.en.eq(fin_v)]
            m.d.sync += f2_s1[t].eq(fin_s1[t])
            ports.append(p)
        with m.If(f2_v):
            m.d.comb += set_ready.eq(1 << f2_bank)
            for t in range(f.tp):
                m.d.sync += [row_s1[t][f2_bank].eq(f2_s1[t]), row_r[t][f2_bank].eq(ports[t].data)]

        # Reader: the output pass over a ready bank; everything stalls on backpressure.
        en = ~self.o.valid | self.o.ready
        br, jr = Signal(range(nbank)), Signal(range(nb))
        issue = Signal()
        clear = Signal(nbank)
        m.d.comb += [issue.eq(ready.bit_select(br, 1) & en),
                     rd.addr.eq(br * nb + jr), rd.en.eq(en), ap.addr.eq(jr), ap.en.eq(en)]
        with m.If(issue):
            with m.If(jr == nb - 1):
                m.d.sync += [jr.eq(0), br.eq(Mux(br == nbank - 1, 0, br + 1))]
                m.d.comb += clear.eq(1 << br)
            with m.Else():
                m.d.sync += jr.eq(jr + 1)
        m.d.sync += [filled.eq((filled | set_filled) & ~clear),
                     ready.eq((ready | set_ready) & ~clear)]

        v1, b1 = Signal(), Signal.like(br)
        with m.If(en):
            m.d.sync += [v1.eq(issue), b1.eq(br)]
        outs = []
        for t in range(f.tp):
            for p in range(lanes):
                x = lane(rd.data, t * lanes + p, xr)
                gamma = lane(ap.data, p, gamma_rng)
                beta = ap.data[lanes * gamma_rng.bits + p * beta_rng.bits:
                               lanes * gamma_rng.bits + (p + 1) * beta_rng.bits]
                beta = beta.as_signed() if beta_rng.signed else beta
                dd = Signal(shape_of(d["d"]), name=f"d_{t}_{p}")
                tt = Signal(shape_of(d["t"]), name=f"t_{t}_{p}")
                u = Signal(shape_of(d["u"]), name=f"u_{t}_{p}")
                m.d.comb += [dd.eq(self.channels * x - row_s1[t][b1]),
                             tt.eq(dd * row_r[t][b1]), u.eq(tt * gamma + beta)]
                outs.append(clamp(u >> st.shift, st.out_format))
        with m.If(en):
            m.d.sync += self.o.valid.eq(v1)
            with m.If(v1):
                pack(m, self.o.payload, outs, st.out_range, domain="sync")
        return m
