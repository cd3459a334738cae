"""Linear stage: ``acc[t, j] = bias[j] + sum_k x[t, k] * w[j, k]`` with folding (TP, CIP, COP).

The input row of each token group (``tp`` tokens x ``cin`` channels, arriving ``cip``
channels a beat) fills one bank of a double-buffered row memory while the other bank is
computed: for each output chunk ``oc`` (``cop`` channels) and input chunk ``ic``, one cycle
multiplies ``tp x cop x cip`` pairs, with weights from an on-chip ROM addressed
``oc * NI + ic``. Steady state: ``(tokens/tp) * (cin/cip) * (cout/cop)`` cycles per image,
the contract's formula. Accumulators have the stage's derived width; partial sums may wrap
in two's complement, the final sum cannot (its range is exact).

With ``weights=WeightSource.STREAM`` the ROM's words come instead on an input stream ``w``,
in the order the ROM would be read (``weight_words``, once per token group): a stage that
reads them once an image (the head) can keep them off chip (``hgpipe.rtl.ddr.DdrWeights``).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..graph.contract import Folding, stage_memories
from ..choice import Choice
from ..graph.pipeline import Pipelining, default
from ..graph.stages import Linear
from .mem import Ram, Rom
from .stream import delay, lane, mac, pack_word, stream_of


class WeightSource(Choice):
    """Where a linear stage's weights come from."""

    ROM = "rom"         # an on-chip ROM
    STREAM = "stream"   # an input stream, once per token group (from DDR)


