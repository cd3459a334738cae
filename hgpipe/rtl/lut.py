"""The power-of-two-indexed table unit ``y = T[clamp((x + b) >> s, 0, bound)]`` on a stream.

Every lane has its own ROM read port. With several table groups (Q/K/V or per-channel
scales) a channel counter tells each lane its group; with several segments, comparators
against the splits pick the segment, whose offset and shift then apply. Shifts and offsets
that are one constant for the whole table cost nothing.
"""

from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.intrange import IntRange
from ..graph.memories import lookup
from ..graph.pipeline import Pipelining, default
from ..graph.table import PotTable
from .elementwise import clamp
from .mem import Rom
from .stream import delay, lane, pack, shape_of, stream_of


def table_index(m: Module, x, table: PotTable, group, in_range: IntRange, name: str,
                register=None):
    """ROM address of ``x``: (group * segments + segment) * entries + index. Without
    ``register`` it is combinational; with it (``register(value, name)`` returns the value
    a register stage later) the sum ``x + offset`` and the segment's shift and base are
    registered before the shift and clamp (one more cycle, half the depth)."""
    t = table
    n = t.bound + 1
    sum_range = t.index_sum_range(in_range)
    if t.segments == 1:
        seg = Const(0, 1)
    else:
        splits = [Array(Const(int(v)) for v in t.splits[:, k]) for k in range(t.segments - 1)]
        seg = sum((x >= (splits[k][group] if t.groups > 1 else int(t.splits[0, k])))
                  .as_unsigned() for k in range(t.segments - 1))
    # the shift is one of the table's few distinct shifts: the register holds which one
    # (not the amount, which would make the shift a barrel shifter) and a multiplexer of
    # constant shifts applies it
    shifts = sorted(set(int(v) for v in t.shift.ravel()))
    if t.groups == 1 and t.segments == 1:
        offset, which = int(t.offset[0, 0]), 0
    else:
        flat = [(g, k) for g in range(t.groups) for k in range(t.segments)]
        sel = group * t.segments + seg if t.groups > 1 else seg
        offset = Array(Const(int(t.offset[g, k]), shape_of(IntRange(int(t.offset.min()),
                                                                     int(t.offset.max()))))
                       for g, k in flat)[sel]
        which = Array(Const(shifts.index(int(t.shift[g, k])), range(len(shifts)))
                      for g, k in flat)[sel] if len(shifts) > 1 else 0
    s = Signal(shape_of(sum_range), name=f"{name}_sum")
    m.d.comb += s.eq(x + offset)
    base = (group * t.segments + seg) if t.groups > 1 else seg
    if register is not None:
        s = register(s, f"{name}_sum_r")
        if not isinstance(which, int):
            which = register(which, f"{name}_shift_r")
        if t.groups > 1 or t.segments > 1:
            base = register(base, f"{name}_base_r")
    shifted = Array(s >> k for k in shifts)[which] if len(shifts) > 1 else s >> shifts[0]
    idx = Signal(range(n), name=f"{name}_idx")
    lo_shift = shifts[0]
    m.d.comb += idx.eq(clamp(shifted, IntRange(0, t.bound),
                             IntRange(sum_range.lo >> lo_shift if sum_range.lo < 0 else 0,
                                      sum_range.hi >> lo_shift)))
    return base * n + idx if (t.groups > 1 or t.segments > 1) else idx


class LutStage(wiring.Component):
    """Element-wise table lookup on a stream of ``tp x lanes`` elements per beat.

    Protocol: one beat in, one beat out, in order; a beat is accepted whenever the output
    register is empty or being emptied, so the unit sustains one beat per cycle. The table
    index takes two register stages (the add, then the shift and clamp: the input may be a
    FIFO's memory output and wide), then the ROM is read: ``2 + pipe.read_latency`` cycles
    of latency (``contract.lag``).
    """

    def __init__(self, table: PotTable, in_range: IntRange, out_range: IntRange, tp: int,
                 lanes: int, channels: int, *, styles: dict[str, str] | None = None,
                 pipe: Pipelining | None = None):
        self.table, self.in_range, self.out_range = table, in_range, out_range
        self.styles = styles or {}
        self.pipe = pipe or default()
        self.tp, self.lanes, self.channels = tp, lanes, channels
        if table.groups > 1 and channels % lanes:
            raise ValueError("LutStage: lanes must divide channels")
        super().__init__({"i": In(stream_of(tp * lanes, in_range)),
                          "o": Out(stream_of(tp * lanes, out_range))})
        self.busy = Signal()  # a beat is taken this cycle

    def elaborate(self, platform):
        m = Module()
        t, lanes = self.table, self.lanes
        lat = self.pipe.read_latency
        rom = Rom.declared(lookup(t, self.out_range, self.tp * lanes, self.pipe),
                           style=self.styles.get("table"))
        m.submodules.rom = rom
        advance = ~self.o.valid | self.o.ready
        m.d.comb += [self.i.ready.eq(advance), self.busy.eq(advance & self.i.valid)]
        chunk = Signal(range(max(self.channels // lanes, 1)))
        if t.groups > 1:
            with m.If(self.i.valid & advance):
                m.d.sync += chunk.eq(Mux(chunk == self.channels // lanes - 1, 0, chunk + 1))
        outs = []
        for e in range(self.tp * lanes):
            port = rom.read_port()
            x = lane(self.i.payload, e, self.in_range)
            if t.groups > 1:
                # the group of this lane's channel, per channel chunk: a small constant mux
                group = Signal(range(t.groups), name=f"group{e}")
                m.d.comb += group.eq(Array(Const((c * lanes + e % lanes) // t.group_size,
                                                 range(t.groups))
                                           for c in range(self.channels // lanes))[chunk])
            else:
                group = 0
            # (datapath registers, without reset: ``stream.payload_register``)
            idx = table_index(m, x, t, group, self.in_range, f"l{e}",
                              lambda v, n: delay(m, advance, v, 1, n, data=True))
            m.d.comb += [port.addr.eq(delay(m, advance, idx, 1, f"idx{e}", data=True)),
                         port.en.eq(advance)]
            outs.append(port.data)
        pack(m, self.o.payload, outs, self.out_range)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(delay(m, advance, self.i.valid, lat + 1, "v"))
        return m
