"""Row passes: the shared mechanism of LayerNorm and softmax.

A row of ``tp`` tokens x ``row_len`` elements arrives ``lanes`` elements per token a beat.
While it is written into a bank of the row memory, a per-token statistic accumulates
(``accumulate``). After its last beat a fixed-latency ``finish`` step turns the statistic
into what the replay needs (an rsqrt, a reciprocal...). The replay then reads the row back,
one beat a cycle, and ``emit`` computes each output element from the stored element, the
row's finished statistic and per-chunk constants. Rows in flight occupy different banks, so
writing row k+1 overlaps replaying row k: a row costs one pass in steady state.

A row may end in padding (elements from ``valid_len`` on, as softmax's padded keys): they
are stored and replayed like the others, but enter the statistics as the subclass's
``pad_term`` and leave as 0.

Protocol on both streams: valid/ready; rows in order; the replay stalls (and with it the
output) only on output backpressure; the writer stalls only when every bank is busy.

Timing: the input beat and its terms are registered before the statistics accumulate,
``finish`` runs free (no stall) over ``finish_latency`` register stages, and ``emit``
over ``emit_latency`` stages that advance with the replay; the row memory and the chunk
constants are read with the pipeline's read latency. The latencies come from
``hgpipe.graph.pipeline.Pipelining``, which the stage contract reads too.
"""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.intrange import IntRange
from ..graph.memories import MemoryDecl, row_banks
from ..graph.pipeline import Pipelining, default
from .mem import Ram
from .stream import count, delay, lane, pack, payload_register, shape_of, stream_of