def weight_words(st: Linear, f: Folding) -> list[int]:
    """The weight ROM's words in address order ``oc * NI + ic``: ``cop`` rows of ``cip``
    weights each (the order a streamed stage takes them in, once per token group)."""
    wb = st.derived["weight"].bits
    return [pack_word([st.weight[oc * f.cop + co, ic * f.cip + ci]
                       for co in range(f.cop) for ci in range(f.cip)], wb)
            for oc in range(st.out_features // f.cop) for ic in range(st.in_features // f.cip)]


class LinearStage(wiring.Component):
    """Stream in: beats of ``tp x cip`` inputs. Stream out: beats of ``tp x cop``
    accumulators, output chunks in order for each token group."""

    def __init__(self, st: Linear, f: Folding, *, class_row: bool = False,
                 styles: dict[str, str] | None = None, weights: str = WeightSource.ROM,
                 pipe: Pipelining | None = None):
        if st.cls_only and not class_row:
            raise ValueError("LinearStage: the head is a HeadStage")
        cin, cout = st.in_features, st.out_features
        if cin % f.cip or cout % f.cop:
            raise ValueError(f"LinearStage {st.name}: folding {f} does not divide "
                             f"{cin} -> {cout}")
        weights = WeightSource.parse(weights, f"LinearStage {st.name}: weights")
        self.stage, self.f, self.styles, self.weights = st, f, styles or {}, weights
        self.pipe = pipe or default()
        self.ni, self.no = cin // f.cip, cout // f.cop
        self.x_range = st.in_ranges[0]
        self.w_range = st.derived["weight"]
        self.acc_range = st.derived["acc"]
        w = {"w": In(stream.Signature(f.cop * f.cip * self.w_range.bits))} \
            if weights is WeightSource.STREAM else {}
        super().__init__({"i": In(stream_of(f.tp * f.cip, self.x_range)),
                          "o": Out(stream_of(f.tp * f.cop, self.acc_range)), **w})
        self.busy = Signal()  # a multiply-accumulate issues this cycle

    def weight_words(self) -> list[int]:
        return weight_words(self.stage, self.f)

    def bias_words(self) -> list[int]:
        st, f = self.stage, self.f
        return [pack_word(st.bias[oc * f.cop:(oc + 1) * f.cop], self.acc_range.bits)
                for oc in range(self.no)]

    def elaborate(self, platform):
        m = Module()
        f, ni, no = self.f, self.ni, self.no
        xb, wb = self.x_range.bits, self.w_range.bits
        style = self.styles.get
        lat = self.pipe.read_latency
        mems = stage_memories(self.stage, f, self.pipe)
        m.submodules.row = row = Ram.declared(mems["row"], style("row"))
        m.submodules.brom = brom = Rom.declared(mems["bias"], self.bias_words(), style("bias"))
        wr, rd, bp = row.write_port(), row.read_port(), brom.read_port()
        if self.weights is WeightSource.ROM:
            m.submodules.wrom = wrom = Rom.declared(mems["weights"], self.weight_words(),
                                                    style("weights"))
            wp = wrom.read_port()
            wdata = wp.data

        # Input side: fill bank_w, one beat per cycle, while it is not full.
        full = Signal(2)
        bank_w, ic_w = Signal(), Signal(range(ni))
        m.d.comb += [self.i.ready.eq(~full.bit_select(bank_w, 1)),
                     wr.addr.eq(Mux(bank_w, ni, 0) + ic_w), wr.data.eq(self.i.payload),
                     wr.en.eq(self.i.valid & self.i.ready)]
        set_full = Signal(2)
        with m.If(self.i.valid & self.i.ready):
            with m.If(ic_w == ni - 1):
                m.d.sync += [ic_w.eq(0), bank_w.eq(~bank_w)]
                m.d.comb += set_full.eq(Mux(bank_w, 0b10, 0b01))
            with m.Else():
                m.d.sync += ic_w.eq(ic_w + 1)

        # Issue stage: walk (oc, ic) over a full bank; everything stalls on backpressure.
        en = ~self.o.valid | self.o.ready
        bank_r = Signal()
        oc, ic = Signal(range(no)), Signal(range(ni))
        issue = Signal()
        ready = full.bit_select(bank_r, 1) & en
        if self.weights is WeightSource.ROM:
            # the ROM is read in address order: a counter, not oc * ni + ic (a multiplier)
            waddr = Signal(range(no * ni), name="waddr")
            with m.If(issue):
                m.d.sync += waddr.eq(Mux(waddr == no * ni - 1, 0, waddr + 1))
            m.d.comb += [wp.addr.eq(waddr), wp.en.eq(en)]
        else:   # the stream's word, registered as the ROM's read port would be
            ready = ready & self.w.valid
            m.d.comb += self.w.ready.eq(issue)
            wdata = delay(m, en, self.w.payload, lat, "wword", data=True)
        # the bias is read so that it arrives with the sum's first partial, mac_stages
        # after the operands
        m.d.comb += [issue.eq(ready), self.busy.eq(issue),
                     rd.addr.eq(Mux(bank_r, ni, 0) + ic), rd.en.eq(en),
                     bp.addr.eq(delay(m, en, oc, self.pipe.mac_stages(f.cip), "bias_oc")),
                     bp.en.eq(en)]
        clear_full = Signal(2)
        with m.If(issue):
            with m.If(ic == ni - 1):
                m.d.sync += ic.eq(0)
                with m.If(oc == no - 1):
                    m.d.sync += [oc.eq(0), bank_r.eq(~bank_r)]
                    m.d.comb += clear_full.eq(Mux(bank_r, 0b10, 0b01))
                with m.Else():
                    m.d.sync += oc.eq(oc + 1)
            with m.Else():
                m.d.sync += ic.eq(ic + 1)
        m.d.sync += full.eq((full | set_full) & ~clear_full)

        # Multiply-accumulate: memory data of the issued (oc, ic) arrives ``lat`` later.
        v1, first1, last1 = (delay(m, en, s, lat, n) for s, n in (
            (issue, "v"), (ic == 0, "first"), (ic == ni - 1, "last")))
        xw, ww = f.cip * xb, f.cip * wb
        mac(m, en, v1, first1, last1, [rd.data[t * xw:(t + 1) * xw] for t in range(f.tp)],
            [wdata[co * ww:(co + 1) * ww] for co in range(f.cop)], self.x_range,
            self.w_range, f.tp, f.cop, f.cip, self.acc_range, self.o, self.pipe,
            start=[lane(bp.data, co, self.acc_range) for co in range(f.cop)])
        return m


class HeadStage(wiring.Component):
    """The classifier head: ``ClassSelect`` keeps the class token's row (``cls_row``) of
    the image (and drains the others at one beat a cycle) and a ``tp = 1`` linear stage
    computes it. In: ``tp x cip`` beats of all rows. Out: the logits' accumulators,
    ``cop`` a beat."""

    def __init__(self, st: Linear, f: Folding, tokens: int, cls_row: int = 0, *,
                 styles: dict[str, str] | None = None, weights: str = WeightSource.ROM,
                 pipe: Pipelining | None = None):
        if tokens % f.tp:
            raise ValueError(f"HeadStage {st.name}: tp {f.tp} does not divide {tokens} tokens")
        self.stage, self.f, self.tokens, self.cls_row = st, f, tokens, cls_row
        self.linear = LinearStage(st, Folding(1, f.cip, f.cop), class_row=True, styles=styles,
                                  weights=weights, pipe=pipe)
        x = st.in_ranges[0]
        w = {"w": In(stream.Signature(f.cop * f.cip * st.derived["weight"].bits))} \
            if self.linear.weights is WeightSource.STREAM else {}
        super().__init__({"i": In(stream_of(f.tp * f.cip, x)),
                          "o": Out(stream_of(f.cop, st.derived["acc"])), **w})
        self.busy = Signal()  # computing the class row or draining a row

    def elaborate(self, platform):
        from .plumbing import ClassSelect
        m = Module()
        f, st = self.f, self.stage
        m.submodules.select = sel = ClassSelect(f.tp, f.cip, st.in_ranges[0].bits,
                                                self.tokens // f.tp, st.in_features // f.cip,
                                                self.cls_row)
        m.submodules.linear = self.linear
        wiring.connect(m, wiring.flipped(self.i), sel.i)
        wiring.connect(m, sel.o, self.linear.i)
        wiring.connect(m, self.linear.o, wiring.flipped(self.o))
        if self.linear.weights is WeightSource.STREAM:
            wiring.connect(m, wiring.flipped(self.w), self.linear.w)
        m.d.comb += self.busy.eq(self.linear.busy | (self.i.valid & self.i.ready))
        return m
