"""Each stage kind's memories, declared once: what one unit of the stage builds (a head's
unit for attention and softmax), word by word.

The stage contract (``contract.Contract.memories``) answers with these declarations
(a function per kind, ``(stage, folding, tokens, channels, pipe, banks)``); the
RTL builds its memories from them (``rtl.mem.Ram.declared``, ``Rom.declared``), the
resource model costs them and the plan places them by name. A test elaborates every
stage's units and compares the memories built with the declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .intrange import IntRange
from .pipeline import Pipelining
from .stages import (AttentionScores, AttentionValue, LayerNorm, Linear, Requant, Softmax,
                     Tokens)
from .table import PotTable

Q_RING_SLACK = 2        # token groups of the Q wait ring beyond one image


def q_ring_groups(tokens: int, tp: int) -> int:
    """Token groups the QK^T unit's Q wait ring holds: every query of the image waits for
    the last key, and the next image's first groups arrive while the first are computed
    (each group is freed when its scores are done)."""
    return tokens // tp + Q_RING_SLACK


@dataclass(frozen=True)
class MemoryDecl:
    """One memory of a unit: ``words`` words of ``width`` bits (``signed``: the words'
    shape), read ``latency`` cycles after the address (0: as it is addressed, which only
    LUT RAM does). ``copies``: identical memories the unit builds or, for a ROM, its read
    ports (one copy each). A table ROM carries its ``table``, whose words the resource
    model costs it by."""

    name: str
    width: int
    words: int
    rom: bool = False
    copies: int = 1
    latency: int = 1
    signed: bool = False
    table: PotTable | None = field(default=None, compare=False, repr=False)

    @property
    def bits(self) -> int:
        return self.width * self.words * self.copies


def table_rom(name: str, t: PotTable, out: IntRange, copies: int, latency: int) -> MemoryDecl:
    """A table's ROM (``PotTable.words``), its words as wide as ``out``."""
    return MemoryDecl(name, out.bits, t.groups * t.size, rom=True, copies=copies,
                      latency=latency, signed=out.signed, table=t)


def linear(st: Linear, f, tokens, channels, pipe: Pipelining, banks):
    # the head computes its class token's row alone: its row memory holds one token
    tp, lat = 1 if st.cls_only else f.tp, pipe.read_latency
    ni, no = st.in_features // f.cip, st.out_features // f.cop
    xb, wb, ab = st.in_ranges[0].bits, st.derived["weight"].bits, st.derived["acc"].bits
    return (MemoryDecl("weights", f.cop * f.cip * wb, no * ni, rom=True, latency=lat),
            MemoryDecl("row", tp * f.cip * xb, 2 * ni, latency=lat),
            MemoryDecl("bias", f.cop * ab, no, rom=True, latency=lat))


def keyed(name: str, slots: int, lanes: int, bits: int, tokens: int, chunks: int, tp: int,
          banks: int, latency: int) -> tuple[MemoryDecl, ...]:
    """K or V of one head (``rtl.attention.QkvWriter.keyed``): a word holds one chunk's
    ``lanes`` elements of ``slots`` consecutive keys, so one read gives a chunk of keys,
    ``banks`` images deep; and, where a beat's ``tp`` keys fill only part of a word, the
    words being gathered (a word a chunk, the last slot left out: it completes the word),
    read as they are addressed (``latency`` 0: LUT RAM)."""
    word = lanes * bits
    out = (MemoryDecl(name, slots * word, banks * (tokens // slots) * chunks, latency=latency),)
    if slots > tp:
        out += (MemoryDecl(f"{name}_gather", (slots - 1) * word, chunks, latency=0),)
    return out


def qk(st: AttentionScores, f, tokens, channels, pipe: Pipelining, banks):
    # K: cop keys of cip channels a word; Q as its beats in a wait ring
    xb, lat, nd = st.in_ranges[0].bits, pipe.read_latency, st.head_dim // f.cip
    return keyed("k", f.cop, f.cip, xb, tokens, nd, f.tp, banks, lat) + (
        MemoryDecl("q_wait", f.tp * f.cip * xb, q_ring_groups(tokens, f.tp) * nd,
                   latency=lat),)


def av(st: AttentionValue, f, tokens, channels, pipe: Pipelining, banks):
    # V: cip keys of cop dims a word; the softmax rows double-buffered (each head's output
    # FIFO is a netlist part)
    pb, vb, lat = st.in_ranges[0].bits, st.in_ranges[-1].bits, pipe.read_latency
    return keyed("v", f.cip, f.cop, vb, tokens, st.head_dim // f.cop, f.tp, banks, lat) + (
        MemoryDecl("rows", f.tp * f.cip * pb, 2 * (tokens // f.cip), latency=lat),)


def lookup(t: PotTable, out: IntRange, lanes: int, pipe: Pipelining) -> MemoryDecl:
    """The table of an element-wise lookup unit (``rtl.lut.LutStage``), a copy a lane."""
    return table_rom("table", t, out, lanes, pipe.read_latency)


def requant(st: Requant, f, tokens, channels, pipe: Pipelining, banks):
    return (lookup(st.table, st.out_range, f.tp * f.cip, pipe),)


def position(st: Tokens, f, tokens, channels, pipe: Pipelining, banks):
    # a position word per (token group, channel chunk); padding rows widen its range to 0
    pos = st.rom_range(tokens > st.pos.shape[0])
    return (MemoryDecl("pos", f.tp * f.cip * pos.bits, (tokens // f.tp) * (channels // f.cip),
                       rom=True, latency=pipe.read_latency),)


def row_memory(name: str, step: str, tp: int, lanes: int, x: IntRange, row_len: int,
               pipe: Pipelining) -> MemoryDecl:
    """A row pass's row memory: ``Pipelining.row_banks`` rows of ``row_len`` elements."""
    nb = row_len // lanes
    return MemoryDecl(name, tp * lanes * x.bits, pipe.row_banks(step, nb) * nb,
                      latency=pipe.read_latency)


def row_banks(decl: MemoryDecl, row_beats: int) -> int:
    """The rows a row memory holds (``row_memory``'s banks), read off its declaration."""
    return decl.words // row_beats


def layernorm(st: LayerNorm, f, tokens, channels, pipe: Pipelining, banks):
    lat = pipe.read_latency
    gamma, beta = IntRange.of_array(st.gamma), IntRange.of_array(st.beta)
    return (row_memory("row", "layernorm", f.tp, f.cip, st.in_ranges[0], channels, pipe),
            table_rom("rsqrt", st.rsqrt, st.rsqrt.out_range, f.tp, lat),
            MemoryDecl("affine", f.cip * (gamma.bits + beta.bits), channels // f.cip,
                       rom=True, latency=lat))


def softmax(st: Softmax, f, tokens, channels, pipe: Pipelining, banks):
    # two row passes, each its row memory (scores, then exponentials); ``channels``: the
    # streamed keys, padding included
    lat, e = pipe.read_latency, st.exp.out_range
    return (row_memory("score_rows", "max", f.tp, f.cip, st.in_ranges[0], channels, pipe),
            row_memory("exp_rows", "recip", f.tp, f.cip, e, channels, pipe),
            table_rom("exp", st.exp, e, f.tp * f.cip, lat),
            table_rom("recip", st.recip, st.recip.out_range, f.tp, lat))

