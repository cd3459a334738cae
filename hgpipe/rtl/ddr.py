"""Streams kept in off-chip memory, behind an AXI4 manager port: a FIFO whose storage is a
ring in DDR, and a read-only stream of preloaded words (weights read once an image).

Layout, traffic and capacity are the contract's (``hgpipe.graph.ddr.DdrLayout``).

``DdrFifo``: beats are packed into words (``pack`` a word, or ``split`` words a beat; an
image's last word may be short) and queued in an on-chip write buffer; once a whole burst
is queued (an image's last burst is shorter) and the ring has a free slot, its address
goes out on AW and its words on W. Each write response makes a burst readable.

Both: a readable burst's address goes out on AR as soon as the on-chip read buffer has
room for it, the R words queue there (the FIFO's slot is free again at RLAST), and the
read buffer's words are unpacked into beats. ``DdrWeights`` reads its image's bursts over
and over, one pass an image.

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


class _DdrStream(wiring.Component):
    """What both share: the read side (AR, R, read buffer, unpacker) of a ring of
    ``layout.ring_bursts`` slots at byte address ``base``."""

    def __init__(self, layout: DdrLayout, base: int, axi: AxiParams, members: dict,
                 style: str | None = None):
        name = type(self).__name__
        if axi.data_bits != layout.data_bits:
            raise ValueError(f"{name}: AXI data {axi.data_bits} bits, layout "
                             f"{layout.data_bits}: expected equal")
        step = layout.burst * layout.word_bytes
        if base % step or base + layout.region_bytes > 1 << axi.addr_bits:
            raise ValueError(f"{name}: base=0x{base:x}: expected a multiple of {step} "
                             f"with the {layout.region_bytes}-byte region inside "
                             f"{axi.addr_bits}-bit addresses")
        self.layout, self.base, self.axi, self.style = layout, base, axi, style
        super().__init__({**members, "o": Out(stream.Signature(layout.width)),
                          "m": Out(AxiSignature(axi))})

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

    def _reads(self, m: Module, readable) -> Signal:
        """AR for the next burst while ``readable`` and the read buffer has room for it;
        R into the buffer, unpacked onto ``o``. Returns RLAST's handshake."""
        lay, bus = self.layout, self.m
        cap = lay.buffer_words
        m.submodules.rbuf = q = Fifo(lay.data_bits, cap, style=self.style)
        room = Signal(range(cap + 2), init=cap)       # read buffer words not yet promised
        ar_go, r_last = Signal(), Signal()
        length, addr = self._burst_len(m, ar_go, "ar")
        self._address(m, bus.ar, length, addr)
        m.d.comb += [bus.ar.valid.eq(readable & (room >= length)),
                     ar_go.eq(bus.ar.valid & bus.ar.ready),
                     q.i.valid.eq(bus.r.valid), q.i.payload.eq(bus.r.payload.data),
                     bus.r.ready.eq(q.i.ready),
                     r_last.eq(bus.r.valid & bus.r.ready & bus.r.payload.last)]
        m.d.sync += room.eq(room - Mux(ar_go, length, 0) + (q.o.valid & q.o.ready))
        self._unpacker(m, q.o)
        self.ar_go = ar_go
        return r_last

    def _unpacker(self, m: Module, q) -> None:
        lay, w, o = self.layout, self.layout.width, self.o
        give = Signal()
        m.d.comb += give.eq(o.valid & o.ready)
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
        popped = q.valid & q.ready
        m.d.comb += [o.valid.eq(q.valid & (s == n - 1)),
                     o.payload.eq(Cat(*held, q.payload)[:w]),
                     q.ready.eq(Mux(s == n - 1, o.ready, 1))]
        with m.If(popped & (s != n - 1)):
            m.d.sync += Array(held)[s].eq(q.payload)
        count(m, popped, (s, n))