class RowPass(wiring.Component):
    """Subclasses set ``stat_ranges`` (accumulated per token), ``held_ranges`` (kept per
    token for the replay), the names of their ``finish_step`` and ``emit_step`` in
    ``Pipelining`` (which give the hooks' latencies), ``memories`` (their stage contract's
    declarations, ``row_memory`` naming the row memory's), and implement the three
    hooks."""

    stat_ranges: list[IntRange] = []
    held_ranges: list[IntRange] = []
    finish_step: str = ""
    emit_step: str = ""
    row_memory: str = "row"
    memories: dict[str, MemoryDecl]     # the subclass sets it before this __init__

    def __init__(self, in_range: IntRange, out_range: IntRange, tp: int, lanes: int,
                 row_len: int, row_style: str | None = None, pipe: Pipelining | None = None,
                 valid_len: int | None = None):
        self.pipe = pipe or default()
        self.finish_latency = self.pipe.finish_latency(self.finish_step)
        self.emit_latency = self.pipe.emit_latency(self.emit_step)
        if row_len % lanes:
            raise ValueError(f"{type(self).__name__}: {lanes} lanes do not divide rows of "
                             f"{row_len}")
        self.in_range, self.out_range = in_range, out_range
        self.tp, self.lanes, self.row_len = tp, lanes, row_len
        self.valid_len = row_len if valid_len is None else valid_len
        # lane p of chunk j is padding from chunk ceil((valid_len - p) / lanes) on
        self.pad_from = [-(-(self.valid_len - p) // lanes) for p in range(lanes)]
        self.row_style = row_style   # the plan's placement of the row memory
        self.nb = row_len // lanes
        self.banks = row_banks(self.memories[self.row_memory], self.nb)
        super().__init__({"i": In(stream_of(tp * lanes, in_range)),
                          "o": Out(stream_of(tp * lanes, out_range))})
        self.busy = Signal()  # the replay issues a beat this cycle

    @property
    def buffer_bits(self) -> int:
        """Row memory: ``banks`` rows, where strictly sequential passes would need one."""
        return self.banks * self.tp * self.row_len * self.in_range.bits

    # Hooks --------------------------------------------------------------------------------
    def prepare(self, m: Module, xs: list) -> list:
        """Per-element terms of the statistics (registered before ``accumulate``): the
        elements themselves unless a subclass needs more (LayerNorm's squares)."""
        return xs

    def pad_term(self) -> int:
        """The element a padding element stands for in the statistics (neutral for them)."""
        raise NotImplementedError(f"{type(self).__name__}: rows without padding only")

    def padded_lanes(self) -> list[int]:
        """The lanes that carry padding in some chunk."""
        return [p for p in range(self.lanes) if self.pad_from[p] < self.nb]

    def accumulate(self, m: Module, terms: list, stats: list, first) -> list:
        """New statistics of one token from its ``prepare``d terms of this beat."""
        raise NotImplementedError

    def finish(self, m: Module, stats: list, t: int, valid) -> list:
        """What the replay needs, ``finish_latency`` cycles after ``valid`` (registers
        here advance every cycle)."""
        raise NotImplementedError

    def chunk_constants(self, m: Module, chunk, en) -> object:
        """Per-chunk constants for ``emit``, read at issue with the pipeline's read
        latency, or None."""
        return None

    def emit(self, m: Module, x, held: list, constants, t: int, p: int, en):
        """Output element ``p`` of token ``t`` from its stored element, ``emit_latency``
        register stages (advancing with ``en``) after ``x``, ``held`` and ``constants``."""
        raise NotImplementedError

    # Mechanism ------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        tp, lanes, nb, nbank, xr = self.tp, self.lanes, self.nb, self.banks, self.in_range
        lat = self.pipe.read_latency
        m.submodules.row = row = Ram.declared(self.memories[self.row_memory], self.row_style)
        wr, rd = row.write_port(), row.read_port()

        # Writer: store the row, accumulate its statistics.
        filled = Signal(nbank)
        bw, jw = Signal(range(nbank)), Signal(range(nb))
        aw = Signal(range(nbank * nb))      # bw * nb + jw, counted (no constant multiply)
        take = Signal()
        m.d.comb += [self.i.ready.eq(~filled.bit_select(bw, 1)),
                     take.eq(self.i.valid & self.i.ready),
                     wr.addr.eq(aw), wr.data.eq(self.i.payload), wr.en.eq(take)]
        count(m, take, (aw, nbank * nb))
        last_w = jw == nb - 1
        set_filled = Signal(nbank)
        done = Signal()                        # a row's statistics are final this cycle
        done_bank = Signal(range(nbank))
        # the statistics accumulate from the registered beat's registered terms
        # (free-running stages: the beat, then ``prepare``)
        n_in = self.pipe.ROW_INPUT
        take_a = delay(m, None, take, n_in, "take_a")
        first_a = delay(m, None, jw == 0, n_in, "first_a")
        last_a = delay(m, None, take & last_w, n_in, "last_a")
        beat_a = delay(m, None, self.i.payload, n_in - 1, "beat_a", data=True)
        pad_a = {p: delay(m, None, jw >= self.pad_from[p], n_in - 1, f"pad_a{p}")
                 for p in self.padded_lanes()}
        bank_a = delay(m, None, bw, n_in, "bank_a")
        m.d.sync += done.eq(last_a)
        finals = []
        for t in range(tp):
            # (the datapath's registers have no reset: ``stream.payload_register``)
            stats = [Signal(shape_of(r), name=f"stat{k}_{t}", reset_less=True)
                     for k, r in enumerate(self.stat_ranges)]
            final = [Signal.like(s, name=f"final{k}_{t}", reset_less=True)
                     for k, s in enumerate(stats)]
            xs = [Mux(pad_a[p], self.pad_term(), lane(beat_a, t * lanes + p, xr))
                  if p in pad_a else lane(beat_a, t * lanes + p, xr) for p in range(lanes)]
            terms = [delay(m, None, v, 1, f"term{k}_{t}", data=True)
                     for k, v in enumerate(self.prepare(m, xs))]
            new = self.accumulate(m, terms, stats, first_a)
            with m.If(take_a):
                m.d.sync += [s.eq(v) for s, v in zip(stats, new)]
                with m.If(last_a):
                    m.d.sync += [f.eq(v) for f, v in zip(final, new)]
            finals.append(final)
        with m.If(last_a):
            m.d.sync += done_bank.eq(bank_a)
        with m.If(take):
            with m.If(last_w):
                m.d.sync += [jw.eq(0), bw.eq(Mux(bw == nbank - 1, 0, bw + 1))]
                m.d.comb += set_filled.eq(1 << bw)
            with m.Else():
                m.d.sync += jw.eq(jw + 1)

        # Finish: fixed latency, then the bank's held values are set and it is ready.
        fin_v, fin_bank = done, done_bank
        outs = [self.finish(m, finals[t], t, done) for t in range(tp)]
        for _ in range(self.finish_latency):
            nv, nbk = Signal(), Signal.like(done_bank)
            m.d.sync += [nv.eq(fin_v), nbk.eq(fin_bank)]
            fin_v, fin_bank = nv, nbk
        ready, set_ready = Signal(nbank), Signal(nbank)
        held = [[Array(Signal(shape_of(r), name=f"held{k}_{t}_{b}", reset_less=True)
                       for b in range(nbank))
                 for k, r in enumerate(self.held_ranges)] for t in range(tp)]
        with m.If(fin_v):
            m.d.comb += set_ready.eq(1 << fin_bank)
            for t in range(tp):
                m.d.sync += [h[fin_bank].eq(v) for h, v in zip(held[t], outs[t])]

        # Replay: one beat a cycle over a ready bank; the pipeline stalls on backpressure.
        en = ~self.o.valid | self.o.ready
        br, jr = Signal(range(nbank)), Signal(range(nb))
        ar = Signal(range(nbank * nb))      # br * nb + jr, counted
        issue, clear = Signal(), Signal(nbank)
        m.d.comb += [issue.eq(ready.bit_select(br, 1) & en), self.busy.eq(issue),
                     rd.addr.eq(ar), rd.en.eq(en)]
        count(m, issue, (ar, nbank * nb))
        consts = self.chunk_constants(m, jr, en)
        with m.If(issue):
            with m.If(jr == nb - 1):
                m.d.sync += [jr.eq(0), br.eq(Mux(br == nbank - 1, 0, br + 1))]
                m.d.comb += clear.eq(1 << br)
            with m.Else():
                m.d.sync += jr.eq(jr + 1)
        m.d.sync += [filled.eq((filled | set_filled) & ~clear),
                     ready.eq((ready | set_ready) & ~clear)]

        # The row's held values travel with its beats: once the last beat has issued, the
        # bank is free and may be refilled and re-finished while that beat is stalled.
        # (staged as many cycles as the row memory's read takes)
        valid = delay(m, en, issue, lat, "valid")
        staged = [[delay(m, en, h[br], lat, f"staged{k}_{t}", data=True)
                   for k, h in enumerate(held[t])] for t in range(tp)]
        results = [self.emit(m, lane(rd.data, t * lanes + p, xr), staged[t], consts, t, p, en)
                   for t in range(tp) for p in range(lanes)]
        # padding leaves as 0: its flag travels with the element (read, then emit)
        pad_r = {p: delay(m, en, jr >= self.pad_from[p], lat + self.emit_latency, f"pad_r{p}")
                 for p in self.padded_lanes()}
        results = [Mux(pad_r[i % lanes], 0, r) if i % lanes in pad_r else r
                   for i, r in enumerate(results)]
        for _ in range(self.emit_latency):
            nv = Signal()
            with m.If(en):
                m.d.sync += nv.eq(valid)
            valid = nv
        out = payload_register(m, self.o)
        with m.If(en):
            m.d.sync += self.o.valid.eq(valid)
            with m.If(valid):
                pack(m, out, results, self.out_range, domain="sync")
        return m
