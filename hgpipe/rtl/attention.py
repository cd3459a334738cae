"""The attention core, one unit per head: QK^T and AV with coarse whole-tensor buffers.

Both units take in the requantized QKV tensor as a stream (the same beats broadcast to
every unit) and keep their own head's share of K or V in a buffer of two images (or as
many as the plan says), so the next image is written while this one is computed:

* ``QkHead`` stores K, and Q in a wait ring (rows must wait until all of K is in; each is
  read for every key chunk, then freed: one image and two groups, not two images), then
  for each query group, key chunk and dim chunk multiplies ``tp x cop x cip`` pairs.
* ``AvHead`` stores V (a word's slots are keys of ``cop`` dims, transposed by wiring),
  takes softmax rows into a double-buffered row memory, and for each query group, dim
  chunk and key chunk multiplies ``tp x cop x cip`` pairs.

A word of K holds a key chunk (cop keys), a word of V too (cip keys), so one read gives
a chunk of keys; a beat's ``tp`` keys are gathered into words (``QkvWriter.keyed``; the
contract asks for at least ``tp`` keys a word). The heads' outputs are concatenated by
``plumbing.Merge``.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..graph.contract import Folding, stage_memories
from ..graph.intrange import IntRange
from ..graph.memories import MemoryDecl
from ..graph.pipeline import Pipelining, default
from ..graph.stages import AttentionScores, AttentionValue
from .mem import Ram
from .stream import count, delay, mac, next_bank, stream_of


class QkvWriter:
    """Walks the QKV stream (``tp`` tokens x ``lanes`` channels a beat, channels ordered
    part (Q, K, V), head, chunk) and writes one head's part into image-banked memories.

    Protocol: the stream is accepted while the image bank being written is free; the bank
    is ``full`` after the image's last beat and free again when the consumer ``clear``s it.
    """

    def __init__(self, m: Module, s, tokens: int, tp: int, lanes: int, heads: int,
                 head_dim: int, x: IntRange, name: str, banks: int = 2,
                 styles: dict[str, str] | None = None):
        self.m, self.s, self.tp, self.lanes, self.x = m, s, tp, lanes, x
        self.styles = styles or {}
        self.banks = banks
        self.groups, self.chunks = tokens // tp, head_dim // lanes
        self.tokens, self.name = tokens, name
        self.full = Signal(banks, name=f"{name}_full")
        self.clear = Signal(banks, name=f"{name}_clear")
        self.wb = Signal(range(banks), name=f"{name}_wb")
        self.part, self.head = Signal(range(3)), Signal(range(heads))
        self.chunk, self.group = Signal(range(self.chunks)), Signal(range(self.groups))
        self.take = Signal(name=f"{name}_take")
        self.ring_full = Signal(name=f"{name}_ring_full")   # the next beat's ring is full
        m.d.comb += [s.ready.eq(~self.full.bit_select(self.wb, 1) & ~self.ring_full),
                     self.take.eq(s.valid & s.ready)]
        self.group_step = Signal(name=f"{name}_group_step")
        m.d.comb += self.group_step.eq(self.take & (self.part == 2) & (self.head == heads - 1)
                                       & (self.chunk == self.chunks - 1))
        self.image_done = count(m, self.take, (self.group, self.groups), (self.part, 3),
                                (self.head, heads), (self.chunk, self.chunks))
        set_full = Signal(banks)
        with m.If(self.image_done):
            m.d.sync += self.wb.eq(next_bank(self.wb, banks))
            m.d.comb += set_full.eq(1 << self.wb)
        m.d.sync += self.full.eq((self.full | set_full) & ~self.clear)

    def mine(self, part: int, head: int):
        return self.take & (self.part == part) & (self.head == head)

    def ring(self, part: int, head: int, decl: MemoryDecl, free, style: str | None = None
             ) -> tuple[Ram, Signal]:
        """One word per beat in a ring of token groups (``decl``, the contract's), in
        arrival order; the reader frees a group (its ``chunks`` words) with ``free``, and
        the stream waits while the ring is full. Returns the memory and the ring position
        of the oldest group."""
        m, n = self.m, self.chunks
        words = decl.words
        mem = Ram.declared(decl, style)
        m.submodules[f"{self.name}_ring"] = mem
        wp = mem.write_port()
        wptr, oldest = Signal(range(words)), Signal(range(words), name=f"{self.name}_oldest")
        level = Signal(range(words + 1), name=f"{self.name}_level")
        mine = self.mine(part, head)
        m.d.comb += [wp.addr.eq(wptr), wp.data.eq(self.s.payload), wp.en.eq(mine),
                     self.ring_full.eq((level == words) & (self.part == part)
                                       & (self.head == head))]
        m.d.sync += level.eq(level + mine - Mux(free, n, 0))
        with m.If(mine):
            m.d.sync += wptr.eq(Mux(wptr == words - 1, 0, wptr + 1))
        with m.If(free):
            m.d.sync += oldest.eq(Mux(oldest == words - n, 0, oldest + n))
        return mem, oldest

    def keyed(self, part: int, head: int, decls: dict[str, MemoryDecl], name: str
              ) -> tuple[Ram, int]:
        """One head's K or V (``decls[name]``, the contract's): key ``k``'s ``lanes``
        elements in slot ``k mod n`` of the word at ``(image, k // n, chunk)``, ``n`` keys
        a word; returns the memory and its words per image.

        A beat brings ``tp <= n`` keys of one chunk. Where they fill only part of a word,
        its earlier slots wait in the gather memory (``decls[name + "_gather"]``, a word a
        chunk, read as it is addressed), and the word is written whole, once, by the beat
        with its last key; that beat's keys past the word start the next one. One memory
        a head, not one a slot: its words pack into block RAM as one key's could not."""
        m, tp, bits = self.m, self.tp, self.lanes * self.x.bits
        decl = decls[name]
        n = decl.width // bits
        rows = self.tokens // n
        depth = rows * self.chunks
        mem = Ram.declared(decl, self.styles.get(name))
        m.submodules[f"{self.name}_{name}"] = mem
        wp = mem.write_port()
        mine = self.mine(part, head)
        # the group's first key, group * tp = row0 * n + slot0 (tp <= n: one wrap at most)
        slot0, row0 = Signal(range(n), name=f"{self.name}_slot0"), Signal(range(rows + 1))
        with m.If(self.image_done):
            m.d.sync += [slot0.eq(0), row0.eq(0)]
        with m.Elif(self.group_step):
            wraps = slot0 + tp >= n
            m.d.sync += [slot0.eq(Mux(wraps, slot0 + tp - n, slot0 + tp)),
                         row0.eq(row0 + wraps)]
        m.d.comb += wp.addr.eq(self.wb * depth + row0 * self.chunks + self.chunk)
        if n == tp:     # every beat is a whole word
            m.d.comb += [wp.data.eq(self.s.payload), wp.en.eq(mine)]
            return mem, depth
        keys = Array(self.s.payload[t * bits:(t + 1) * bits] for t in range(tp))
        gather = Ram.declared(decls[f"{name}_gather"], self.styles.get(f"{name}_gather"))
        m.submodules[f"{self.name}_{name}_gather"] = gather
        gw, gr = gather.write_port(), gather.read_port()
        old = [gr.data[s * bits:(s + 1) * bits] for s in range(n - 1)]
        merged, word = [], []
        for s in range(n):
            t = Signal(range(n), name=f"{self.name}_key{s}")   # the beat's key for slot s
            m.d.comb += t.eq(s - slot0 if s == n - 1 else Mux(s >= slot0, s - slot0,
                                                              s + n - slot0))
            if s == n - 1:      # only the beat that completes a word writes its last slot
                word.append(keys[t])
                continue
            merged.append(Mux(t < tp, keys[t], old[s]))
            # below slot0, the word keeps its earlier keys where the beat starts the next
            word.append(Mux(s >= slot0, merged[s], old[s]))
        m.d.comb += [gr.addr.eq(self.chunk), gw.addr.eq(self.chunk),
                     gw.data.eq(Cat(*merged)), gw.en.eq(mine),
                     wp.data.eq(Cat(*word)), wp.en.eq(mine & (slot0 + tp >= n))]
        return mem, depth


class QkHead(wiring.Component):
    """QK^T of one head. In: the QKV stream, ``tp x cip`` a beat. Out: scores, ``tp x cop``
    a beat, key chunks in order for each query group."""

    def __init__(self, st: AttentionScores, f: Folding, head: int, tokens: int,
                 banks: int = 2, *, styles: dict[str, str] | None = None,
                 pipe: Pipelining | None = None):
        if f.cop < f.tp or tokens % f.cop or st.head_dim % f.cip or tokens % f.tp:
            raise ValueError(f"QkHead {st.name}: folding {f} does not fit {tokens} tokens, "
                             f"head dim {st.head_dim} (cop >= tp)")
        if banks < 2:
            raise ValueError(f"QkHead {st.name}: banks={banks}: expected >= 2")
        self.stage, self.f, self.head, self.tokens, self.banks = st, f, head, tokens, banks
        self.styles = styles or {}
        self.pipe = pipe or default()
        self.x = st.in_ranges[0]
        super().__init__({"i": In(stream_of(f.tp * f.cip, self.x)),
                          "o": Out(stream_of(f.tp * f.cop, st.out_range))})
        self.busy = Signal()  # a multiply-accumulate issues this cycle

    def elaborate(self, platform):
        m = Module()
        st, f, t = self.stage, self.f, self.tokens
        lat = self.pipe.read_latency
        w = QkvWriter(m, self.i, t, f.tp, f.cip, st.heads, st.head_dim, self.x, "qk",
                      self.banks, self.styles)
        ng, nk, nd = t // f.tp, t // f.cop, st.head_dim // f.cip
        en = ~self.o.valid | self.o.ready
        rb = Signal(range(w.banks))
        qg, kc, dc = Signal(range(ng)), Signal(range(nk)), Signal(range(nd))
        issue, free = Signal(), Signal()
        m.d.comb += [issue.eq(w.full.bit_select(rb, 1) & en), self.busy.eq(issue),
                     free.eq(issue & (kc == nk - 1) & (dc == nd - 1))]
        mems = stage_memories(st, f, self.pipe, tokens=t, banks=self.banks)
        q_mem, oldest = w.ring(0, self.head, mems["q_wait"], free, self.styles.get("q_wait"))
        k_mem, k_depth = w.keyed(1, self.head, mems, "k")
        qp = q_mem.read_port()
        m.d.comb += [qp.addr.eq(oldest + dc), qp.en.eq(en)]
        kp = k_mem.read_port()
        m.d.comb += [kp.addr.eq(rb * k_depth + kc * nd + dc), kp.en.eq(en)]
        done = count(m, issue, (qg, ng), (kc, nk), (dc, nd))
        with m.If(done):
            m.d.sync += rb.eq(next_bank(rb, w.banks))
            m.d.comb += w.clear.eq(1 << rb)
        v1, first1, last1 = (delay(m, en, s, lat, n) for s, n in (
            (issue, "v"), (dc == 0, "first"), (dc == nd - 1, "last")))
        bits = f.cip * self.x.bits
        q_words = [qp.data[tt * bits:(tt + 1) * bits] for tt in range(f.tp)]
        mac(m, en, v1, first1, last1, q_words, _slots(kp.data, f.cop), self.x, self.x,
            f.tp, f.cop, f.cip, st.out_range, self.o, self.pipe)
        return m


class AvHead(wiring.Component):
    """AV of one head. In: ``i0`` softmax rows (``tp x cip`` keys a beat), ``i1`` the QKV
    stream (``tp x cop`` a beat). Out: the head's ``head_dim`` channels, ``tp x cop`` a
    beat."""

    def __init__(self, st: AttentionValue, f: Folding, head: int, tokens: int,
                 banks: int = 2, *, styles: dict[str, str] | None = None,
                 pipe: Pipelining | None = None):
        if f.cip < f.tp or tokens % f.cip or st.head_dim % f.cop or tokens % f.tp:
            raise ValueError(f"AvHead {st.name}: folding {f} does not fit {tokens} tokens, "
                             f"head dim {st.head_dim} (cip >= tp)")
        if banks < 2:
            raise ValueError(f"AvHead {st.name}: banks={banks}: expected >= 2")
        self.stage, self.f, self.head, self.tokens, self.banks = st, f, head, tokens, banks
        self.styles = styles or {}
        self.pipe = pipe or default()
        self.p, self.v = st.in_ranges
        super().__init__({"i0": In(stream_of(f.tp * f.cip, self.p)),
                          "i1": In(stream_of(f.tp * f.cop, self.v)),
                          "o": Out(stream_of(f.tp * f.cop, st.out_range))})
        self.busy = Signal()  # a multiply-accumulate issues this cycle

    def elaborate(self, platform):
        m = Module()
        st, f, t = self.stage, self.f, self.tokens
        lat = self.pipe.read_latency
        w = QkvWriter(m, self.i1, t, f.tp, f.cop, st.heads, st.head_dim, self.v, "v",
                      self.banks, self.styles)
        mems = stage_memories(st, f, self.pipe, tokens=t, banks=self.banks)
        v_mem, v_depth = w.keyed(2, self.head, mems, "v")
        nk, nd, ng = t // f.cip, st.head_dim // f.cop, t // f.tp
        # softmax rows: a double-buffered row memory, as in the linear stage
        m.submodules.row = row = Ram.declared(mems["rows"], self.styles.get("rows"))
        wr, rd = row.write_port(), row.read_port()
        pfull, pclear, pset = Signal(2), Signal(2), Signal(2)
        pw, kw = Signal(), Signal(range(nk))
        take = Signal()
        m.d.comb += [self.i0.ready.eq(~pfull.bit_select(pw, 1)),
                     take.eq(self.i0.valid & self.i0.ready),
                     wr.addr.eq(pw * nk + kw), wr.data.eq(self.i0.payload), wr.en.eq(take)]
        with m.If(count(m, take, (kw, nk))):
            m.d.sync += pw.eq(~pw)
            m.d.comb += pset.eq(Mux(pw, 0b10, 0b01))
        m.d.sync += pfull.eq((pfull | pset) & ~pclear)

        en = ~self.o.valid | self.o.ready
        pb, vb = Signal(), Signal(range(w.banks))
        qg, oc, kc = Signal(range(ng)), Signal(range(nd)), Signal(range(nk))
        issue = Signal()
        m.d.comb += [issue.eq(pfull.bit_select(pb, 1) & w.full.bit_select(vb, 1) & en),
                     self.busy.eq(issue),
                     rd.addr.eq(pb * nk + kc), rd.en.eq(en)]
        vp = v_mem.read_port()
        m.d.comb += [vp.addr.eq(vb * v_depth + kc * nd + oc), vp.en.eq(en)]
        row_done = count(m, issue, (oc, nd), (kc, nk))
        with m.If(row_done):
            m.d.sync += pb.eq(~pb)
            m.d.comb += pclear.eq(Mux(pb, 0b10, 0b01))
        with m.If(count(m, row_done, (qg, ng))):
            m.d.sync += vb.eq(next_bank(vb, w.banks))
            m.d.comb += w.clear.eq(1 << vb)
        v1, first1, last1 = (delay(m, en, s, lat, n) for s, n in (
            (issue, "v"), (kc == 0, "first"), (kc == nk - 1, "last")))
        pbits = f.cip * self.p.bits
        p_words = [rd.data[tt * pbits:(tt + 1) * pbits] for tt in range(f.tp)]
        # b[co][ci] = V[key ci][dim co]: regroup the word's slots (one key's cop dims each)
        vbits = self.v.bits
        v_cols = [_column(_slots(vp.data, f.cip), co, vbits) for co in range(f.cop)]
        mac(m, en, v1, first1, last1, p_words, v_cols, self.p, self.v, f.tp, f.cop, f.cip,
            st.out_range, self.o, self.pipe)
        return m


def _slots(word, n: int) -> list:
    """The ``n`` keys of a K or V word (``QkvWriter.keyed``), slot 0 first."""
    w = len(word) // n
    return [word[s * w:(s + 1) * w] for s in range(n)]


def _column(words, co: int, bits: int):
    """Element ``co`` of every word, packed as one word (a transpose by wiring)."""
    return Cat(*[wd[co * bits:(co + 1) * bits] for wd in words])
