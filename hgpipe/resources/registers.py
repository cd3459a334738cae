"""Registers the resource model counts exactly rather than fits: the timing pipeline's
(``mac_pipe_ff``, ``tree_register_bits``), delay lines as ``synth_xilinx`` maps them
(``shift_register``) and a row pass's held values (``row_pass_ff``)."""

from __future__ import annotations

from functools import cache
from math import ceil

from ..graph.intrange import IntRange
from ..graph.pipeline import Pipelining

SRL_MIN_STAGES = 3     # synth_xilinx's ``xilinx_srl -fixed -minlen 3``


def shift_register(bits: int, stages: int) -> tuple[int, int]:
    """(LUT, FF) of a delay line without reset, ``bits`` wide and ``stages`` deep, as
    ``synth_xilinx`` maps it: three stages or more are one shift-register LUT a bit
    (SRL16E, SRLC32E: up to 32 stages each), fewer stay flip-flops. (A register with a
    reset, or one that feeds a DSP, is never absorbed: ``stream.wide_product``.)"""
    if stages >= SRL_MIN_STAGES:
        return bits * ceil(stages / 32), 0
    return 0, bits * stages


def tree_register_bits(terms: int, r: IntRange, levels_per_stage: int) -> int:
    """Register bits of ``hgpipe.rtl.stream.tree_sum`` over ``terms`` values in ``r``,
    cut every ``levels_per_stage`` levels."""
    return _tree_register_bits(terms, r.lo, r.hi, levels_per_stage)


@cache
def _tree_register_bits(terms: int, lo: int, hi: int, per: int) -> int:
    level, bits, depth = [IntRange(lo, hi)] * terms, 0, 0
    while len(level) > 1:
        nxt = [a + b for a, b in zip(level[0::2], level[1::2])]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
        depth += 1
        if depth % per == 0 or len(level) == 1:
            bits += sum(x.bits for x in level)
    return bits


def mac_pipe_ff(outputs: int, x: IntRange, w: IntRange, cip: int, pipe: Pipelining) -> int:
    """Register bits ``stream.mac`` adds for timing: every product, the tree's stages,
    and the flags' delay lines."""
    pr = x * w
    return outputs * (cip * pr.bits + tree_register_bits(cip, pr, pipe.adder_levels)) \
        + 3 * (pipe.mac_stages(cip) + pipe.read_latency)


def row_pass_ff(tp: int, banks: int, held_bits: int, read_latency: int) -> int:
    """Register bits of ``rtl.rowpass.RowPass``'s held row values, counted: per token,
    ``held_bits`` for each bank of its row memory (a finished row waits in its bank), then
    staged through the memory's read. The banks grow as rows shorten, which a fitted
    term of the row's size cannot follow."""
    return tp * held_bits * (banks + read_latency)
