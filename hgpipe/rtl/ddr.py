"""A FIFO whose storage is a ring buffer in off-chip memory, behind an AXI4 manager port.

Layout, traffic and capacity are the contract's (``hgpipe.graph.ddr.DdrLayout``). Beats
are packed into words (``pack`` a word, or ``split`` words a beat; an image's last word
may be short) and queued in an on-chip write buffer; once a whole burst is queued (an
image's last burst is shorter) and the ring has a free slot, its address goes out on AW
and its words on W. Each write response makes a burst readable: its address goes out on
AR as soon as the on-chip read buffer has room for it, the R words queue there, and the
slot is free again at RLAST. The read buffer's words are unpacked into beats.

Protocol: ``i`` and ``o`` are streams of beats (valid/ready); ``m`` issues INCR bursts of
one ID, with every byte strobed, and takes B and R whenever they come (R never waits:
reads are only issued into room). Bursts are aligned to their size, so none crosses a
4 KB page.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..graph.ddr import DdrLayout
from .axi import AxiArbiter, AxiParams, AxiSignature, arbiter_params, connect_top, top_members
from .plumbing import Fifo
from .stream import count


class DdrFifo(wiring.Component):
    """Beats of ``layout.width`` bits in a ring of ``layout.region_bytes`` at byte address
    ``base`` (a multiple of the burst's bytes)."""

    def __init__(self, layout: DdrLayout, base: int, axi: AxiParams, *,
                 style: str | None = None):
        if axi.data_bits != layout.data_bits:
            raise ValueError(f"DdrFifo: AXI data {axi.data_bits} bits, layout "
                             f"{layout.data_bits}: expected equal")
        step = layout.burst * layout.word_bytes
        if base % step or base + layout.region_bytes > 1 << axi.addr_bits:
            raise ValueError(f"DdrFifo: base=0x{base:x}: expected a multiple of {step} "
                             f"with the {layout.region_bytes}-byte region inside "
                             f"{axi.addr_bits}-bit addresses")
        self.layout, self.base, self.axi, self.style = layout, base, axi, style
        super().__init__({"i": In(stream.Signature(layout.width)),
                          "o": Out(stream.Signature(layout.width)),
                          "m": Out(AxiSignature(axi))})

    def elaborate(self, platform):
        m = Module()
        lay, axi = self.layout, self.axi
        cap = lay.buffer_words
        m.submodules.wbuf = wbuf = Fifo(lay.data_bits, cap, style=self.style)
        m.submodules.rbuf = rbuf = Fifo(lay.data_bits, cap, style=self.style)
        self.queued_in = wbuf.i.valid & wbuf.i.ready
        self._packer(m, wbuf.i)
        self._writes(m, wbuf.o)
        self._reads(m, rbuf.i)
        self._unpacker(m, rbuf.o)
        return m

    # -- beats to words ------------------------------------------------------------------------
    def _packer(self, m: Module, q) -> None:
        lay, w = self.layout, self.layout.width
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready)
        beat = Signal(range(lay.beats), name="in_beat")
        count(m, take, (beat, lay.beats))
        if lay.split == 1:
            # slots fill one beat a cycle; a word leaves with its last beat (or the image's)
            k = lay.pack
            slots = [Signal(w, name=f"slot{j}") for j in range(k)]
            n = Signal(range(k))
            m.d.comb += [self.i.ready.eq(q.ready),
                         q.payload.eq(Cat(*[Mux(n == j, self.i.payload, s)
                                            for j, s in enumerate(slots)])),
                         q.valid.eq(self.i.valid & ((n == k - 1) | (beat == lay.beats - 1)))]
            with m.If(take):
                m.d.sync += Array(slots)[n].eq(self.i.payload)
                m.d.sync += n.eq(Mux(q.valid, 0, n + 1))
            return
        # a wide beat leaves as ``split`` words, one a cycle
        beat, s, held = Signal(w), Signal(range(lay.split)), Signal()
        d = lay.data_bits
        words = [beat[j * d:(j + 1) * d] for j in range(lay.split)]
        m.d.comb += [self.i.ready.eq(~held), q.valid.eq(held), q.payload.eq(Array(words)[s])]
        with m.If(take):
            m.d.sync += [beat.eq(self.i.payload), held.eq(1)]
        with m.If(count(m, q.valid & q.ready, (s, lay.split))):
            m.d.sync += held.eq(0)

    # -- words to DDR ----------------------------------------------------------------------
    def _burst_len(self, m: Module, step, tag: str):
        """A burst counter: (words in this burst, address) stepping on ``step``."""
        lay = self.layout
        nb = lay.bursts_per_image
        j = Signal(range(nb), name=f"{tag}_burst")
        slot_bytes = lay.burst * lay.word_bytes
        addr = Signal(self.axi.addr_bits, name=f"{tag}_addr", init=self.base)
        end = self.base + lay.ring_bursts * slot_bytes
        count(m, step, (j, nb))
        with m.If(step):
            m.d.sync += addr.eq(Mux(addr == end - slot_bytes, self.base, addr + slot_bytes))
        length = Signal(range(lay.burst + 1), name=f"{tag}_len")
        m.d.comb += length.eq(Mux(j == nb - 1, lay.last_burst, lay.burst))
        return length, addr

    def _address(self, m: Module, ch, length, addr) -> None:
        p = ch.payload
        m.d.comb += [p.id.eq(0), p.addr.eq(addr), p.len.eq(length - 1),
                     p.size.eq(self.axi.size), p.burst.eq(1)]

    def _writes(self, m: Module, q) -> None:
        lay, bus = self.layout, self.m
        cap = lay.buffer_words
        queued = Signal(range(cap + 2))       # words in the write buffer (with its register)
        m.d.sync += queued.eq(queued + self.queued_in - (q.valid & q.ready))
        used = self.used = Signal(range(lay.ring_bursts + 1))   # slots written, not yet read
        left = Signal(range(lay.burst + 1))   # words of the current burst still to send
        aw_go = Signal()
        length, addr = self._burst_len(m, aw_go, "aw")
        self._address(m, bus.aw, length, addr)
        m.d.comb += [bus.aw.valid.eq((left == 0) & (queued >= length)
                                     & (used != lay.ring_bursts)),
                     aw_go.eq(bus.aw.valid & bus.aw.ready)]
        wgo = Signal()
        m.d.comb += [bus.w.valid.eq((left != 0) & q.valid), q.ready.eq((left != 0) & bus.w.ready),
                     bus.w.payload.data.eq(q.payload), bus.w.payload.strb.eq(-1),
                     bus.w.payload.last.eq(left == 1), wgo.eq(bus.w.valid & bus.w.ready)]
        with m.If(aw_go):
            m.d.sync += left.eq(length)
        with m.Elif(wgo):
            m.d.sync += left.eq(left - 1)
        self.aw_go = aw_go
        m.d.comb += bus.b.ready.eq(1)

    # -- DDR to words ----------------------------------------------------------------------
    def _reads(self, m: Module, q) -> None:
        lay, bus = self.layout, self.m
        cap = lay.buffer_words
        written = Signal(range(lay.ring_bursts + 1))  # bursts acknowledged, not yet asked
        room = Signal(range(cap + 2), init=cap)       # read buffer words not yet promised
        ar_go, r_last = Signal(), Signal()
        length, addr = self._burst_len(m, ar_go, "ar")
        self._address(m, bus.ar, length, addr)
        b_go = bus.b.valid & bus.b.ready
        m.d.comb += [bus.ar.valid.eq((written != 0) & (room >= length)),
                     ar_go.eq(bus.ar.valid & bus.ar.ready),
                     bus.r.ready.eq(q.ready), q.valid.eq(bus.r.valid),
                     q.payload.eq(bus.r.payload.data),
                     r_last.eq(bus.r.valid & bus.r.ready & bus.r.payload.last)]
        m.d.sync += [written.eq(written + b_go - ar_go),
                     self.used.eq(self.used + self.aw_go - r_last)]
        self.ar_go, self.ar_len, self.room = ar_go, length, room

    # -- words to beats --------------------------------------------------------------------
    def _unpacker(self, m: Module, q) -> None:
        lay, w, o = self.layout, self.layout.width, self.o
        give = Signal()
        m.d.comb += give.eq(o.valid & o.ready)
        popped = Signal()
        m.d.comb += popped.eq(q.valid & q.ready)
        m.d.sync += self.room.eq(self.room - Mux(self.ar_go, self.ar_len, 0) + popped)
        beat = Signal(range(lay.beats), name="out_beat")
        image_last = beat == lay.beats - 1
        count(m, give, (beat, lay.beats))
        if lay.split == 1:
            k = lay.pack
            u = Signal(range(k))
            m.d.comb += [o.valid.eq(q.valid),
                         o.payload.eq(Array(q.payload[j * w:(j + 1) * w] for j in range(k))[u]),
                         q.ready.eq(o.ready & ((u == k - 1) | image_last))]
            with m.If(give):
                m.d.sync += u.eq(Mux((u == k - 1) | image_last, 0, u + 1))
            return
        d, n = lay.data_bits, lay.split
        held = [Signal(d, name=f"held{j}") for j in range(n - 1)]
        s = Signal(range(n))
        m.d.comb += [o.valid.eq(q.valid & (s == n - 1)),
                     o.payload.eq(Cat(*held, q.payload)[:w]),
                     q.ready.eq(Mux(s == n - 1, o.ready, 1))]
        with m.If(popped & (s != n - 1)):
            m.d.sync += Array(held)[s].eq(q.payload)
        count(m, popped, (s, n))



