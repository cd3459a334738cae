"""Stream plumbing between stages: FIFOs, lane gearboxes, broadcast forks, head merges.

All streams follow the AXI-Stream transfer rule (a beat moves on valid & ready; valid and
payload hold until taken). Payloads are ``tp`` token slots of ``lanes`` elements, token
slot outermost (``hgpipe.graph.contract``).
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .mem import Ram
from .stream import count, payload_register


class Fifo(wiring.Component):
    """A FIFO of ``depth`` beats of ``width`` bits (plus the read register).

    The words sit in a ``Ram``; its registered read port is the output register: a word
    is read whenever the RAM holds one and the output is empty or being taken, so the
    FIFO passes a beat per cycle, with one cycle from input to output, and ``i.ready``
    and ``o.valid`` are both registered (it cuts combinational paths both ways).
    """

    def __init__(self, width: int, depth: int, *, style: str | None = None):
        self.width, self.depth, self.style = width, max(depth, 2), style
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        d = self.depth
        m.submodules.ram = ram = Ram(self.width, d, self.style)
        wp, rp = ram.write_port(), ram.read_port()
        wptr, rptr, level = Signal(range(d)), Signal(range(d)), Signal(range(d + 1))
        push, pop = Signal(), Signal()
        m.d.comb += [self.i.ready.eq(level != d), push.eq(self.i.valid & self.i.ready),
                     pop.eq((level != 0) & (~self.o.valid | self.o.ready)),
                     wp.addr.eq(wptr), wp.data.eq(self.i.payload), wp.en.eq(push),
                     rp.addr.eq(rptr), rp.en.eq(pop), self.o.payload.eq(rp.data)]
        m.d.sync += level.eq(level + push - pop)
        with m.If(push):
            m.d.sync += wptr.eq(Mux(wptr == d - 1, 0, wptr + 1))
        with m.If(pop):
            m.d.sync += [rptr.eq(Mux(rptr == d - 1, 0, rptr + 1)), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class Gearbox(wiring.Component):
    """Changes the lanes per token slot from ``a`` to ``b`` (channel order kept).

    Where one count divides the other (every gearbox a plan makes) it is a width
    converter: widening gathers ``b / a`` beats into place (each element has one place,
    so no multiplexer) and the last one loads the output register with them; narrowing
    holds a beat and loads the output register with one ``b``-lane chunk a cycle, taking
    the next beat as its last chunk leaves. Otherwise a shift register of ``2a + b``
    elements per slot accepts a beat while at most ``a + b`` are held and emits once ``b``
    are. All pass ``min(a, b)`` elements per cycle and slot; rows of every tensor are
    multiples of both counts, so rows stay aligned. The elements' registers have no reset
    (only the counts and valid do: ``stream.payload_register``).
    """

    def __init__(self, tp: int, a: int, b: int, bits: int):
        self.tp, self.a, self.b, self.bits = tp, a, b, bits
        super().__init__({"i": In(stream.Signature(tp * a * bits)),
                          "o": Out(stream.Signature(tp * b * bits))})

    def _slot(self, payload, t: int, lanes: int, lo: int, n: int):
        """Lanes ``lo .. lo + n`` of token slot ``t`` of a ``lanes``-lane payload."""
        w = self.bits
        return payload[(t * lanes + lo) * w:(t * lanes + lo + n) * w]

    def elaborate(self, platform):
        if self.b % self.a == 0:      # (equal counts: a register stage)
            return self._widen()
        if self.a % self.b == 0:
            return self._narrow()
        return self._shift()

    def _widen(self):
        m = Module()
        tp, a, b = self.tp, self.a, self.b
        k = b // a
        j = Signal(range(k))
        held = [[Signal(a * self.bits, name=f"g{t}_{q}", reset_less=True)
                 for q in range(k - 1)] for t in range(tp)]
        out = payload_register(m, self.o)
        free = ~self.o.valid | self.o.ready
        push = Signal()
        m.d.comb += [self.i.ready.eq((j != k - 1) | free),
                     push.eq(self.i.valid & self.i.ready)]
        with m.If(push):
            m.d.sync += j.eq(Mux(j == k - 1, 0, j + 1))
            for t in range(tp):
                beat = self._slot(self.i.payload, t, a, 0, a)
                for q in range(k - 1):
                    with m.If(j == q):
                        m.d.sync += held[t][q].eq(beat)
        with m.If(push & (j == k - 1)):
            m.d.sync += self.o.valid.eq(1)
            for t in range(tp):
                m.d.sync += self._slot(out, t, b, 0, b).eq(
                    Cat(*held[t], self._slot(self.i.payload, t, a, 0, a)))
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m

    def _narrow(self):
        m = Module()
        tp, a, b = self.tp, self.a, self.b
        k = a // b
        hold = Signal(tp * a * self.bits, reset_less=True)
        out = payload_register(m, self.o)
        left = Signal(range(k + 1))          # chunks of ``hold`` still to leave
        free = ~self.o.valid | self.o.ready
        move = Signal()
        push = Signal()
        m.d.comb += [move.eq(free & (left != 0)),
                     self.i.ready.eq((left == 0) | ((left == 1) & free)),
                     push.eq(self.i.valid & self.i.ready)]
        with m.If(move):
            m.d.sync += self.o.valid.eq(1)
            for t in range(tp):
                chunks = Array(self._slot(hold, t, a, c * b, b) for c in range(k))
                m.d.sync += self._slot(out, t, b, 0, b).eq(chunks[k - left])
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(push):
            m.d.sync += [hold.eq(self.i.payload), left.eq(k)]
        with m.Elif(move):
            m.d.sync += left.eq(left - 1)
        return m

    def _shift(self):
        m = Module()
        tp, a, b, w = self.tp, self.a, self.b, self.bits
        cap = 2 * a + b
        count = Signal(range(cap + 1))
        regs = [[Signal(w, name=f"s{t}_{k}", reset_less=True) for k in range(cap)]
                for t in range(tp)]
        pop = Signal()
        push = Signal()
        m.d.comb += [self.o.valid.eq(count >= b), pop.eq(self.o.valid & self.o.ready),
                     self.i.ready.eq(count <= a + b), push.eq(self.i.valid & self.i.ready)]
        for t in range(tp):
            m.d.comb += self.o.payload[t * b * w:(t + 1) * b * w].eq(
                Cat(*regs[t][:b]))
        kept = Signal(range(cap + 1))           # elements left after this cycle's pop
        m.d.comb += kept.eq(Mux(pop, count - b, count))
        m.d.sync += count.eq(kept + Mux(push, a, 0))
        for t in range(tp):
            src = regs[t]
            shifted = [Mux(pop, src[k + b] if k + b < cap else 0, src[k]) for k in range(cap)]
            elems = [self.i.payload[(t * a + e) * w:(t * a + e + 1) * w] for e in range(a)]
            for k in range(cap):
                new = shifted[k]
                for e in range(a):
                    # element e of the beat lands at position kept + e
                    if k - e >= 0:
                        new = Mux(push & (kept == k - e), elems[e], new)
                m.d.sync += src[k].eq(new)
        return m


class Fork(wiring.Component):
    """Broadcast one stream to ``n`` consumers (``o0`` ...). Each output offers the beat
    until it takes it; the input advances when every output has taken it, so one slow
    consumer never makes another see a beat twice."""

    def __init__(self, width: int, n: int):
        self.n = n
        super().__init__({"i": In(stream.Signature(width)),
                          **{f"o{k}": Out(stream.Signature(width)) for k in range(n)}})

    def outputs(self):
        return [getattr(self, f"o{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        outs = self.outputs()
        done = Signal(self.n)
        over = [done[k] | outs[k].ready for k in range(self.n)]
        all_over = Signal()
        m.d.comb += all_over.eq(Cat(*over).all())
        m.d.comb += self.i.ready.eq(all_over)
        for k, o in enumerate(outs):
            m.d.comb += [o.valid.eq(self.i.valid & ~done[k]), o.payload.eq(self.i.payload)]
        with m.If(self.i.valid):
            with m.If(all_over):
                m.d.sync += done.eq(0)
            with m.Else():
                m.d.sync += done.eq(done | Cat(*[o.valid & o.ready for o in outs]))
        return m


class Merge(wiring.Component):
    """Concatenate per-head streams along channels: for each token group, ``beats`` beats
    from head 0, then from head 1, ...; ports ``i0`` ... and ``o``."""

    def __init__(self, width: int, n: int, beats: int):
        self.n, self.beats = n, beats
        super().__init__({**{f"i{k}": In(stream.Signature(width)) for k in range(n)},
                          "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        ins = [getattr(self, f"i{k}") for k in range(self.n)]
        head, j = Signal(range(self.n)), Signal(range(self.beats))
        valid = Array(s.valid for s in ins)
        payload = Array(s.payload for s in ins)
        m.d.comb += [self.o.valid.eq(valid[head]), self.o.payload.eq(payload[head])]
        for k, s in enumerate(ins):
            m.d.comb += s.ready.eq(self.o.ready & (head == k))
        count(m, self.o.valid & self.o.ready, (head, self.n), (j, self.beats))
        return m


class ClassSelect(wiring.Component):
    """Keep the class token's row (token ``row``: slot ``row % tp`` of the ``chunks`` beats
    of group ``row // tp``, of ``rows * chunks`` beats an image) and drop the rest: the
    head's input."""

    def __init__(self, tp: int, lanes: int, bits: int, rows: int, chunks: int, row: int = 0):
        if not 0 <= row < rows * tp:
            raise ValueError(f"ClassSelect: row {row}: expected 0 to {rows * tp - 1}")
        self.tp, self.lanes, self.bits, self.rows, self.chunks = tp, lanes, bits, rows, chunks
        self.row = row
        super().__init__({"i": In(stream.Signature(tp * lanes * bits)),
                          "o": Out(stream.Signature(lanes * bits))})

    def elaborate(self, platform):
        m = Module()
        n = self.rows * self.chunks
        k = Signal(range(n))
        first = self.row // self.tp * self.chunks
        keep = (k >= first) & (k < first + self.chunks) if first else k < self.chunks
        w = self.lanes * self.bits
        slot = self.row % self.tp
        m.d.comb += [self.o.payload.eq(self.i.payload[slot * w:(slot + 1) * w]),
                     self.o.valid.eq(self.i.valid & keep),
                     self.i.ready.eq(Mux(keep, self.o.ready, 1))]
        count(m, self.i.valid & self.i.ready, (k, n))
        return m
