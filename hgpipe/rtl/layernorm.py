"""LayerNorm on the row-pass mechanism: one pass per row in steady state.

Writing a row accumulates ``s1 = sum x`` and ``s2 = sum x^2``; the finish forms
``v = C*s2 - s1^2`` and looks up ``r = rsqrt(v)``; the replay emits
``y = clamp(((C*x - s1) * r * gamma + beta) >> shift)`` with gamma and beta from a ROM per
channel chunk. Every multiply has registered operands and a registered product (the DSP's
A/B and P registers), and the rsqrt index its own stage (``Pipelining`` counts them). HG-PIPE runs its three passes one after another (56,448 cycles per
DeiT-tiny image at TP=2, one channel a cycle); overlapped, a row costs one pass
(18,816 cycles) for ``banks - 1`` extra rows of buffer (see ``RowPass.buffer_bits``).
"""

from __future__ import annotations

from amaranth import Mux, Signal

from ..graph.contract import Folding, stage_memories
from ..graph.intrange import IntRange
from ..graph.pipeline import Pipelining, default
from ..graph.stages import LayerNorm
from .elementwise import clamp
from .lut import table_index
from .mem import Rom
from .rowpass import RowPass
from .stream import const_product, delay, lane, pack_word, shape_of, wide_product


class LayerNormStage(RowPass):
    finish_step = emit_step = "layernorm"

    def __init__(self, st: LayerNorm, f: Folding, channels: int, *,
                 styles: dict[str, str] | None = None, pipe: Pipelining | None = None):
        if f.cip != f.cop:
            raise ValueError(f"LayerNormStage {st.name}: folding {f} needs cip == cop")
        self.stage, self.d = st, st.derived
        self.stat_ranges = [self.d["s1"], self.d["s2"]]
        self.held_ranges = [self.d["s1"], self.d["r"]]
        self.gamma_range, self.beta_range = IntRange.of_array(st.gamma), IntRange.of_array(st.beta)
        self.styles = styles or {}
        pipe = pipe or default()
        self.memories = stage_memories(st, f, pipe, channels=channels)
        self._r: dict[int, tuple] = {}
        self._affine: dict[int, tuple] = {}
        super().__init__(st.in_ranges[0], st.out_range, f.tp, f.cip, channels,
                         self.styles.get("row"), pipe)

    def prepare(self, m, xs):
        return xs + [x * x for x in xs]

    def accumulate(self, m, terms, stats, first):
        s1, s2 = stats
        xs, squares = terms[:self.lanes], terms[self.lanes:]
        return [Mux(first, 0, s1) + sum(xs), Mux(first, 0, s2) + sum(squares)]

    def finish(self, m, stats, t, valid):
        # C*s2 and s1^2 | v | v + offset | rsqrt index | rsqrt ROM: free-running registers
        s1, s2 = stats
        st = self.stage
        if not hasattr(self, "_rsqrt"):
            m.submodules.rsqrt = self._rsqrt = Rom.declared(self.memories["rsqrt"],
                                                            style=self.styles.get("rsqrt"))
        # (datapath registers, without reset: ``stream.payload_register``)
        cs2 = delay(m, None, const_product(s2, self.row_len), 1, f"cs2_{t}", data=True)
        s1sq = delay(m, None, s1 * s1, 1, f"s1sq_{t}")    # a DSP's product keeps its reset
        v = Signal(shape_of(self.d["v"]), name=f"v_{t}", reset_less=True)
        m.d.sync += v.eq(cs2 - s1sq)
        idx = delay(m, None, table_index(m, v, st.rsqrt, 0, self.d["v"], f"rs{t}",
                                         lambda x, n: delay(m, None, x, 1, n, data=True)),
                    1, f"rs_idx{t}", data=True)
        port = self._rsqrt.read_port()
        m.d.comb += [port.addr.eq(idx), port.en.eq(1)]
        return [delay(m, None, s1, self.finish_latency, f"s1_{t}", data=True), port.data]

    def chunk_constants(self, m, chunk, en):
        st, lanes, gb, bb = self.stage, self.lanes, self.gamma_range.bits, self.beta_range.bits
        m.submodules.affine = aff = Rom.declared(
            self.memories["affine"], [pack_word(st.gamma[j * lanes:(j + 1) * lanes], gb)
                                      | (pack_word(st.beta[j * lanes:(j + 1) * lanes], bb)
                                         << (lanes * gb))
                                      for j in range(self.nb)], self.styles.get("affine"))
        port = aff.read_port()
        m.d.comb += [port.addr.eq(chunk), port.en.eq(en)]
        return port.data

    def emit(self, m, x, held, constants, t, p, en):
        # C*x - s1 | *r | *gamma (two stages, in DSP pieces) | + beta, each registered; the
        # clamp goes into the output
        st, d = self.stage, self.d
        s1, r = held
        if t not in self._r:   # per token: r waits a stage for its product
            self._r[t] = delay(m, en, r, 1, f"re_{t}")     # DSP operands keep their reset
        r = self._r[t]
        if p not in self._affine:   # per lane: gamma and beta, shared by the tokens
            gamma = lane(constants, p, self.gamma_range)
            beta = lane(constants[self.lanes * self.gamma_range.bits:], p, self.beta_range)
            self._affine[p] = (delay(m, en, gamma, 2, f"gamma_{p}"),
                               delay(m, en, beta, 4, f"beta_{p}", data=True))
        gamma, beta = self._affine[p]
        dd = Signal(shape_of(d["d"]), name=f"d_{t}_{p}")
        tt = Signal(shape_of(d["t"]), name=f"t_{t}_{p}")
        u = Signal(shape_of(d["u"]), name=f"u_{t}_{p}", reset_less=True)
        with m.If(en):
            m.d.sync += [dd.eq(const_product(x, self.row_len) - s1), tt.eq(dd * r)]
        tg = wide_product(m, en, tt, d["t"], gamma, self.gamma_range, f"tg_{t}_{p}")
        with m.If(en):   # (a product and an add in one stage would leave the DSP unpacked)
            m.d.sync += u.eq(tg + beta)
        return clamp(u >> st.shift, st.out_format, d["shifted"])