def ddr_port(m: Module, top, prefix: str, fifos: list, axi: AxiParams, make=None) -> None:
    """Put ``fifos``' AXI ports on one top-level port ``prefix`` through an arbiter (the
    top's members come from ``axi.top_members(arbiter_params(len(fifos), axi), prefix)``)."""
    make = make or (lambda cls, *args, **kw: cls(*args, **kw))
    arb = make(AxiArbiter, len(fifos), axi)
    m.submodules[f"{prefix}_arbiter"] = arb
    for k, f in enumerate(fifos):
        wiring.connect(m, f.m, getattr(arb, f"s{k}"))
    connect_top(m, top, prefix, arb.m)


class DdrFifoPort(wiring.Component):
    """One ``DdrFifo`` on a top-level AXI4 port ``m_axi`` (through an arbiter of one, as in
    the accelerator): the unit the resource model is calibrated on."""

    def __init__(self, layout: DdrLayout, base: int, axi: AxiParams):
        self.layout, self.base, self.axi = layout, base, axi
        super().__init__({"i": In(stream.Signature(layout.width)),
                          "o": Out(stream.Signature(layout.width)),
                          **top_members(arbiter_params(1, axi), "m_axi")})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = f = DdrFifo(self.layout, self.base, self.axi)
        wiring.connect(m, wiring.flipped(self.i), f.i)
        wiring.connect(m, f.o, wiring.flipped(self.o))
        ddr_port(m, self, "m_axi", [f], self.axi)
        return m