class DdrFifo(_DdrStream):
    """Beats of ``layout.width`` bits in a ring of ``layout.region_bytes`` at byte address
    ``base`` (a multiple of the burst's bytes)."""

    def __init__(self, layout: DdrLayout, base: int, axi: AxiParams, *,
                 style: str | None = None):
        if layout.readonly:
            raise ValueError("DdrFifo: a read-only layout is a DdrWeights")
        super().__init__(layout, base, axi, {"i": In(stream.Signature(layout.width))}, style)

    def elaborate(self, platform):
        m = Module()
        lay, bus = self.layout, self.m
        m.submodules.wbuf = wbuf = Fifo(lay.data_bits, lay.buffer_words, style=self.style)
        self._packer(m, wbuf.i)
        aw_go = self._writes(m, wbuf)
        written = Signal(range(lay.ring_bursts + 1))  # bursts acknowledged, not yet asked
        used = Signal(range(lay.ring_bursts + 1))     # slots written, not yet read
        m.d.comb += bus.b.ready.eq(1)
        r_last = self._reads(m, written != 0)
        m.d.sync += [written.eq(written + (bus.b.valid & bus.b.ready) - self.ar_go),
                     used.eq(used + aw_go - r_last)]
        m.d.comb += self.ring_free.eq(used != lay.ring_bursts)
        return m

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
        held, s, full = Signal(w), Signal(range(lay.split)), Signal()
        d = lay.data_bits
        words = [held[j * d:(j + 1) * d] for j in range(lay.split)]
        m.d.comb += [self.i.ready.eq(~full), q.valid.eq(full), q.payload.eq(Array(words)[s])]
        with m.If(take):
            m.d.sync += [held.eq(self.i.payload), full.eq(1)]
        with m.If(count(m, q.valid & q.ready, (s, lay.split))):
            m.d.sync += full.eq(0)

    def _writes(self, m: Module, wbuf) -> Signal:
        """AW once a whole burst is queued and the ring has a slot, then its words on W.
        Returns AW's handshake."""
        lay, bus, q = self.layout, self.m, wbuf.o
        cap = lay.buffer_words
        queued = Signal(range(cap + 2))       # words in the write buffer (with its register)
        m.d.sync += queued.eq(queued + (wbuf.i.valid & wbuf.i.ready) - (q.valid & q.ready))
        self.ring_free = Signal()
        left = Signal(range(lay.burst + 1))   # words of the current burst still to send
        aw_go, w_go = Signal(), Signal()
        length, addr = self._burst_len(m, aw_go, "aw")
        self._address(m, bus.aw, length, addr)
        m.d.comb += [bus.aw.valid.eq((left == 0) & (queued >= length) & self.ring_free),
                     aw_go.eq(bus.aw.valid & bus.aw.ready),
                     bus.w.valid.eq((left != 0) & q.valid), q.ready.eq((left != 0) & bus.w.ready),
                     bus.w.payload.data.eq(q.payload), bus.w.payload.strb.eq(-1),
                     bus.w.payload.last.eq(left == 1), w_go.eq(bus.w.valid & bus.w.ready)]
        with m.If(aw_go):
            m.d.sync += left.eq(length)
        with m.Elif(w_go):
            m.d.sync += left.eq(left - 1)
        return aw_go


class DdrWeights(_DdrStream):
    """A preloaded image of ``layout.beats`` words (``layout.image``) read as a stream of
    ``layout.width``-bit beats, one pass after another."""

    def __init__(self, layout: DdrLayout, base: int, axi: AxiParams, *,
                 style: str | None = None):
        if not layout.readonly:
            raise ValueError("DdrWeights: expected a read-only layout")
        super().__init__(layout, base, axi, {}, style)

    def elaborate(self, platform):
        m = Module()
        bus = self.m
        m.d.comb += [bus.aw.valid.eq(0), bus.w.valid.eq(0), bus.b.ready.eq(1)]
        self._reads(m, 1)
        return m


def ddr_port(m: Module, top, prefix: str, users: list, axi: AxiParams, make=None) -> None:
    """Put ``users``' AXI ports on one top-level port ``prefix`` through an arbiter (the
    top's members come from ``axi.top_members(arbiter_params(len(users), axi), prefix)``)."""
    make = make or (lambda cls, *args, **kw: cls(*args, **kw))
    arb = make(AxiArbiter, len(users), axi)
    m.submodules[f"{prefix}_arbiter"] = arb
    for k, f in enumerate(users):
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
