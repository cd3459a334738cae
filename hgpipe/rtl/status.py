"""The status registers: every stage's busy counter behind an AXI4-Lite subordinate port,
so that a testbench or a host reads them through the top level's ports alone.

Register map (32-bit words at byte addresses; ``Regs`` holds the offsets)::

    0x00  ID         0x48475031 ("HGP1")
    0x04  COUNTERS   the number of busy counters, n
    0x08  CONTROL    write 1 to bit 0: take a snapshot now
    0x0C  SNAPSHOTS  snapshots taken (live)
    0x10  CYCLE      cycles since reset, at the snapshot
    0x14  IMAGES     images whose last logits beat has left, at the snapshot
    0x20 + 4k        BUSY[k]: cycles stage k was busy since reset, at the snapshot

A snapshot copies every live counter to its shadow in one cycle: at each image's last
output beat, and on a CONTROL write. It holds the counts through that cycle (CYCLE counts
that cycle too), and is readable from the next. The registers of one snapshot are therefore
consistent however long the reads take; a reader that reads SNAPSHOTS before and after its
other reads knows whether a newer snapshot came in between. Counters are 32 bits and wrap
(differences are taken modulo 2^32).

The protocol is AXI4-Lite's: a read address is taken when no read response waits
(``arready = ~rvalid``) and answered the next cycle; a write is taken when both its
address and data are offered and no write response waits, answered the next cycle.
Reads of unmapped words give 0 with SLVERR; writes other than to CONTROL give SLVERR.
"""

from __future__ import annotations

from amaranth import Array, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..plan.status_map import STATUS_ID, Regs, addr_bits

__all__ = ["STATUS_ID", "Regs", "StatusRegs", "addr_bits", "axil_members"]

OKAY, SLVERR = 0b00, 0b10


def axil_members(abits: int) -> dict:
    """The subordinate's flat AXI4-Lite ports (``s_axil_*``), as the top level has them."""
    return {"s_axil_awaddr": In(abits), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
            "s_axil_wdata": In(32), "s_axil_wstrb": In(4), "s_axil_wvalid": In(1),
            "s_axil_wready": Out(1),
            "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
            "s_axil_araddr": In(abits), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
            "s_axil_rdata": Out(32), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1),
            "s_axil_rready": In(1)}


class StatusRegs(wiring.Component):
    """``counters`` busy counters (``stage_busy[k]`` high: stage k busy this cycle) and the
    image count (``image_done``: an image's last output beat left) behind ``s_axil_*``."""

    def __init__(self, counters: int):
        self.counters = counters
        self.abits = addr_bits(counters)
        super().__init__({"stage_busy": In(max(counters, 1)), "image_done": In(1),
                          **axil_members(self.abits)})

    def elaborate(self, platform):
        m = Module()
        n = self.counters
        live = [Signal(32, name=f"busy{k}") for k in range(n)]
        shadow = [Signal(32, name=f"busy{k}_snap") for k in range(n)]
        cycle, images, snaps = Signal(32), Signal(32), Signal(32)
        cycle_s, images_s = Signal(32), Signal(32)
        m.d.sync += [cycle.eq(cycle + 1), images.eq(images + self.image_done)]
        for k in range(n):
            m.d.sync += live[k].eq(live[k] + self.stage_busy[k])

        # the write channel: CONTROL only
        take_w = Signal()
        control = (self.s_axil_awaddr >> 2) == Regs.CONTROL // 4
        m.d.comb += [take_w.eq(self.s_axil_awvalid & self.s_axil_wvalid & ~self.s_axil_bvalid),
                     self.s_axil_awready.eq(take_w), self.s_axil_wready.eq(take_w)]
        with m.If(take_w):
            m.d.sync += [self.s_axil_bvalid.eq(1),
                         self.s_axil_bresp.eq(OKAY)]
            with m.If(~control):
                m.d.sync += self.s_axil_bresp.eq(SLVERR)
        with m.Elif(self.s_axil_bready):
            m.d.sync += self.s_axil_bvalid.eq(0)
        snap = Signal()
        m.d.comb += snap.eq(self.image_done | (take_w & control & self.s_axil_wstrb[0]
                                               & self.s_axil_wdata[0]))
        with m.If(snap):
            # this cycle counts in its own snapshot (its busy bits, its image, itself)
            m.d.sync += [snaps.eq(snaps + 1), cycle_s.eq(cycle + 1),
                         images_s.eq(images + self.image_done)]
            m.d.sync += [s.eq(v + self.stage_busy[k])
                         for k, (s, v) in enumerate(zip(shadow, live))]

        # the read channel: a word a read, answered the cycle after its address
        words = [Const(STATUS_ID, 32), Const(n, 32), Const(0, 32), snaps, cycle_s, images_s,
                 Const(0, 32), Const(0, 32), *shadow]
        index = Signal(self.abits - 2)
        m.d.comb += index.eq(self.s_axil_araddr >> 2)
        m.d.comb += self.s_axil_arready.eq(~self.s_axil_rvalid)
        with m.If(self.s_axil_arvalid & self.s_axil_arready):
            m.d.sync += self.s_axil_rvalid.eq(1)
            with m.If(index < len(words)):
                m.d.sync += [self.s_axil_rdata.eq(Array(words)[index]),
                             self.s_axil_rresp.eq(OKAY)]
            with m.Else():
                m.d.sync += [self.s_axil_rdata.eq(0), self.s_axil_rresp.eq(SLVERR)]
        with m.Elif(self.s_axil_rready):
            m.d.sync += self.s_axil_rvalid.eq(0)
        return m
